"""Influence strategies: ``conf/strategy/<name>.yaml`` ↔ ``lstm_influence/strategies/<name>.py``.

The registry maps a strategy name to its class; :func:`make_strategy` builds one for a run and validates it.
"""

from __future__ import annotations

from typing import Any

import keras
from omegaconf import DictConfig

from lstm_influence.config import ConfigError
from lstm_influence.datasets import dependency_horizon
from lstm_influence.strategies.base import Strategy
from lstm_influence.strategies.baseline import Baseline
from lstm_influence.strategies.bias_init import BiasInit
from lstm_influence.strategies.custom_init import CustomInit
from lstm_influence.strategies.extra_variable import ExtraVariable
from lstm_influence.strategies.input_transform import InputTransform

# The strategy classes, keyed by their names, in the contract's order (names.STRATEGIES; a test holds them equal).
REGISTRY: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Baseline, CustomInit, InputTransform, BiasInit, ExtraVariable)
}


def make_strategy(cfg: DictConfig, *, input_dim: int, units: int, seq_len: int) -> Strategy:
    """The strategy ``cfg.strategy`` names, validated against the layer it will act on.

    Args:
        cfg: the full run config (``cfg.strategy`` configures the strategy; ``cfg.seed`` fixes its own draws).
        input_dim: the LSTM's input features.
        units: the LSTM's units.
        seq_len: the sequence length.

    The task's dependency horizon (chrono's default ``t_max``) comes from ``cfg.dataset`` where the config has one
    (:func:`lstm_influence.datasets.dependency_horizon`), else it is the sequence length.

    Raises:
        ConfigError: naming the key, the bad value and the valid choices; nothing has been built yet.
    """
    name = cfg.strategy.name
    if name not in REGISTRY:
        raise ConfigError(f"strategy.name={name!r}: expected one of {', '.join(sorted(REGISTRY))}")
    seed = cfg.get("seed", 0)
    horizon = dependency_horizon(cfg.dataset) if cfg.get("dataset") is not None else None
    return REGISTRY[name](
        cfg.strategy,
        input_dim=input_dim,
        units=units,
        seq_len=seq_len,
        horizon=horizon,
        seed=0 if seed is None else int(seed),
    )


def strategy_for_model(model: keras.Model, cfg: DictConfig) -> Strategy:
    """The strategy of ``cfg``, sized from the model's own LSTM layer."""
    lstm = model.get_layer("lstm")
    input_dim = int(lstm.input.shape[-1])
    seq_len = int(lstm.input.shape[1])
    return make_strategy(cfg, input_dim=input_dim, units=lstm.units, seq_len=seq_len)


def verify_influence(model: keras.Model, cfg: DictConfig) -> dict[str, Any]:
    """What the configured strategy injected into ``model`` and whether it is really in the weights."""
    return strategy_for_model(model, cfg).verify(model)


__all__ = ["REGISTRY", "Strategy", "make_strategy", "strategy_for_model", "verify_influence"]
