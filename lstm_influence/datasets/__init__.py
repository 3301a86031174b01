"""Datasets, found by ``_target_``: ``conf/dataset/<name>.yaml`` names a function that returns a :class:`Dataset`.

There is no list of families: :func:`load_dataset` imports the callable ``cfg.dataset._target_`` names, checks the
node's keys and values against its signature (:func:`dataset_settings`, from :mod:`lstm_influence.config.plugins`)
and calls it (:func:`call_loader`); a run loads the dataset of its validated config (:func:`load_valid`). The built-ins
(``synthetic.load``, ``financial.load``, ``text.load``, ``csv.load``) are declared exactly as a user's dataset is.

Keys the framework itself reads from a dataset node, :data:`FRAMEWORK_KEYS`, are passed to the callable too when it
names them or takes ``**kwargs``; any other key must be one of its named parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from lstm_influence.config import plugins
from lstm_influence.config.plugins import FRAMEWORK_KEYS, dataset_loader, dataset_settings
from lstm_influence.datasets.base import Dataset, DatasetError

if TYPE_CHECKING:
    from lstm_influence.config.validation import ValidConfig


def load_dataset(cfg: DictConfig) -> Dataset:
    """The dataset ``cfg.dataset`` names (a full run config, or the dataset node itself).

    Raises:
        ConfigError: a ``_target_`` that cannot be imported, or keys and values its signature does not accept.
        DatasetError: data that cannot be read or used, or a callable that returned something else than a Dataset.
    """
    node = cfg.dataset if "dataset" in cfg else cfg
    loader, kwargs = dataset_settings(node)
    return call_loader(node, loader, kwargs)


def load_valid(valid: ValidConfig) -> Dataset:
    """The dataset of a validated config, loaded with the settings :func:`lstm_influence.config.validate` checked.

    Raises:
        DatasetError: data that cannot be read or used, or a callable that returned something else than a Dataset.
    """
    return call_loader(valid.cfg.dataset, valid.dataset_loader, valid.dataset_settings)


def call_loader(node: DictConfig, loader: Any, kwargs: dict[str, Any]) -> Dataset:
    """``loader(**kwargs)``, the settings already checked (:func:`dataset_settings` of ``node``).

    Raises:
        DatasetError: data that cannot be read or used, or a callable that returned something else than a Dataset.
    """
    data = loader(**kwargs)
    if not isinstance(data, Dataset):
        raise DatasetError(
            f"dataset._target_={node.get('_target_')!r} returned a {type(data).__name__}, expected an "
            "lstm_influence.Dataset"
        )
    return data


def dependency_horizon(dataset_cfg: DictConfig) -> float | None:
    """The longest dependency, in steps, the task asks a network to bridge, where the task defines one.

    Time-scale-aware initialisers use it as their default (chrono's ``t_max``); None means "the sequence length".
    Only the synthetic copy task differs from its sequence length (see :func:`synthetic.dependency_horizon`).
    """
    from lstm_influence.datasets import synthetic

    if dataset_cfg.get(plugins.TARGET) != f"{synthetic.__name__}.load":
        return None
    return synthetic.dependency_horizon(dataset_cfg)


__all__ = [
    "FRAMEWORK_KEYS",
    "Dataset",
    "DatasetError",
    "call_loader",
    "dataset_loader",
    "dataset_settings",
    "dependency_horizon",
    "load_dataset",
    "load_valid",
]
