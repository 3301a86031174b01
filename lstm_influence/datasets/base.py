"""The common dataset object every family returns, and the arithmetic of trivial baselines."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

LossKind = Literal["mse", "sparse_categorical_crossentropy"]
Split = tuple[np.ndarray, np.ndarray]


class DatasetError(ValueError):
    """Bad data or a dataset configuration that cannot work; raised before any training starts."""


@dataclass(frozen=True)
class Dataset:
    """Train/val/test arrays plus what a run needs to read its losses against a memoryless predictor.

    Attributes:
        name: the family (``synthetic``, ``financial``, ``text``).
        train, val, test: ``(x, y)`` pairs. ``x`` is float32 ``(n, seq_len, n_features)``, or int32
            ``(n, seq_len)`` token ids when ``input_vocab`` is set (the model one-hot encodes them).
            ``y`` is float32 ``(n, output_dim)`` or ``(n, seq_len, output_dim)`` for regression, int32
            ``(n,)`` or ``(n, seq_len)`` class ids for classification.
        loss: ``"mse"`` or ``"sparse_categorical_crossentropy"`` (the model emits logits).
        baseline_loss: the trivial (memoryless) predictor's loss, ``{"val": .., "test": ..}`` and
            optionally ``"train"``, in the same units as ``loss``.
        feature_names: one name per input feature (for token inputs: one per vocabulary entry).
        metadata: source, sizes, split boundaries and anything a reader of the run needs; logged to MLflow.
        input_vocab: vocabulary size when ``x`` holds token ids; None for real-valued features.
        n_classes: number of output classes for classification; None for regression.
        sequence_output: targets at every time step (many-to-many) rather than one per sequence.
        extra_baselines: other reference losses worth reporting (e.g. persistence for financial data).
    """

    name: str
    train: Split
    val: Split
    test: Split
    loss: LossKind
    baseline_loss: dict[str, float]
    feature_names: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    input_vocab: int | None = None
    n_classes: int | None = None
    sequence_output: bool = False
    extra_baselines: dict[str, float] = field(default_factory=dict)

    @property
    def seq_len(self) -> int:
        return int(self.train[0].shape[1])

    @property
    def n_features(self) -> int:
        """The LSTM's input dimension."""
        return self.input_vocab if self.input_vocab is not None else int(self.train[0].shape[-1])

    @property
    def output_dim(self) -> int:
        """Units of the model's Dense head."""
        if self.n_classes is not None:
            return self.n_classes
        y = self.train[1]
        return 1 if y.ndim == 1 else int(y.shape[-1])

    @property
    def is_classification(self) -> bool:
        return self.loss == "sparse_categorical_crossentropy"

    def norm_loss(self, loss: float, split: str = "val") -> float:
        """``loss`` divided by the trivial baseline's loss on ``split`` (1 = no better than memoryless)."""
        return float(loss) / self.baseline_loss[split]


def mse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error in float64."""
    diff = np.asarray(prediction, np.float64) - np.asarray(target, np.float64)
    return float(np.mean(diff**2))


def unigram_cross_entropy(train_ids: np.ndarray, eval_ids: np.ndarray, n_classes: int) -> float:
    """Cross-entropy (nats per symbol) of the train symbol frequencies as a predictor of ``eval_ids``.

    Symbols never seen in train get add-one (Laplace) smoothed mass, so the loss stays finite.
    """
    counts = np.bincount(np.asarray(train_ids).ravel(), minlength=n_classes).astype(np.float64)
    if not np.all(counts > 0):
        counts = counts + 1.0
    probs = counts / counts.sum()
    return float(-np.mean(np.log(probs[np.asarray(eval_ids).ravel()])))


NATS_PER_BIT = math.log(2.0)
