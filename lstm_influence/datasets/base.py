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
        reference_losses: reference predictors fitted on the training split only, predictor name ->
            ``{"val": loss, "test": loss}`` in the same units as ``loss`` (e.g. ``persistence``, ``ridge``,
            ``ngram``; see :mod:`lstm_influence.datasets.reference`). The runner logs each as
            ``baseline/<predictor>/{val,test}_loss`` and ``..._norm_loss``.
        spans: for ordered data, per split an array ``(n, 2)`` of the first input position and the last target
            position each sample touches (``datetime64[D]`` dates for financial data, character offsets for
            text); empty where samples are independent draws. Lets a reader check that no sample crosses a
            split boundary.
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
    reference_losses: dict[str, dict[str, float]] = field(default_factory=dict)
    spans: dict[str, np.ndarray] = field(default_factory=dict)

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


def unigram_probs(train_ids: np.ndarray, n_classes: int, *, smooth: bool = False) -> np.ndarray:
    """Symbol frequencies of ``train_ids`` over ``n_classes`` ids; ``smooth`` adds one to every count (Laplace)."""
    counts = np.bincount(np.asarray(train_ids).ravel(), minlength=n_classes).astype(np.float64)
    if smooth:
        counts = counts + 1.0
    return counts / counts.sum()


def cross_entropy(probs: np.ndarray, ids: np.ndarray) -> float:
    """Mean negative log-probability (nats per symbol) of ``ids`` under ``probs``.

    Args:
        probs: ``(n_classes,)`` one distribution for every symbol, or ``(..., n_classes)`` broadcastable
            against ``ids`` (e.g. one distribution per time step).
        ids: integer symbols.
    """
    ids = np.asarray(ids)
    probs = np.asarray(probs, np.float64)
    if probs.ndim == 1:
        picked = probs[ids]
    else:
        picked = np.take_along_axis(np.broadcast_to(probs, (*ids.shape, probs.shape[-1])), ids[..., None], -1)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(picked)))


def unigram_cross_entropy(train_ids: np.ndarray, eval_ids: np.ndarray, n_classes: int) -> float:
    """Cross-entropy (nats per symbol) of the train symbol frequencies as a predictor of ``eval_ids``.

    Counts are add-one (Laplace) smoothed when some of the ``n_classes`` symbols has no train count, so the loss is
    finite on any ``eval_ids``; the decision depends on ``train_ids`` alone, never on what is evaluated.
    """
    counts = np.bincount(np.asarray(train_ids).ravel(), minlength=n_classes)
    smooth = bool(np.any(counts == 0))
    return cross_entropy(unigram_probs(train_ids, n_classes, smooth=smooth), eval_ids)


def check_fractions(cfg: Any, source: str) -> tuple[float, float, float]:
    """``(train_frac, val_frac, test_frac)`` from ``cfg``, each in (0, 1) and adding up to 1.

    Raises:
        DatasetError: naming ``source`` and the fractions received.
    """
    fractions = (float(cfg.train_frac), float(cfg.val_frac), float(cfg.test_frac))
    text = ", ".join(f"{k}={v:g}" for k, v in zip(("train_frac", "val_frac", "test_frac"), fractions))
    if not all(0.0 < f < 1.0 for f in fractions):
        raise DatasetError(f"{source}: split fractions {text}: each must lie strictly between 0 and 1")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise DatasetError(f"{source}: split fractions {text} add up to {sum(fractions):g}, expected 1")
    return fractions


def check_baselines(baselines: dict[str, float], source: str) -> dict[str, float]:
    """The baselines as floats, after checking each is finite and positive (``norm_loss`` divides by them)."""
    for split, value in baselines.items():
        if not (math.isfinite(value) and value > 0.0):
            raise DatasetError(
                f"{source}: the trivial baseline loss on {split} is {value!r}; a normalised loss needs a "
                "positive finite baseline (is the data constant?)"
            )
    return {split: float(value) for split, value in baselines.items()}


NATS_PER_BIT = math.log(2.0)


def csv_line(index: int) -> int:
    """The line of a CSV file that holds data row ``index`` (line 1 is the header): what an error message names."""
    return index + 2


def numeric_column(frame: Any, column: str, source: str, note: str = "") -> np.ndarray:
    """Column ``column`` of a pandas table as float64, every cell a finite number.

    Raises:
        DatasetError: naming the file, the column, the first bad line and its cell, and how many rows are bad;
            ``note`` follows (what the column is for).
    """
    import pandas as pd

    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "is empty" if pd.isna(raw.iloc[i]) else f"{raw.iloc[i]!r} is not a finite number"
        raise DatasetError(
            f"{source}: column {column!r} line {csv_line(i)}: {what} ({int(bad.sum())} such row(s))"
            + (f"; {note}" if note else "")
        )
    return values
