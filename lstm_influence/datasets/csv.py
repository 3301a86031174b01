"""``dataset=csv``: the user's own multivariate series, one row per time step, as windows -> a value ahead.

With the rows in time order (by ``time_column`` when one is named, else as in the file), ``X_t`` the feature
columns of row ``t`` and ``y_t`` the target column, a sample is the ``seq_len`` rows ending at row ``t`` and its
target is ``y_{t + horizon}``. Features are every numeric column except ``time_column`` unless listed, the target's
own past included. The rows are split chronologically (``train_frac``, ``val_frac``, ``test_frac``) and a sample's
inputs and target lie inside one block, so no window crosses a boundary.

- ``task=regression``: features and target are standardised with the mean and standard deviation of the train block
  only; the loss is MSE; the trivial predictor is the train mean. References fitted on train only: ``persistence``
  (the target's last observed value, ``y_t``) and ``ridge`` (a ridge regression on the flattened window,
  :func:`lstm_influence.datasets.reference.fit_ridge`).
- ``task=classification``: the target's distinct values are the classes (sorted; any values, numbers or labels);
  the loss is cross-entropy; the trivial predictor is the train class frequencies (add-one smoothed where a class
  never occurs in train). Reference: ``markov``, the train frequencies of ``y_{t + horizon}`` given ``y_t``
  (add-one smoothed).

Every mistake in the file or the keys (a missing file or column, a non-numeric or empty cell, a constant target,
too few rows for one window in a split) is a :class:`~lstm_influence.datasets.base.DatasetError` naming the value
and what would be valid. Nothing here is random: ``data_seed`` is unused.
"""

from __future__ import annotations

import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import pandas as pd

from lstm_influence.datasets.base import (
    Dataset,
    DatasetError,
    check_baselines,
    check_fractions,
    cross_entropy,
    csv_line,
    mse,
    numeric_column,
    unigram_cross_entropy,
)
from lstm_influence.datasets.reference import ridge_losses

Task = Literal["regression", "classification"]
TASKS: tuple[str, ...] = typing.get_args(Task)
SPLITS = ("train", "val", "test")


def _read(path: str | None) -> tuple[pd.DataFrame, str]:
    if path is None or not str(path).strip():
        raise DatasetError("dataset.path=null: dataset=csv needs the CSV file to read (dataset.path=my_series.csv)")
    file = Path(str(path)).expanduser()
    source = str(file)
    if not file.is_file():
        raise DatasetError(f"dataset.path={source}: no such file")
    try:
        frame = pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"dataset.path={source}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as err:
        raise DatasetError(f"dataset.path={source}: cannot be read as a CSV table ({err})") from None
    frame.columns = [str(column) for column in frame.columns]
    if frame.empty:
        raise DatasetError(f"dataset.path={source}: the file has a header but no rows")
    return frame, source


def _require(frame: pd.DataFrame, column: str, key: str, source: str) -> None:
    if column not in frame.columns:
        found = ", ".join(repr(c) for c in frame.columns)
        raise DatasetError(f"dataset.{key}={column!r}: {source} has no such column; its columns are {found}")


def _numbers(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    return numeric_column(frame, column, source, "every feature cell, and a regression target's, must be a number")


def _order(frame: pd.DataFrame, time_column: str | None, source: str) -> tuple[pd.DataFrame, bool]:
    """The rows in time order, and whether they had to be re-sorted."""
    if time_column is None:
        return frame, False
    _require(frame, time_column, "time_column", source)
    raw = frame[time_column]
    if raw.isna().any():
        i = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise DatasetError(f"{source}: column {time_column!r} line {csv_line(i)} is empty (dataset.time_column)")
    keys = pd.to_numeric(raw, errors="coerce")
    if keys.isna().any():  # not numbers: times
        keys = pd.to_datetime(raw, format="mixed", errors="coerce")
        if keys.isna().any():
            i = int(np.flatnonzero(keys.isna().to_numpy())[0])
            raise DatasetError(
                f"{source}: column {time_column!r} line {csv_line(i)}: {raw.iloc[i]!r} is neither a number nor a time "
                "(dataset.time_column orders the rows)"
            )
    order = np.argsort(keys.to_numpy(), kind="stable")
    resorted = bool(np.any(order != np.arange(len(order))))
    return frame.iloc[order].reset_index(drop=True), resorted


def load(
    *,
    name: str = "csv",
    path: str | None = None,
    target: str | None = None,
    features: list[str] | None = None,
    time_column: str | None = None,
    seq_len: int = 30,
    horizon: int = 1,
    task: Task = "regression",
    train_frac: float = 0.7,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    **kwargs: Any,
) -> Dataset:
    """Windows of the user's series at ``path`` predicting ``target`` ``horizon`` rows ahead (see the module doc).

    Args:
        name: the dataset's name (its tag and the run name's dataset).
        path: the CSV file (``.csv`` or ``.csv.gz``); required.
        target: the target column; required.
        features: the input columns; None: every numeric column except ``time_column`` (the target included).
        time_column: orders the rows when set (numbers or times), and is never a feature; None: the file's order.
        seq_len: rows per window.
        horizon: rows ahead of the window's last row that the target is read (>= 1).
        task: ``regression`` (MSE on the standardised target) or ``classification`` (the target's values are the
            classes).
        train_frac, val_frac, test_frac: chronological split fractions; they must add up to 1.
        **kwargs: keys the framework reads (``data_seed``, ``target_norm_loss``); unused here.

    Raises:
        DatasetError: naming the bad value and what would be valid.
    """
    _check_arguments(target, seq_len, horizon)
    fractions = check_fractions(
        SimpleNamespace(train_frac=train_frac, val_frac=val_frac, test_frac=test_frac), "dataset=csv"
    )
    frame, source = _read(path)
    _require(frame, target, "target", source)
    frame, resorted = _order(frame, time_column, source)
    features = _feature_columns(frame, features, time_column, source)
    values = np.stack([_numbers(frame, column, source) for column in features], axis=1)
    n_rows = len(frame)
    blocks = _blocks(n_rows, fractions, seq_len, horizon, source)
    ends = {split: np.arange(start + seq_len - 1, stop - horizon) for split, (start, stop) in blocks.items()}
    x, feature_mean, feature_std = _scaled_windows(values, blocks["train"][1], ends, seq_len)
    metadata: dict[str, Any] = {
        "source": f"user CSV {source}",
        "file": source,
        "rows": n_rows,
        "resorted_by_time": resorted,
        "time_column": time_column,
        "features": list(features),
        "target": target,
        "task": task,
        "horizon": horizon,
        "seq_len": seq_len,
        "sizes": {split: len(e) for split, e in ends.items()},
        "split_rows": {split: [start, stop] for split, (start, stop) in blocks.items()},
        "scaling": _scaling_note(feature_mean, feature_std),
    }
    spans = {split: np.stack([e - seq_len + 1, e + horizon], axis=1) for split, e in ends.items()}
    if task == "regression":
        return _regression(name, frame, target, source, x, ends, blocks, horizon, metadata, spans, list(features))
    return _classification(name, frame, target, source, x, ends, horizon, metadata, spans, list(features))


def _check_arguments(target: str | None, seq_len: int, horizon: int) -> None:
    if target is None:
        raise DatasetError("dataset.target=null: dataset=csv needs the target column (dataset.target=<column>)")
    for key, value in (("seq_len", seq_len), ("horizon", horizon)):
        if value < 1:
            raise DatasetError(f"dataset.{key}={value}: expected a positive integer")


def _scaling_note(feature_mean: np.ndarray, feature_std: np.ndarray) -> dict[str, Any]:
    return {
        "fitted_on": "train block",
        "feature_mean": [float(v) for v in feature_mean],
        "feature_std": [float(v) for v in feature_std],
    }


def _feature_columns(
    frame: pd.DataFrame, features: list[str] | None, time_column: str | None, source: str
) -> list[str]:
    """The input columns: those named, checked, or every numeric column but the time column."""
    if features is None:
        found = [c for c in frame.columns if c != time_column and pd.api.types.is_numeric_dtype(frame[c])]
        if not found:
            raise DatasetError(
                f"dataset.features=null: {source} has no numeric column besides the time column; name the features "
                f"(dataset.features=[...]) among {', '.join(repr(c) for c in frame.columns)}"
            )
        return found
    if not features:
        raise DatasetError("dataset.features=[]: expected null (every numeric column) or a list of columns")
    if len(set(features)) != len(features):
        raise DatasetError(f"dataset.features={list(features)}: a column is listed twice")
    for column in features:
        _require(frame, column, "features", source)
        if column == time_column:
            raise DatasetError(f"dataset.features: {column!r} is the time_column, which is never a feature")
    return features


def _blocks(
    n_rows: int, fractions: tuple[float, float, float], seq_len: int, horizon: int, source: str
) -> dict[str, tuple[int, int]]:
    """The chronological train, val and test blocks of rows, each long enough for one window and its target."""
    n_train = round(fractions[0] * n_rows)
    n_val = round(fractions[1] * n_rows)
    blocks = dict(zip(SPLITS, [(0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_rows)]))
    for split, (start, stop) in blocks.items():
        if stop - start < seq_len + horizon:
            raise DatasetError(
                f"{source}: {n_rows} rows give the {split} split {stop - start} rows, fewer than seq_len + horizon "
                f"= {seq_len} + {horizon} needed for one window; use a longer series, a smaller dataset.seq_len or "
                "other split fractions"
            )
    return blocks


def _scaled_windows(
    values: np.ndarray, n_train: int, ends: dict[str, np.ndarray], seq_len: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per split, the input windows ending at ``ends``, standardised with the train block's mean and standard
    deviation; and that mean and deviation."""
    train_rows = values[:n_train]
    feature_mean = train_rows.mean(axis=0)
    feature_std = train_rows.std(axis=0)
    feature_std = np.where(feature_std > 0, feature_std, 1.0)
    scaled = ((values - feature_mean) / feature_std).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(scaled, seq_len, axis=0)  # (rows - T + 1, F, T)
    x = {split: np.ascontiguousarray(windows[e - seq_len + 1].transpose(0, 2, 1)) for split, e in ends.items()}
    return x, feature_mean, feature_std


def _regression(name, frame, target, source, x, ends, blocks, horizon, metadata, spans, features) -> Dataset:
    raw = _numbers(frame, target, source)
    if np.all(raw == raw[0]):
        raise DatasetError(
            f"dataset.target={target!r}: the column is constant ({raw[0]:g}) in {source}: nothing to predict"
        )
    train_values = raw[: blocks["train"][1]]
    mean, std = float(train_values.mean()), float(train_values.std())
    if std == 0.0:
        raise DatasetError(
            f"dataset.target={target!r}: constant ({mean:g}) over the train block of {source}; standardising needs "
            "variation there (use other split fractions)"
        )
    scaled = (raw - mean) / std
    y = {split: scaled[e + horizon].astype(np.float32)[:, None] for split, e in ends.items()}
    arrays = {split: (x[split], y[split]) for split in SPLITS}
    baseline = {split: mse(np.zeros_like(y[split]), y[split]) for split in SPLITS}  # the train mean is 0 here
    persistence = {split: mse(scaled[e], y[split][:, 0]) for split, e in ends.items() if split != "train"}
    ridge, fit = ridge_losses((x["train"], y["train"]), {s: (x[s], y[s]) for s in ("val", "test")})
    metadata.update(
        {
            "target_scaling": {"fitted_on": "train block", "mean": mean, "std": std},
            "baseline": "train-mean predictor (MSE of the standardised target about the mean train target)",
            "reference": {
                "persistence": "predict the target's last observed value",
                "ridge": f"ridge regression on the flattened input window, fitted on train; penalty "
                f"{fit.penalty:.3g} chosen by leave-one-out MSE on train ({fit.loo_mse:.6g})",
            },
        }
    )
    return Dataset(
        name=name,
        train=arrays["train"],
        val=arrays["val"],
        test=arrays["test"],
        loss="mse",
        baseline_loss=check_baselines(baseline, source),
        feature_names=features,
        metadata=metadata,
        reference_losses={
            "persistence": {s: persistence[s] for s in ("val", "test")},
            "ridge": ridge,
        },
        spans=spans,
    )


def _classification(name, frame, target, source, x, ends, horizon, metadata, spans, features) -> Dataset:
    raw = frame[target]
    if raw.isna().any():
        i = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise DatasetError(f"{source}: column {target!r} line {csv_line(i)} is empty (dataset.target)")
    classes, ids = np.unique(raw.to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise DatasetError(
            f"dataset.target={target!r}: the column holds one class ({classes[0]!r}) in {source}: nothing to predict"
        )
    ids = ids.astype(np.int32)
    n_classes = len(classes)
    y = {split: ids[e + horizon] for split, e in ends.items()}
    arrays = {split: (x[split], y[split]) for split in SPLITS}
    baseline = {split: unigram_cross_entropy(y["train"], y[split], n_classes) for split in SPLITS}
    # markov: P(y_{t+h} | y_t) counted on train, add-one smoothed, so every class keeps some mass.
    counts = np.ones((n_classes, n_classes))
    np.add.at(counts, (ids[ends["train"]], y["train"]), 1.0)
    table = counts / counts.sum(axis=1, keepdims=True)
    markov = {split: cross_entropy(table[ids[ends[split]]], y[split]) for split in ("val", "test")}
    metadata.update(
        {
            "classes": [c.item() if hasattr(c, "item") else c for c in classes],
            "baseline": "train class frequencies (add-one smoothed when a class never occurs in train)",
            "reference": {"markov": "train frequencies of the class ahead given the last observed class, add-one"},
        }
    )
    return Dataset(
        name=name,
        train=arrays["train"],
        val=arrays["val"],
        test=arrays["test"],
        loss="sparse_categorical_crossentropy",
        baseline_loss=check_baselines(baseline, source),
        feature_names=features,
        metadata=metadata,
        n_classes=n_classes,
        reference_losses={"markov": markov},
        spans=spans,
    )


__all__ = ["TASKS", "load"]
