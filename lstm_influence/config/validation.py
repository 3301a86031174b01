"""The one check a run's config gets, before anything is loaded, built or logged.

:func:`validate` reads everything a run will use and stops at the first setting that cannot work, with a
:class:`~lstm_influence.config.schema.ConfigError` that names the key, the value and what would be valid:

1. the keys: none that no schema declares (Hydra checked the types and choices of the keys it knows when it composed
   the config, but a key appended with ``+`` bypasses the schema): :func:`~.schema.check_keys`;
2. the values the types cannot express, ``model.*`` and ``train.*``: :func:`check_values`;
3. the strategy's and the dataset's settings against their plug-ins' signatures (:mod:`~.plugins`).

It returns a :class:`ValidConfig`, which holds the resolved plug-ins and their checked settings, so that the run loads
its data (:func:`lstm_influence.datasets.load_valid`) and makes its strategy
(:func:`lstm_influence.strategies.strategy_for_data`) without checking anything again. One check is left for that
moment, the strategy's own :meth:`~lstm_influence.Strategy.validate`, because it needs the layer's sizes and so the
data: it runs once, when the strategy is made, still before any layer exists. From there on the model builder and
the trainer trust their config. ``train.threads`` is checked where the machine's share is known,
:func:`lstm_influence.training.threads.resolve_threads`, before the run opens.

The runner calls it once per run, and the public ``li.build_model`` for a direct call. The sweep planner checks every
job's plug-ins with the same functions (:func:`~.plugins.strategy_settings`, :func:`~.plugins.dataset_settings`)
before any job runs, and leaves the values to each job, so that one job of a grid with a bad value fails alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from lstm_influence.config.errors import ConfigError
from lstm_influence.config.plugins import dataset_settings, strategy_settings
from lstm_influence.config.schema import check_keys

# ``train.jit_compile``: a tri-state (auto or a boolean) rather than a closed set of strings, because YAML and the
# command line give booleans.
JIT_SETTINGS = {"auto": None, "true": True, "1": True, "false": False, "0": False}


def jit_choice(setting: Any) -> bool | None:
    """``train.jit_compile`` as True, False or None (``auto``).

    Raises:
        ConfigError: ``setting`` is none of auto, true or false (booleans, or their strings).
    """
    if isinstance(setting, bool):
        return setting
    key = str(setting).lower()
    if key not in JIT_SETTINGS:
        raise ConfigError(f"train.jit_compile={setting!r}: expected auto, true or false")
    return JIT_SETTINGS[key]


def check_values(cfg: DictConfig) -> None:
    """Reject ``model.*`` and ``train.*`` values of the right type that cannot work (Hydra has already checked the
    types and the choices when it composed the config).

    Raises:
        ConfigError: naming the key, the bad value and what would be valid.
    """
    train_cfg = cfg.train
    for key, value in {
        "train.epochs": train_cfg.epochs,
        "train.batch_size": train_cfg.batch_size,
        "model.units": cfg.model.units,
    }.items():
        if value < 1:
            raise ConfigError(f"{key}={value}: expected a positive integer")
    if not train_cfg.learning_rate > 0:
        raise ConfigError(f"train.learning_rate={train_cfg.learning_rate}: expected a positive number")
    if train_cfg.clip_norm is not None and not train_cfg.clip_norm > 0:
        raise ConfigError(f"train.clip_norm={train_cfg.clip_norm}: expected a positive number or null (off)")
    if train_cfg.spike_window < 1 or not train_cfg.spike_factor > 1:
        raise ConfigError(
            f"train.spike_window={train_cfg.spike_window}, train.spike_factor={train_cfg.spike_factor}: "
            "expected a window of at least 1 step and a factor above 1"
        )
    if train_cfg.gate_probe_batch < 0:
        raise ConfigError(f"train.gate_probe_batch={train_cfg.gate_probe_batch}: expected 0 (off) or more sequences")
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise ConfigError(f"model.dropout={cfg.model.dropout}: expected a value in [0, 1)")
    jit_choice(train_cfg.jit_compile)


@dataclasses.dataclass(frozen=True)
class ValidConfig:
    """A run config :func:`validate` accepted, with its plug-ins resolved and their settings checked.

    Attributes:
        cfg: the config.
        strategy_class, strategy_settings: the ``Strategy`` subclass ``cfg.strategy`` names and its keyword
            arguments (the framework adds the layer's sizes).
        dataset_loader, dataset_settings: the callable ``cfg.dataset`` names and its keyword arguments.
    """

    cfg: DictConfig
    strategy_class: type
    strategy_settings: dict[str, Any]
    dataset_loader: Callable[..., Any]
    dataset_settings: dict[str, Any]


def validate(cfg: DictConfig) -> ValidConfig:
    """Check every key and value of ``cfg`` that a run will use (see the module doc); nothing is loaded or built.

    Raises:
        ConfigError: the first key or value that cannot work, naming it, the bad value and what would be valid.
    """
    check_keys(cfg)
    check_values(cfg)
    strategy_class, strategy_kwargs = strategy_settings(cfg.strategy)
    dataset_loader, dataset_kwargs = dataset_settings(cfg.dataset)
    return ValidConfig(cfg, strategy_class, strategy_kwargs, dataset_loader, dataset_kwargs)


__all__ = ["JIT_SETTINGS", "ValidConfig", "check_values", "jit_choice", "validate"]
