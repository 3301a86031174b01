"""lstm_influence: compare ways of pushing prior knowledge into a Keras LSTM, and measure whether they help.

The public API::

    import lstm_influence as li
    cfg = li.compose(["strategy=bias_init", "dataset=financial"])
    data = li.load_dataset(cfg)
    model = li.build_model(cfg, data)
    report = li.verify_influence(model, cfg)
    summary = li.run(cfg)

Importing the package does not import TensorFlow; the functions that need it import it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lstm_influence.compose import compose

if TYPE_CHECKING:
    import keras
    from omegaconf import DictConfig

    from lstm_influence.datasets.base import Dataset

__all__ = ["build_model", "compose", "load_dataset", "run", "verify_influence"]
__version__ = "0.1.0"


def load_dataset(cfg: DictConfig) -> Dataset:
    """The dataset that ``cfg.dataset`` names, split into train/val/test, with its trivial baseline."""
    from lstm_influence.datasets import load_dataset as _load

    return _load(cfg)


def build_model(cfg: DictConfig, data: Dataset) -> keras.Model:
    """The compiled Keras model with the configured strategy applied; its LSTM layer is named ``lstm``."""
    from lstm_influence.model import build_model as _build

    return _build(cfg, data)


def verify_influence(model: keras.Model, cfg: DictConfig) -> dict[str, Any]:
    """What the strategy injected and whether it is really in the model's weights (pass/fail per target)."""
    from lstm_influence.strategies import verify_influence as _verify

    return _verify(model, cfg)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train one run, log it to MLflow, and return its summary metrics and run id."""
    from lstm_influence.runner import run as _run

    return _run(cfg)
