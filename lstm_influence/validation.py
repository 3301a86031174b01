"""The one check a run's config gets, before anything is loaded, built or logged.

:func:`validate` reads everything a run will use and stops at the first setting that cannot work, with a
:class:`~lstm_influence.config.schema.ConfigError` that names the key, the value and what would be valid:

1. the keys: none that no schema declares (Hydra already checked the types and choices of the keys it knows when it
   composed the config, but a key appended with ``+`` bypasses the schema): :func:`~.config.schema.check_keys`;
2. the values the types cannot express, ``model.*`` and ``train.*``: :func:`~.config.schema.check_values`;
3. the strategy's and the dataset's settings against their plug-ins' signatures (:mod:`lstm_influence.config.plugins`).

What it returns, a :class:`ValidConfig`, holds the checked plug-ins and their settings, so the run loads its data
(:meth:`ValidConfig.load_dataset`) and makes its strategy (:meth:`ValidConfig.make_strategy`) without checking
anything again. The one check left for that moment is the strategy's own :meth:`~lstm_influence.Strategy.validate`,
which needs the layer's sizes, and so the data: it runs once, when the strategy is made, still before any layer
exists. Below this, the model builder and the trainer trust their config.

This module sits above the strategies and the datasets, whose base class and framework keys the plug-in checks need,
and below the training stage; the sweep planner and the public ``li.build_model`` call :func:`validate` too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from lstm_influence.config.schema import check_keys, check_values
from lstm_influence.datasets import call_loader, dataset_settings
from lstm_influence.datasets.base import Dataset
from lstm_influence.strategies import Strategy, instantiate_strategy, strategy_settings


@dataclasses.dataclass(frozen=True)
class ValidConfig:
    """A run config that :func:`validate` accepted, with its plug-ins resolved and their settings checked.

    Attributes:
        cfg: the config.
        strategy_class, strategy_settings: the class ``cfg.strategy`` names and its keyword arguments.
        dataset_loader, dataset_settings: the callable ``cfg.dataset`` names and its keyword arguments.
    """

    cfg: DictConfig
    strategy_class: type[Strategy]
    strategy_settings: dict[str, Any]
    dataset_loader: Callable[..., Any]
    dataset_settings: dict[str, Any]

    def load_dataset(self) -> Dataset:
        """The dataset, loaded with the checked settings.

        Raises:
            DatasetError: data that cannot be read or used.
        """
        return call_loader(self.cfg.dataset, self.dataset_loader, self.dataset_settings)

    def make_strategy(self, data: Dataset) -> Strategy:
        """The strategy sized for the LSTM it will act on (``data``'s features and length, ``model.units``), after
        its own :meth:`~lstm_influence.Strategy.validate`.

        Raises:
            ConfigError: from the strategy's ``validate``; no layer has been built.
        """
        return instantiate_strategy(
            self.strategy_class,
            self.strategy_settings,
            self.cfg,
            input_dim=data.n_features,
            units=int(self.cfg.model.units),
            seq_len=data.seq_len,
        )


def validate(cfg: DictConfig) -> ValidConfig:
    """Check every key and value of ``cfg`` a run will use (see the module doc); nothing is loaded or built.

    Raises:
        ConfigError: the first key or value that cannot work, naming it, the bad value and what would be valid.
    """
    check_keys(cfg)
    check_values(cfg)
    strategy_class, strategy_kwargs = strategy_settings(cfg.strategy)
    dataset_loader, dataset_kwargs = dataset_settings(cfg.dataset)
    return ValidConfig(cfg, strategy_class, strategy_kwargs, dataset_loader, dataset_kwargs)


__all__ = ["ValidConfig", "validate"]
