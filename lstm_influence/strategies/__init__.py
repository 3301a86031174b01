"""Influence strategies: ``conf/strategy/<name>.yaml`` ↔ ``lstm_influence/strategies/<name>.py``.

The registry maps a strategy name to its class; :func:`make_strategy` builds one for a run and validates it.
"""

from __future__ import annotations

from typing import Any

import keras
from omegaconf import DictConfig

from lstm_influence.config import ConfigError
from lstm_influence.strategies.base import Strategy
from lstm_influence.strategies.baseline import Baseline

REGISTRY: dict[str, type[Strategy]] = {
    "baseline": Baseline,
}


def make_strategy(cfg: DictConfig, *, input_dim: int, units: int, seq_len: int) -> Strategy:
    """The strategy ``cfg.strategy`` names, validated against the layer it will act on."""
    name = cfg.strategy.name
    if name not in REGISTRY:
        raise ConfigError(f"strategy.name={name!r}: expected one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](cfg.strategy, input_dim=input_dim, units=units, seq_len=seq_len)


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
