"""Influence strategies, found by ``_target_``: ``conf/strategy/<name>.yaml`` names a :class:`Strategy` subclass.

There is no registry: :func:`strategy_settings` (:mod:`lstm_influence.config.plugins`) imports the class
``cfg.strategy._target_`` names and checks the node's keys and values against the class's signature;
:func:`instantiate_strategy` builds it for the layer it will act on and runs its own :meth:`Strategy.validate`.
A run's strategy comes from its validated config (:func:`strategy_for_data`); :func:`make_strategy` does both steps
for a strategy made on its own. The built-ins (``baseline``, ``custom_init``, ``input_transform``, ``bias_init``,
``extra_variable``) are declared exactly as a user's strategy is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from omegaconf import DictConfig, OmegaConf

from lstm_influence.config.plugins import SUPPLIED, strategy_class, strategy_settings
from lstm_influence.datasets import dependency_horizon
from lstm_influence.strategies.base import Strategy

if TYPE_CHECKING:
    from lstm_influence.config.validation import ValidConfig
    from lstm_influence.datasets.base import Dataset


def make_strategy(
    cfg: DictConfig, *, input_dim: int, units: int, seq_len: int, horizon: float | None = None
) -> Strategy:
    """The strategy ``cfg.strategy`` names, checked against its class's signature and validated for its layer.

    A run checks the signature once, in :func:`lstm_influence.config.validate`, and then calls
    :func:`strategy_for_data`; this is both steps, for a strategy made on its own.

    Args:
        cfg: the full run config (``cfg.strategy`` configures the strategy; ``cfg.seed`` fixes its own draws).
        input_dim, units, seq_len, horizon: see :func:`instantiate_strategy`.

    Raises:
        ConfigError: naming the key, the bad value and the valid keys or choices; nothing has been built yet.
    """
    cls, settings = strategy_settings(cfg.strategy)
    return instantiate_strategy(cls, settings, cfg, input_dim=input_dim, units=units, seq_len=seq_len, horizon=horizon)


def instantiate_strategy(
    cls: type[Strategy],
    settings: dict[str, Any],
    cfg: DictConfig,
    *,
    input_dim: int,
    units: int,
    seq_len: int,
    horizon: float | None = None,
) -> Strategy:
    """``cls(**settings)`` sized for its layer, then its own :meth:`Strategy.validate`: settings already checked
    against the signature (:func:`strategy_settings`), so what is left is what only the layer's sizes can tell.

    Args:
        cls, settings: what :func:`strategy_settings` returned for ``cfg.strategy``.
        cfg: the full run config (``cfg.seed`` fixes the strategy's own draws; ``cfg.dataset`` gives the horizon).
        input_dim: the LSTM's input features.
        units: the LSTM's units.
        seq_len: the sequence length.
        horizon: the task's dependency horizon (chrono's default ``t_max``); None: from ``cfg.dataset`` where the
            config has one (:func:`lstm_influence.datasets.dependency_horizon`), else the sequence length.

    Raises:
        ConfigError: from the strategy's ``validate``; nothing has been built yet.
    """
    seed = cfg.get("seed", 0)
    if horizon is None and cfg.get("dataset") is not None:
        horizon = dependency_horizon(cfg.dataset)
    strategy = cls(
        **settings,
        input_dim=input_dim,
        units=units,
        seq_len=seq_len,
        horizon=horizon,
        seed=0 if seed is None else int(seed),
    )
    strategy.config = OmegaConf.to_container(cfg.strategy, resolve=True)
    strategy.validate()
    return strategy


def strategy_for_data(valid: ValidConfig, data: Dataset) -> Strategy:
    """The strategy of a validated config, sized for the LSTM it will act on (``data``'s features and length,
    ``model.units``): its settings were checked by :func:`lstm_influence.config.validate`, so what is left is its own
    :meth:`Strategy.validate`, the one check that needs the data.

    Raises:
        ConfigError: from the strategy's ``validate``; no layer has been built.
    """
    return instantiate_strategy(
        valid.strategy_class,
        valid.strategy_settings,
        valid.cfg,
        input_dim=data.n_features,
        units=int(valid.cfg.model.units),
        seq_len=data.seq_len,
    )


def strategy_for_model(model: keras.Model, cfg: DictConfig) -> Strategy:
    """The strategy of ``cfg``, sized from the model's recurrent layer (named ``lstm``) and ``model.units``."""
    lstm = model.get_layer("lstm")
    input_dim = int(lstm.input.shape[-1])
    seq_len = int(lstm.input.shape[1])
    units = int(getattr(lstm, "units", None) or cfg.model.units)
    return make_strategy(cfg, input_dim=input_dim, units=units, seq_len=seq_len)


def verify_influence(model: keras.Model, cfg: DictConfig) -> dict[str, Any]:
    """What the configured strategy injected into ``model`` and whether it is really in the weights."""
    return strategy_for_model(model, cfg).verify(model)


__all__ = [
    "SUPPLIED",
    "Strategy",
    "instantiate_strategy",
    "make_strategy",
    "strategy_class",
    "strategy_for_data",
    "strategy_for_model",
    "strategy_settings",
    "verify_influence",
]
