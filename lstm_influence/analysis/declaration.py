"""An analysis declared before the runs: the primary metric, the control, the metrics and the equivalence margins.

A preset ``conf/experiment/<name>.yaml`` composes training runs and cannot hold keys the run schema does not know;
its analysis is declared beside it, in ``conf/analysis/<name>.yaml``, committed before the grid runs (the git
history dates the declaration), and read by ``experiments/compare.py --preset <name>``::

    # conf/analysis/my_study.yaml
    primary: test/norm_loss          # the confirmatory metric (default: test/norm_loss)
    control: baseline                # the reference arm (default: baseline)
    metrics: [conv/aulc]             # exploratory metrics besides the primary one
    margins:                         # equivalence margins, in each metric's units: a confirmatory TOST family
      test/norm_loss: 0.01
    equivalence_arms: [extra_full]   # the arms tested for equivalence (default: every arm)

Every key is optional; an unknown key is an error that names the valid ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf

KEYS = ("primary", "control", "metrics", "margins", "equivalence_arms")
PACKAGED_FOLDER = "analysis"


@dataclass(frozen=True)
class Declaration:
    """A declared analysis (see the module docstring); ``source`` names the file it was read from."""

    source: str
    primary: str | None = None
    control: str | None = None
    metrics: tuple[str, ...] = ()
    margins: Mapping[str, float] = field(default_factory=dict)
    equivalence_arms: tuple[str, ...] | None = None


def parse_margin(text: str) -> tuple[str, float]:
    """``METRIC=VALUE`` (``--margin``) as ``(metric, value)``.

    Raises:
        ValueError: no ``=``, an empty metric, or a value that is not a positive finite number.
    """
    metric, sep, value = text.rpartition("=")
    if not sep or not metric:
        raise ValueError(f"a margin is METRIC=VALUE (e.g. test/norm_loss=0.01), got {text!r}")
    return metric, _positive(value, metric)


def _positive(value: object, metric: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"the margin of {metric} must be a positive finite number, got {value!r}")
    return number


def declaration_path(preset: str) -> tuple[Path, str]:
    """The file of a preset's declaration and the name the report gives it.

    ``preset`` is a packaged preset's name (``conf/analysis/<name>.yaml``) or the path of a YAML file.
    """
    if preset.endswith((".yaml", ".yml")):
        return Path(preset), preset
    packaged = resources.files("lstm_influence.conf").joinpath(PACKAGED_FOLDER, f"{preset}.yaml")
    return Path(str(packaged)), f"conf/{PACKAGED_FOLDER}/{preset}.yaml"


def load_declaration(preset: str) -> Declaration:
    """Read a declared analysis (see the module docstring).

    Raises:
        ValueError: no such file (the message lists the packaged declarations), an unknown key, or a bad margin.
    """
    path, source = declaration_path(preset)
    if not path.is_file():
        folder = resources.files("lstm_influence.conf").joinpath(PACKAGED_FOLDER)
        known = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()) if folder.is_dir() else []
        raise ValueError(f"no analysis declaration {source} (packaged declarations: {known})")
    raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping with keys {list(KEYS)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; valid keys: {list(KEYS)}")
    margins = {str(m): _positive(v, str(m)) for m, v in (raw.get("margins") or {}).items()}
    arms = raw.get("equivalence_arms")
    return Declaration(
        source=source,
        primary=raw.get("primary"),
        control=raw.get("control"),
        metrics=tuple(raw.get("metrics") or ()),
        margins=margins,
        equivalence_arms=None if arms is None else tuple(str(a) for a in arms),
    )
