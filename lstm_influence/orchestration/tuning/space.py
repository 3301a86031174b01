"""The search space: which config keys a study samples, over which values, and how a sample becomes a config.

``tune.space`` (``conf/tune/default.yaml``) lists parameters by name; each writes to one dotted config key and
applies to a strategy × dataset only where its ``when`` matches the configuration, so a strategy's own keys are
searched inside the same budget as everyone else's.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from optuna.trial import Trial

from lstm_influence.config.errors import ConfigError

# Top-level keys a study never samples and a tuned file never sets: the comparison draws fresh seeds, logs where it
# likes and sweeps as it likes.
NOT_TUNED = ("seed", "tracking", "sweep", "hydra", "tune")
_ABSENT = object()


@dataclass(frozen=True)
class Param:
    """One validated hyperparameter of the space (see :class:`lstm_influence.config.schema.ParamSpec`).

    Attributes:
        name: the Optuna parameter name and the trial run's ``trial.<name>`` param.
        key: the dotted config key a value is written to.
        type: ``float``, ``int`` or ``categorical``.
        low, high: the range, both ends included (float, int).
        log: uniform in log space (float, int).
        step: a grid step (float, int); None: continuous (float) or 1 (int).
        choices: the options (categorical).
        dimension: the parameter's position in the whole ``tune.space`` (whether or not it applies here), its
            coordinate in the space-filling design, so every strategy draws the same values for the keys they share.
    """

    name: str
    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    dimension: int = 0

    def suggest(self, trial: Trial) -> Any:
        """The trial's value: the enqueued one if the trial was given one, else the study's sampler's."""
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=self._int_step)
        return trial.suggest_categorical(self.name, list(self.choices))

    @property
    def _int_step(self) -> int:
        return int(self.step) if self.step is not None else 1

    def from_unit(self, u: float) -> Any:
        """The value at quantile ``u`` in [0, 1) of the parameter's distribution (uniform, log-uniform or a grid).

        A categorical parameter with k choices takes choice ``floor(u · k)``; a grid (int, or float with a step)
        its ``floor(u · m)``-th of m points; a log-uniform int is ``floor`` of a log-uniform draw on
        ``[low, high + 1)``. Equal strata of ``u`` therefore map to equal-probability parts of the distribution.
        """
        u = min(max(float(u), 0.0), math.nextafter(1.0, 0.0))
        if self.type == "categorical":
            return self.choices[int(u * len(self.choices))]
        if self.type == "int" and self.log:
            value = math.floor(math.exp(math.log(self.low) + u * (math.log(self.high + 1) - math.log(self.low))))
            return int(min(max(value, self.low), self.high))
        if self.type == "int" or self.step is not None:
            step = self._int_step if self.type == "int" else float(self.step)
            points = math.floor((self.high - self.low) / step + 1e-9) + 1
            value = self.low + int(u * points) * step
            return int(value) if self.type == "int" else float(value)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return float(min(max(value, self.low), self.high))

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this parameter's distribution (so a trial can be fixed to it)."""
        if self.type == "categorical":
            return any(value == choice and type(value) is type(choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        if self.type == "int" and value != int(value):
            return False
        steps = (value - self.low) / self.step if self.step is not None else 0.0
        return abs(steps - round(steps)) < 1e-9

    def describe(self) -> dict[str, Any]:
        """The parameter as plain data (hashed into the study name, logged on the parent run)."""
        described = {**dataclasses.asdict(self), "choices": list(self.choices)}
        described.pop("dimension")  # where it sits in the design is not what it is
        return described


def training_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` without its ``tune`` node: the configuration every trial starts from (the runner rejects ``tune``)."""
    base = OmegaConf.create({key: cfg[key] for key in cfg if key not in ("tune", "hydra")})
    OmegaConf.set_struct(base, True)
    return base


def _dotted(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_dotted(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def matches(cfg: DictConfig, when: Mapping[str, Any]) -> bool:
    """Whether ``cfg`` has every value ``when`` asks for (nested like the config; a list means "any of")."""
    for key, expected in _dotted(when).items():
        actual = OmegaConf.select(cfg, key, default=_ABSENT)
        options = expected if isinstance(expected, list) else [expected]
        if actual is _ABSENT or actual not in options:
            return False
    return True


def _param(name: str, spec: DictConfig, dimension: int) -> Param:
    where = f"tune.space.{name}"
    kind = str(spec.type)
    if kind == "categorical":
        choices = tuple(OmegaConf.to_container(spec.choices)) if spec.choices is not None else ()
        if not choices:
            raise ConfigError(f"{where}.choices={choices!r}: a categorical parameter needs at least one choice")
        for choice in choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ConfigError(f"{where}.choices: {choice!r} is not a number, string, boolean or null")
        return Param(name, spec.key, kind, choices=choices, dimension=dimension)
    if spec.low is None or spec.high is None or not spec.low < spec.high:
        raise ConfigError(f"{where}: low={spec.low}, high={spec.high}: expected numbers with low < high")
    if spec.log and spec.low <= 0:
        raise ConfigError(f"{where}: log=true needs low > 0, got low={spec.low}")
    if spec.log and spec.step is not None:
        raise ConfigError(f"{where}: log=true and step={spec.step} cannot be combined")
    if spec.step is not None and not spec.step > 0:
        raise ConfigError(f"{where}.step={spec.step}: expected a positive number or null")
    return Param(name, spec.key, kind, float(spec.low), float(spec.high), bool(spec.log), spec.step, (), dimension)


def search_space(tune_cfg: DictConfig, base: DictConfig) -> list[Param]:
    """The validated parameters of ``tune_cfg.space`` that apply to ``base`` (their ``when`` matches it).

    Raises:
        ConfigError: a malformed spec, a key the config does not have, or a value its schema rejects, naming
            ``tune.space.<name>``; raised before anything is trained.
    """
    space: list[Param] = []
    seen: dict[str, str] = {}
    for dimension, (name, spec) in enumerate(tune_cfg.space.items()):
        param = _param(str(name), spec, dimension)
        if not matches(base, OmegaConf.to_container(spec.when)):
            continue
        where = f"tune.space.{name}.key={param.key}"
        if param.key.split(".")[0] in NOT_TUNED:
            raise ConfigError(f"{where}: {', '.join(NOT_TUNED)} are not tunable")
        current = OmegaConf.select(base, param.key, default=_ABSENT)
        if current is _ABSENT or isinstance(current, DictConfig):
            raise ConfigError(
                f"{where}: no such value in the config of strategy={base.strategy.name} dataset={base.dataset.name}"
            )
        if param.key in seen:
            raise ConfigError(f"{where}: the key is already tuned by tune.space.{seen[param.key]}")
        seen[param.key] = param.name
        probe = copy.deepcopy(base)
        candidates = param.choices if param.type == "categorical" else (param.low, param.high)
        for value in candidates:
            value = int(value) if param.type == "int" else value
            try:
                OmegaConf.update(probe, param.key, value, merge=False)
            except Exception as error:
                raise ConfigError(f"{where}: the value {value!r} does not fit the schema ({error})") from error
        space.append(param)
    return space


def apply_params(base: DictConfig, space: Sequence[Param], values: Mapping[str, Any]) -> DictConfig:
    """A copy of ``base`` with each sampled value written to its key."""
    cfg = copy.deepcopy(base)
    for param in space:
        if param.name in values:
            OmegaConf.update(cfg, param.key, values[param.name], merge=False)
    return cfg


def default_values(base: DictConfig, space: Sequence[Param]) -> dict[str, Any]:
    """The value each parameter has in the untuned configuration."""
    return {param.name: OmegaConf.select(base, param.key) for param in space}
