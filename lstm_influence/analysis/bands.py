"""Learning-curve bands and reference predictors per dataset × arm: pure functions of the per-epoch metrics.

* :func:`convergence_bands`: the median and spread of a per-epoch metric across seeds, epoch by epoch;
* :func:`reference_predictors`: the reference predictors' normalised losses, one value per dataset when every run
  logged the same (they depend on the data only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstm_influence.analysis.estimators import CONFIDENCE, finite_or_inf, iqm, iqm_interval
from lstm_influence.metrics import REFERENCE_NORM_PATTERN, VAL_NORM_LOSS, non_negative


def reference_predictors(metrics: pd.DataFrame, runs: pd.DataFrame, *, tolerance: float = 1e-9) -> pd.DataFrame:
    """Reference predictors' normalised losses per dataset, from the ``baseline/<predictor>/<split>_norm_loss``
    metrics every run logs (:func:`~lstm_influence.metrics.reference_metric`).

    A reference predictor depends only on the data, so every run on one dataset should log the same value; a spread
    above ``tolerance`` (relative) means the runs saw different data and is flagged.

    Args:
        metrics: tidy summary metrics (``run_id, metric, value``).
        runs: the runs frame; only included runs count.

    Returns:
        Columns ``dataset, predictor, split, value`` (the median over runs), ``low, high`` (the smallest and largest
        value), ``n_runs``, ``agree`` (bool), one row per dataset × predictor × split; the trivial predictor (1 by
        definition) is not listed.
    """
    columns = ["dataset", "predictor", "split", "value", "low", "high", "n_runs", "agree"]
    used = runs.loc[runs["included"], ["run_id", "dataset"]] if "included" in runs else runs[["run_id", "dataset"]]
    pattern = REFERENCE_NORM_PATTERN
    parts = metrics["metric"].str.extract(pattern)
    ref = metrics.assign(predictor=parts["predictor"], split=parts["split"]).dropna(subset=["predictor"])
    ref = ref[["run_id", "predictor", "split", "value"]].merge(used, on="run_id")
    if ref.empty:
        return pd.DataFrame(columns=columns)
    ref = ref.assign(value=finite_or_inf(ref["value"]))
    grouped = ref.groupby(["dataset", "predictor", "split"], sort=True)["value"]
    out = grouped.agg(value="median", low="min", high="max", n_runs="size").reset_index()
    scale = np.maximum(np.abs(out["value"].to_numpy(dtype=float)), 1e-300)
    out["agree"] = (out["high"] - out["low"]).to_numpy(dtype=float) <= tolerance * scale
    return out[columns]


# --------------------------------------------------------------------------------------------- curves


def convergence_bands(
    history: pd.DataFrame, metric: str = VAL_NORM_LOSS, *, confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """Per-epoch IQM across seeds with its Tukey–McLaughlin interval, per dataset × arm (the learning curves).

    The band at each epoch is the interval the summary tables give the final IQM (:func:`iqm_interval`, coverage
    checked in :mod:`~lstm_influence.analysis.coverage`), clipped at 0 for a metric declared non-negative.

    Args:
        history: tidy per-epoch metrics, columns ``run_id, dataset, arm, seed, metric, step, value``.
        metric: the per-epoch metric to summarise.
        confidence: the band's two-sided level.

    Returns:
        Columns ``dataset, arm, step, n, iqm, low, high``. At each epoch only the runs that logged a finite
        value count, so a run that diverged (or stopped early) leaves the curve after its last finite epoch; the
        band is NaN where fewer than two runs remain.
    """
    columns = ["dataset", "arm", "step", "n", "iqm", "low", "high"]
    h = history[history["metric"] == metric].copy()
    if h.empty:
        return pd.DataFrame(columns=columns)
    h["value"] = finite_or_inf(h["value"])
    h = h[np.isfinite(h["value"])]
    floor = 0.0 if non_negative(metric) else -np.inf
    parts = []
    for (dataset, arm), cell in h.groupby(["dataset", "arm"], sort=True):
        grid = cell.pivot_table(index="step", columns="run_id", values="value", aggfunc="last").sort_index()
        values = grid.to_numpy(dtype=float)
        present = ~np.isnan(values)
        point, low, high = (np.full(len(grid), np.nan) for _ in range(3))
        for i, (row, mask) in enumerate(zip(values, present)):
            if mask.any():
                point[i] = iqm(row[mask])
            if mask.sum() >= 2:
                lo, hi = iqm_interval(row[mask], confidence=confidence)
                low[i], high[i] = max(float(lo), floor), float(hi)
        parts.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "arm": arm,
                    "step": grid.index.to_numpy(),
                    "n": present.sum(axis=1),
                    "iqm": point,
                    "low": low,
                    "high": high,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[columns]
