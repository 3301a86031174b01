"""lstm_influence: compare ways of pushing prior knowledge into a Keras LSTM, and measure whether they help.

The public API::

    import lstm_influence as li
    cfg = li.compose(["strategy=bias_init", "dataset=financial"])
    data = li.load_dataset(cfg)
    model = li.build_model(cfg, data)
    report = li.verify_influence(model, cfg)
    summary = li.run(cfg)

Plug-ins subclass ``li.Strategy`` or return ``li.Dataset`` and raise ``li.ConfigError`` (see the README, "Bring your
own strategy or dataset").

Importing the package imports nothing heavy: ``compose`` (Hydra) is loaded on first use (PEP 562), and the
functions that need TensorFlow import it when called, so ``import lstm_influence.layers`` stays Keras and NumPy only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    from omegaconf import DictConfig

    from lstm_influence.config.compose import compose
    from lstm_influence.config.errors import ConfigError
    from lstm_influence.datasets.base import Dataset, DatasetError
    from lstm_influence.strategies.base import Strategy

__all__ = [
    "ConfigError",
    "Dataset",
    "DatasetError",
    "Strategy",
    "build_model",
    "compose",
    "load_dataset",
    "run",
    "verify_influence",
]
__version__ = "0.1.0"


def load_dataset(cfg: DictConfig) -> Dataset:
    """The dataset that ``cfg.dataset`` names, split into train/val/test, with its trivial baseline."""
    from lstm_influence.datasets import load_dataset as _load

    return _load(cfg)


def build_model(cfg: DictConfig, data: Dataset) -> keras.Model:
    """The compiled Keras model with the configured strategy applied; its LSTM layer is named ``lstm``.

    ``cfg`` is checked first, as a run checks it (:func:`lstm_influence.config.validate`, then the strategy's own
    ``validate`` for ``data``'s sizes): a value that cannot work raises ``ConfigError`` before any layer exists.
    """
    from lstm_influence.config.validation import validate
    from lstm_influence.strategies import strategy_for_data
    from lstm_influence.training.trainable import build_model as _build

    return _build(cfg, data, strategy_for_data(validate(cfg), data))


def verify_influence(model: keras.Model, cfg: DictConfig) -> dict[str, Any]:
    """What the strategy injected and whether it is really in the model's weights (pass/fail per target)."""
    from lstm_influence.strategies import verify_influence as _verify

    return _verify(model, cfg)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train one run, log it to MLflow, and return its summary metrics and run id."""
    from lstm_influence.training.runner import run as _run

    return _run(cfg)


# What a plug-in subclasses, returns or raises: `li.Strategy` (imports Keras), `li.Dataset`, `li.ConfigError`, ...
_LAZY = {
    "Strategy": "lstm_influence.strategies.base",
    "Dataset": "lstm_influence.datasets.base",
    "DatasetError": "lstm_influence.datasets.base",
    "ConfigError": "lstm_influence.config.errors",
}


def __getattr__(name: str) -> Any:
    # PEP 562: `li.compose` imports Hydra and the config schema only when first asked for; `li.Strategy` Keras.
    if name == "compose":
        from lstm_influence.config.compose import compose

        return compose
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
