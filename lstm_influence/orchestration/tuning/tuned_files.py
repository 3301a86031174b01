"""Tuned-config files: the best configuration of a study as ``<config_dir>/tuned/<label>.yaml``.

A tuned file is a global Hydra config that selects its strategy and dataset and sets every tuned key plus every
other key the study ran with that differs from the packaged config (e.g. ``experiment=compare``'s sizes), so
``+tuned=<label>`` trains it and ``experiment=compare_tuned`` sweeps every tuned file over fresh seeds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lstm_influence import tracking
from lstm_influence.config.compose import CONFIG_NAME, compose
from lstm_influence.orchestration.tuning.space import NOT_TUNED, Param

TUNED_GROUP = "tuned"
_NOT_IN_REFERENCE = object()


def packaged_config_dir() -> Path:
    """The directory of the packaged configs (``lstm_influence.conf``)."""
    import lstm_influence.conf as conf

    return Path(conf.__file__).resolve().parent


def resolve_config_dir(config_dir: str | None) -> tuple[Path, bool]:
    """``(directory, packaged)``: where ``tuned/<label>.yaml`` is written, and whether the packaged configs
    already contain it (a source checkout, as with ``pip install -e .``) so ``+tuned=<label>`` needs no search path.

    ``config_dir=None`` picks the packaged ``conf/`` of a writable source checkout, else ``./conf``.
    """
    packaged = packaged_config_dir()
    if config_dir is None:
        checkout = (packaged.parent / "pyproject.toml").is_file() and os.access(packaged, os.W_OK)
        path = packaged if checkout else Path.cwd() / "conf"
    else:
        path = Path(config_dir).expanduser().resolve()
    return path, path == packaged


def selection_hint(label: str, config_dir: Path, packaged: bool) -> str:
    """The command that trains the tuned configuration ``label``."""
    search = "" if packaged else f"--config-dir {config_dir} "
    return f"python -m lstm_influence {search}+{TUNED_GROUP}={label} seed=<a fresh seed>"


def config_options(strategy: str, dataset: str) -> tuple[str, str]:
    """The ``strategy`` and ``dataset`` options (config file names) the running command chose; outside a Hydra
    command, or where it chose none, the names given (a built-in's name is its file's name)."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    return str(choices.get("strategy") or strategy), str(choices.get("dataset") or dataset)


def reference_config(strategy: str, dataset: str) -> DictConfig:
    """The packaged config of ``strategy`` on ``dataset``: what a tuned file's keys are compared against."""
    overrides = [f"strategy={strategy}", f"dataset={dataset}"]
    if GlobalHydra.instance().is_initialized():  # inside @hydra.main: the app's own search path
        return hydra_compose(config_name=CONFIG_NAME, overrides=overrides)
    return compose(overrides)


def tuned_content(best: DictConfig, reference: DictConfig, space: Sequence[Param]) -> dict[str, dict[str, Any]]:
    """The keys a tuned file sets: every tuned key, and every other key where ``best`` differs from ``reference``
    (the packaged config of the same strategy and dataset), e.g. ``train.epochs`` or ``dataset.task``; compared one
    level below each group, whole values, interpolations kept."""
    best_tree = OmegaConf.to_container(best, resolve=False)
    ref_tree = OmegaConf.to_container(reference, resolve=False)
    tuned = {tuple(param.key.split(".")[:2]) for param in space}
    content: dict[str, dict[str, Any]] = {}
    for group, node in best_tree.items():
        if group in NOT_TUNED or not isinstance(node, dict):
            continue
        ref_node = ref_tree.get(group) or {}
        for key, value in node.items():
            if key == "name":
                continue
            if (group, key) in tuned or ref_node.get(key, _NOT_IN_REFERENCE) != value:
                content.setdefault(group, {})[key] = value
    return content


def write_tuned_config(
    path: Path, *, strategy: str, dataset: str, content: Mapping[str, Any], header: Sequence[str]
) -> Path:
    """Write a global config that selects ``strategy`` and ``dataset`` and sets ``content`` (atomically)."""
    lines = ["# @package _global_", *(f"# {line}" if line else "#" for line in header)]
    lines += ["defaults:", f"  - override /strategy: {strategy}", f"  - override /dataset: {dataset}", "  - _self_"]
    body = OmegaConf.to_yaml(OmegaConf.create(dict(content))) if content else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_text() if path.exists() else ""
    study = next((line for line in header if line.startswith("Study ")), "")
    if previous and study and study.split(" ")[1] not in previous:
        tracking.announce(f"tune: replacing {path}, written by another study (set tune.label to keep both)")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("\n".join(lines) + "\n" + body)
    os.replace(temporary, path)
    return path
