"""Dataset families: ``conf/dataset/<name>.yaml`` ↔ ``lstm_influence/datasets/<name>.py``.

Each family module has ``load(dataset_cfg) -> Dataset``; :func:`load_dataset` dispatches on ``cfg.dataset.name``.
"""

from __future__ import annotations

import importlib

from omegaconf import DictConfig

from lstm_influence.datasets.base import Dataset, DatasetError

FAMILIES = ("synthetic", "financial", "text")


def load_dataset(cfg: DictConfig) -> Dataset:
    """The dataset ``cfg.dataset`` names (a full run config, or the dataset node itself)."""
    node = cfg.dataset if "dataset" in cfg else cfg
    if node.name not in FAMILIES:
        raise DatasetError(f"dataset.name={node.name!r}: expected one of {', '.join(FAMILIES)}")
    module = importlib.import_module(f"lstm_influence.datasets.{node.name}")
    return module.load(node)


def dependency_horizon(dataset_cfg: DictConfig) -> float | None:
    """The longest dependency, in steps, the task asks a network to bridge, where the task defines one.

    Time-scale-aware initialisers use it as their default (chrono's ``t_max``); None means "the sequence length".
    Only the synthetic copy task differs from its sequence length (see :func:`synthetic.dependency_horizon`).
    """
    if dataset_cfg.get("name") != "synthetic":
        return None
    from lstm_influence.datasets.synthetic import dependency_horizon as synthetic_horizon

    return synthetic_horizon(dataset_cfg)


__all__ = ["FAMILIES", "Dataset", "DatasetError", "dependency_horizon", "load_dataset"]
