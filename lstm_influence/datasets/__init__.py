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


__all__ = ["FAMILIES", "Dataset", "DatasetError", "load_dataset"]
