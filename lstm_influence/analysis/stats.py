"""Statistics for comparing influence strategies across seeds, after rliable (Agarwal et al. 2021).

Every function here is pure: numbers or tidy frames in, numbers or tidy frames out. Nothing reads MLflow or
writes files.

Data contract. A *scores* frame (see :func:`metric_scores`) has one row per training run and the columns
``run_id, dataset, strategy, seed, value, status, diverged``; ``status`` is one of

* ``"ok"``: the run logged a finite value;
* ``"censored"``: ``conv/epochs_to_target`` of a run that never reached the target; ``value`` holds the censoring
  value ``train.epochs + 1`` (one epoch past the budget, so it ranks below every run that reached the target);
* ``"worst"``: a run that diverged, or logged a non-finite value; ``value`` is ``+inf`` for a lower-is-better
  metric and ``-inf`` otherwise, so the run takes the worst rank;
* ``"missing"``: a run that did not log the metric and did not diverge; it is left out of this metric.

Conventions.

* Direction. Losses are lower-is-better. rliable's metrics assume higher is better, so the rank-based quantities
  (probability of improvement) are computed on negated scores: P(improvement) of strategy X over the baseline Y
  on a dataset is P(L_X < L_Y) + ½·P(L_X = L_Y) for two runs drawn at random, one of each. Metrics in
  :data:`HIGHER_IS_BETTER` are not negated.
* Location (mean, median, IQM) uses the finite values only (``ok`` and ``censored`` rows): an infinite loss has no
  meaningful average. Diverged runs enter the rank-based quantities (P(improvement), Mann–Whitney) at the worst
  rank, and the divergence rate is reported beside every estimate.
* IQM is the 25 % trimmed mean (``scipy.stats.trim_mean(x, 0.25)``), as rliable's ``aggregate_iqm``.
* Intervals are percentile bootstrap intervals from ``scipy.stats.bootstrap`` (``method="percentile"``, as
  rliable), seeded, stratified: every sample (a dataset's runs of one strategy) is resampled on its own, so the
  number of runs per strategy and dataset is fixed in every resample. A cell with fewer than two runs gets no
  interval (NaN).
* p-values: two-sided Mann–Whitney U (``scipy.stats.mannwhitneyu``, ``method="auto"``: exact when a sample has at
  most 8 runs and there are no ties, otherwise the normal approximation with tie correction) of each strategy
  against the baseline on the same dataset; Holm's step-down correction over all those comparisons of one
  metric (the family is one metric's strategy × dataset comparisons).
* Censoring. ``conv/epochs_to_target`` is not logged when the target was never reached. Such a run is right-
  censored at the budget ``train.epochs``: for the rank-based statistics and IQM its value is ``train.epochs + 1``
  (worse than any run that reached the target, tied with the other censored runs); the Kaplan–Meier median
  (``scipy.stats.ecdf`` on ``CensoredData``) treats it as "not reached by epoch ``train.epochs``". A diverged run
  that never reached the target is censored the same way: it never gets there.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
IQM_TRIM = 0.25

#: The censored metrics and the 0/1 metric that says whether the event happened.
CENSORED_METRICS = {"conv/epochs_to_target": "conv/reached_target"}
#: Metrics where a larger value is better; every other metric is treated as lower-is-better.
HIGHER_IS_BETTER = frozenset({"conv/reached_target"})
#: Values this large are MLflow's encoding of an infinite metric (its SQL store writes ±inf as ±float max).
_INF_THRESHOLD = 1e300

SUMMARY_COLUMNS = [
    "metric",
    "lower_is_better",
    "dataset",
    "strategy",
    "n_runs",
    "n_finite",
    "n_worst",
    "n_censored",
    "seeds",
    "mean",
    "median",
    "iqm",
    "iqm_low",
    "iqm_high",
    "poi",
    "poi_low",
    "poi_high",
    "p_value",
    "p_holm",
    "n_diverged",
    "divergence_rate",
    "divergence_low",
    "divergence_high",
    "km_median",
    "km_low",
    "km_high",
    "n_reached",
    "budget",
]


def lower_is_better(metric: str, higher_is_better: Sequence[str] = ()) -> bool:
    """Whether a smaller value of ``metric`` is better (every metric except :data:`HIGHER_IS_BETTER` ones)."""
    return metric not in HIGHER_IS_BETTER and metric not in set(higher_is_better)


def finite_or_inf(values: np.ndarray | pd.Series) -> np.ndarray:
    """Float array with MLflow's ±float-max encoding turned back into ±inf."""
    arr = np.asarray(values, dtype=float).copy()
    arr[arr >= _INF_THRESHOLD] = np.inf
    arr[arr <= -_INF_THRESHOLD] = -np.inf
    return arr


# --------------------------------------------------------------------------------------------- scalar statistics


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean of the middle 50 % (``trim_mean(x, 0.25)``, as rliable)."""
    return stats.trim_mean(x, IQM_TRIM, axis=axis)


def _iqm_pooled(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """IQM of all samples pooled along ``axis`` (rliable's IQM over a runs × tasks matrix, unequal runs)."""
    return iqm(np.concatenate(samples, axis=axis), axis=axis)


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Stratified percentile-bootstrap interval of ``statistic(*samples, axis=-1)``.

    Args:
        samples: one 1-D array per stratum (e.g. a strategy's runs on one dataset); each is resampled with
            replacement on its own, keeping its size.
        statistic: a vectorised function ``f(*samples, axis=-1)`` (it receives arrays of shape
            ``(n_resamples, n_i)``).
        n_resamples: bootstrap resamples (rliable uses 2,000 or more).
        confidence: two-sided confidence level.
        seed: seeds ``numpy.random.default_rng``; the same seed gives the same interval.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when any sample has fewer than two values (no interval from one run).
    """
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if not arrays or any(a.size < 2 for a in arrays):
        return (np.nan, np.nan)
    res = stats.bootstrap(
        tuple(arrays),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        paired=False,
        rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def iqm_ci(
    x: np.ndarray, *, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the IQM of one sample (``(nan, nan)`` below two values)."""
    return bootstrap_ci([x], iqm, n_resamples=n_resamples, confidence=confidence, seed=seed)


def aggregate_iqm_ci(
    samples: Sequence[np.ndarray],
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, tuple[float, float]]:
    """IQM over several datasets' runs pooled, with a bootstrap stratified by dataset.

    Only meaningful for normalised scores (``*/norm_loss``), as rliable's aggregate over tasks.
    """
    arrays = [np.asarray(s, dtype=float) for s in samples]
    point = float(_iqm_pooled(*arrays)) if arrays and all(a.size for a in arrays) else np.nan
    ci = bootstrap_ci(arrays, _iqm_pooled, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return point, ci


def _poi_higher(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) from the Mann–Whitney U statistic of x (higher is better), as rliable."""
    u = stats.mannwhitneyu(x, y, axis=axis, method="asymptotic").statistic
    return u / (x.shape[axis] * y.shape[axis])


def _poi_mean_over_strata(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over strata of P(improvement); ``samples`` alternate ``x_1, y_1, x_2, y_2, ...``."""
    pairs = zip(samples[0::2], samples[1::2])
    return np.mean([_poi_higher(x, y, axis=axis) for x, y in pairs], axis=0)


def _oriented(x: np.ndarray, lower_better: bool) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    return -arr if lower_better else arr


def probability_of_improvement(x: np.ndarray, y: np.ndarray, *, lower_is_better: bool = True) -> float:
    """P(a run of X beats a run of Y), ties counting one half (rliable's Mann–Whitney-based estimate).

    Args:
        x: the candidate's scores (one per run).
        y: the reference's scores (the baseline).
        lower_is_better: for losses; the scores are negated, so "beats" means "has the lower loss".

    Returns:
        A probability in [0, 1]; 0.5 means no difference. NaN when either sample is empty.
    """
    x, y = _oriented(x, lower_is_better), _oriented(y, lower_is_better)
    if x.size == 0 or y.size == 0:
        return np.nan
    return float(_poi_higher(x, y))


def probability_of_improvement_ci(
    x: np.ndarray,
    y: np.ndarray,
    *,
    lower_is_better: bool = True,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Bootstrap interval of :func:`probability_of_improvement`, x and y resampled independently."""
    x, y = _oriented(x, lower_is_better), _oriented(y, lower_is_better)
    return bootstrap_ci([x, y], _poi_higher, n_resamples=n_resamples, confidence=confidence, seed=seed)


def aggregate_probability_of_improvement(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    lower_is_better: bool = True,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, tuple[float, float]]:
    """rliable's average probability of improvement over tasks, with a bootstrap stratified by task.

    Args:
        pairs: one ``(candidate_scores, baseline_scores)`` pair per dataset.
    """
    flat = [_oriented(a, lower_is_better) for pair in pairs for a in pair]
    if not flat or any(a.size == 0 for a in flat):
        return np.nan, (np.nan, np.nan)
    point = float(_poi_mean_over_strata(*flat))
    ci = bootstrap_ci(flat, _poi_mean_over_strata, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return point, ci


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Mann–Whitney U p-value (scipy's ``method="auto"``); NaN if a sample is empty or all tie."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control); NaNs stay NaN and are not counted.

    For the m non-NaN p-values sorted ascending, p_(i) is adjusted to max_{j ≤ i} min(1, (m − j + 1) p_(j)).
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    scaled = p[ok][order] * (m - np.arange(m))
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    inner = np.empty(m)
    inner[order] = adjusted
    out[ok] = inner
    return out


def proportion_ci(k: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """A rate ``k / n`` with its Wilson score interval (``scipy.stats.binomtest``); NaNs when ``n == 0``."""
    if n == 0:
        return np.nan, np.nan, np.nan
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return k / n, float(ci.low), float(ci.high)


@dataclass(frozen=True)
class KaplanMeierMedian:
    """Kaplan–Meier median time to an event with a pointwise (log-log) 95 % interval.

    ``median`` is NaN when the survival curve never drops to one half within the budget ("not reached");
    ``high`` is NaN when the interval's upper end is not reached.
    """

    median: float
    low: float
    high: float
    n_events: int
    n: int


def kaplan_meier_median(times: np.ndarray, event: np.ndarray, *, confidence: float = CONFIDENCE) -> KaplanMeierMedian:
    """Median time to event from right-censored data, via ``scipy.stats.ecdf`` on ``CensoredData``.

    Args:
        times: event time for runs with ``event``; censoring time (the budget) for the others.
        event: True where the event (reaching the target) was observed.
    """
    times = np.asarray(times, dtype=float)
    event = np.asarray(event, dtype=bool)
    n, n_events = int(times.size), int(event.sum())
    if n == 0 or n_events == 0:
        return KaplanMeierMedian(np.nan, np.nan, np.nan, n_events, n)
    res = stats.ecdf(stats.CensoredData(uncensored=times[event], right=times[~event]))

    def first_at_or_below_half(quantiles: np.ndarray, probabilities: np.ndarray) -> float:
        hit = np.flatnonzero(probabilities <= 0.5 + 1e-12)
        return float(quantiles[hit[0]]) if hit.size else np.nan

    sf = res.sf
    median = first_at_or_below_half(sf.quantiles, sf.probabilities)
    if n_events == n and n < 2:
        return KaplanMeierMedian(median, np.nan, np.nan, n_events, n)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # undefined where S(t) is 0 or 1: those ends are NaN and handled below
        warnings.filterwarnings("ignore", message="The confidence interval is undefined", category=RuntimeWarning)
        band = sf.confidence_interval(confidence, method="log-log")
    # Where S(t) is exactly 0 or 1 the band collapses onto S(t) itself: once every run has reached the target,
    # no interval can place the median later.
    low = first_at_or_below_half(
        band.low.quantiles, np.where(np.isnan(band.low.probabilities), sf.probabilities, band.low.probabilities)
    )
    high = first_at_or_below_half(
        band.high.quantiles, np.where(np.isnan(band.high.probabilities), sf.probabilities, band.high.probabilities)
    )
    return KaplanMeierMedian(median, low, high, n_events, n)


# --------------------------------------------------------------------------------------------- tidy frames


def strategy_order(strategies: Sequence[str], baseline: str = "baseline") -> list[str]:
    """Baseline first, then the project's strategies in their documented order, then any others sorted."""
    known = ["baseline", "custom_init", "input_transform", "bias_init", "extra_variable"]
    present = list(dict.fromkeys(strategies))
    ordered = [baseline] if baseline in present else []
    ordered += [s for s in known if s in present and s not in ordered]
    ordered += sorted(s for s in present if s not in ordered)
    return ordered


def metric_scores(
    runs: pd.DataFrame,
    metrics: pd.DataFrame,
    metric: str,
    *,
    higher_is_better: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per included training run with its score on ``metric`` and how that score was obtained.

    Args:
        runs: the runs frame (columns ``run_id, dataset, strategy, seed, diverged, budget`` and ``included``;
            see :func:`lstm_influence.analysis.load.runs_frame`); only rows with ``included`` are used.
        metrics: tidy summary metrics, columns ``run_id, metric, value``.
        metric: the metric to score.
        higher_is_better: extra metrics to treat as higher-is-better.

    Returns:
        Columns ``run_id, dataset, strategy, seed, value, status, diverged, budget`` (see the module docstring),
        sorted by dataset, strategy and seed.
    """
    used = runs[runs["included"]] if "included" in runs else runs
    frame = used[["run_id", "dataset", "strategy", "seed", "diverged", "budget"]].copy()
    frame["diverged"] = frame["diverged"].fillna(False).astype(bool)

    def logged(name: str) -> pd.Series:
        rows = metrics[metrics["metric"] == name].drop_duplicates("run_id", keep="last")
        return rows.set_index("run_id")["value"]

    m = logged(metric)
    was_logged = frame["run_id"].isin(m.index).to_numpy()
    value = finite_or_inf(frame["run_id"].map(m))
    diverged = frame["diverged"].to_numpy()
    frame["value"] = value
    status = np.where(np.isfinite(value), "ok", "missing").astype(object)

    if metric in CENSORED_METRICS:
        flag = frame["run_id"].map(logged(CENSORED_METRICS[metric])).to_numpy(dtype=float)
        budget = frame["budget"].to_numpy(dtype=float)
        not_reached = ~np.isfinite(value) & ((flag == 0) | diverged)
        placeable = not_reached & np.isfinite(budget)  # a censored run with an unknown budget cannot be placed
        status[placeable] = "censored"
        frame["value"] = np.where(placeable, budget + 1, value)
    else:
        worst = np.inf if lower_is_better(metric, higher_is_better) else -np.inf
        bad = ~np.isfinite(value) & (was_logged | diverged)
        status[bad] = "worst"
        frame.loc[bad, "value"] = worst
    frame["status"] = status
    # a fixed order (by seed) makes every bootstrap independent of the order MLflow returned the runs in
    frame = frame.sort_values(["dataset", "strategy", "seed", "run_id"], kind="stable")
    return frame[["run_id", "dataset", "strategy", "seed", "value", "status", "diverged", "budget"]].reset_index(
        drop=True
    )


def summarize(
    scores: pd.DataFrame,
    metric: str,
    *,
    baseline: str = "baseline",
    higher_is_better: Sequence[str] = (),
    aggregate: bool | None = None,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Per dataset × strategy statistics of one metric, plus ``dataset == "all"`` aggregates.

    Args:
        scores: from :func:`metric_scores`.
        metric: the metric's name (for the direction and the censoring rule).
        baseline: the reference strategy for P(improvement) and the tests.
        higher_is_better: extra metrics to treat as higher-is-better.
        aggregate: add the across-datasets rows (IQM pooled over datasets, rliable's mean P(improvement)); by
            default only for normalised metrics (``norm`` in the name) and when there are two or more datasets
            shared by every strategy. P(improvement) is scale-free, the pooled IQM is not.
        n_resamples, confidence, seed: bootstrap settings (one seed for every cell, so each is reproducible alone).

    Returns:
        One row per (dataset, strategy) with :data:`SUMMARY_COLUMNS`; ``p_holm`` is Holm-adjusted over all the
        per-dataset comparisons with the baseline in this frame.
    """
    lower = lower_is_better(metric, higher_is_better)
    boot = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    used = scores[scores["status"] != "missing"]
    datasets = sorted(used["dataset"].unique())
    strategies = strategy_order(used["strategy"].unique(), baseline)
    rows = []
    for dataset in datasets:
        d = used[used["dataset"] == dataset]
        base = d.loc[d["strategy"] == baseline, "value"].to_numpy(dtype=float)
        for strategy in strategies:
            cell = d[d["strategy"] == strategy]
            if cell.empty:
                continue
            values = cell["value"].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            row = {
                "metric": metric,
                "lower_is_better": lower,
                "dataset": dataset,
                "strategy": strategy,
                "n_runs": len(cell),
                "n_finite": int(finite.size),
                "n_worst": int((cell["status"] == "worst").sum()),
                "n_censored": int((cell["status"] == "censored").sum()),
                "seeds": ",".join(str(s) for s in sorted(cell["seed"].dropna().astype(int))),
                "mean": float(np.mean(finite)) if finite.size else np.nan,
                "median": float(np.median(finite)) if finite.size else np.nan,
                "iqm": float(iqm(finite)) if finite.size else np.nan,
            }
            row["iqm_low"], row["iqm_high"] = iqm_ci(finite, **boot)
            n_div = int(cell["diverged"].sum())
            row["n_diverged"] = n_div
            row["divergence_rate"], row["divergence_low"], row["divergence_high"] = proportion_ci(
                n_div, len(cell), confidence=confidence
            )
            if strategy != baseline and base.size:
                row["poi"] = probability_of_improvement(values, base, lower_is_better=lower)
                row["poi_low"], row["poi_high"] = probability_of_improvement_ci(
                    values, base, lower_is_better=lower, **boot
                )
                row["p_value"] = mann_whitney_p(values, base)
            if metric in CENSORED_METRICS:
                event = (cell["status"] == "ok").to_numpy()
                times = np.where(event, values, cell["budget"].to_numpy(dtype=float))
                km = kaplan_meier_median(times, event, confidence=confidence)
                row.update(km_median=km.median, km_low=km.low, km_high=km.high, n_reached=km.n_events)
                budgets = cell["budget"].dropna().unique()
                row["budget"] = float(budgets.max()) if budgets.size else np.nan
            rows.append(row)
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if not out.empty:
        out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float))
    agg = _aggregate_rows(used, metric, strategies, baseline, lower, aggregate, boot)
    if agg:
        out = pd.concat([out, pd.DataFrame(agg, columns=SUMMARY_COLUMNS)], ignore_index=True)
    return out


def _aggregate_rows(
    used: pd.DataFrame,
    metric: str,
    strategies: list[str],
    baseline: str,
    lower: bool,
    aggregate: bool | None,
    boot: dict,
) -> list[dict]:
    by_strategy = {s: set(used.loc[used["strategy"] == s, "dataset"]) for s in strategies}
    shared = sorted(set.intersection(*by_strategy.values())) if by_strategy else []
    if len(shared) < 2 or aggregate is False:
        return []
    pooled_iqm = aggregate if aggregate is not None else "norm" in metric
    rows = []
    for strategy in strategies:
        cells = [used[(used["dataset"] == d) & (used["strategy"] == strategy)] for d in shared]
        row: dict = {"metric": metric, "lower_is_better": lower, "dataset": "all", "strategy": strategy}
        row["n_runs"] = sum(len(c) for c in cells)
        row["n_diverged"] = int(sum(c["diverged"].sum() for c in cells))
        row["divergence_rate"], row["divergence_low"], row["divergence_high"] = proportion_ci(
            row["n_diverged"], row["n_runs"], confidence=boot["confidence"]
        )
        if pooled_iqm:
            finite = [c["value"].to_numpy(dtype=float) for c in cells]
            finite = [f[np.isfinite(f)] for f in finite]
            row["n_finite"] = sum(f.size for f in finite)
            row["iqm"], (row["iqm_low"], row["iqm_high"]) = aggregate_iqm_ci(finite, **boot)
        if strategy != baseline and baseline in by_strategy:
            pairs = [
                (
                    used.loc[(used["dataset"] == d) & (used["strategy"] == strategy), "value"].to_numpy(float),
                    used.loc[(used["dataset"] == d) & (used["strategy"] == baseline), "value"].to_numpy(float),
                )
                for d in shared
            ]
            row["poi"], (row["poi_low"], row["poi_high"]) = aggregate_probability_of_improvement(
                pairs, lower_is_better=lower, **boot
            )
        rows.append(row)
    return rows


def convergence_bands(
    history: pd.DataFrame,
    metric: str = "val/norm_loss",
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Per-epoch IQM across seeds with a percentile-bootstrap band, per dataset × strategy.

    Args:
        history: tidy per-epoch metrics, columns ``run_id, dataset, strategy, metric, step, value``.
        metric: the per-epoch metric to summarise.

    Returns:
        Columns ``dataset, strategy, step, n, iqm, low, high``. At each epoch only the runs that logged a finite
        value count, so a run that diverged (or stopped early) leaves the curve after its last finite epoch; the
        band is NaN where fewer than two runs remain.
    """
    columns = ["dataset", "strategy", "step", "n", "iqm", "low", "high"]
    h = history[history["metric"] == metric].copy()
    if h.empty:
        return pd.DataFrame(columns=columns)
    h["value"] = finite_or_inf(h["value"])
    h = h[np.isfinite(h["value"])]
    parts = []
    for (dataset, strategy), cell in h.groupby(["dataset", "strategy"], sort=True):
        grid = cell.pivot_table(index="step", columns="run_id", values="value", aggfunc="last").sort_index()
        by_seed = cell.drop_duplicates("run_id").sort_values(["seed", "run_id"])["run_id"]
        grid = grid[[r for r in by_seed if r in grid.columns]]
        values = grid.to_numpy(dtype=float)
        present = ~np.isnan(values)
        n = present.sum(axis=1)
        point = np.array([iqm(row[mask]) if mask.any() else np.nan for row, mask in zip(values, present)])
        low = np.full(len(grid), np.nan)
        high = np.full(len(grid), np.nan)
        # epochs with the same set of runs are bootstrapped in one vectorised call (one per set, in order)
        keys = [m.tobytes() for m in present]
        for key in dict.fromkeys(keys):
            rows_idx = np.array([i for i, k in enumerate(keys) if k == key])
            mask = present[rows_idx[0]]
            if mask.sum() < 2:
                continue
            block = values[np.ix_(rows_idx, mask)]
            res = stats.bootstrap(
                (block,),
                iqm,
                n_resamples=n_resamples,
                confidence_level=confidence,
                method="percentile",
                vectorized=True,
                axis=-1,
                rng=np.random.default_rng(seed),
            )
            low[rows_idx] = res.confidence_interval.low
            high[rows_idx] = res.confidence_interval.high
        parts.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "strategy": strategy,
                    "step": grid.index.to_numpy(),
                    "n": n,
                    "iqm": point,
                    "low": low,
                    "high": high,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[columns]
