"""Array estimators for comparing arms across seeds: pure functions of numpy arrays (no frames, no I/O).

As rliable's ``metrics`` module, every function takes plain arrays; the DataFrame summaries that apply them per
dataset × arm are in :mod:`lstm_influence.analysis.summaries`.

Conventions.

* Scores are oriented so that *lower is better* (losses); pass ``lower_is_better=False`` where a larger value is
  better. A run that diverged carries the worst value (``+inf`` for lower-is-better), so every rank-based quantity
  places it last; two worst runs tie.
* p-values are exact: the permutation distribution of a rank statistic is computed by dynamic programming over
  doubled midranks (integers, so ties are handled exactly and no p-value can fall below what the design allows).
  No normal approximation is used at any sample size.
* Equivalence within a margin ±m is the two one-sided tests (TOST) procedure, exact like the other tests: two
  one-sided signed-rank tests (rank-sum where runs have no partner) at the two boundaries, p = the larger of the two
  (:func:`signed_rank_tost`). Its size at the boundary is measured by simulation in
  :mod:`lstm_influence.analysis.coverage`.
* Intervals are two-sided at ``confidence``; each method was chosen for its coverage at a handful of seeds
  (checked by simulation in :mod:`lstm_influence.analysis.coverage`):

  - IQM (25 % trimmed mean): the Tukey–McLaughlin interval, the trimmed mean ± t(h − 1) · SE, with the
    winsorized variance: SE² = (n − 1) s_w² / (h (h − 1)), g = ⌊0.25 n⌋ values trimmed from each end, h = n − 2g.
  - P(improvement): Newcombe's score-type interval (Newcombe 2006, method 5): the θ with
    (θ̂ − θ)² = z² V(θ), V(θ) = θ(1 − θ) / (m n) · [1 + (n* − 1)((1 − θ)/(2 − θ) + θ/(1 + θ))], n* = (m + n)/2
    (Hanley–McNeil's variance with both sample sizes replaced by their mean n*; exact at θ = ½ under H0,
    where it equals (m + n + 1) / (12 m n)). It never collapses to a point, even at complete separation.
  - Paired difference: the Hodges–Lehmann estimate (median of the Walsh averages of the differences) with the
    exact interval from the Wilcoxon signed-rank distribution; unpaired: the two-sample Hodges–Lehmann shift with
    the exact interval from the Mann–Whitney distribution. With very few runs the nominal level cannot be reached;
    the interval is then the widest one (minimum to maximum) and :func:`hodges_lehmann_paired` returns the
    coverage it has.
  - Mean rank (the expected rank of an arm in a random seed block, datasets weighted equally; see
    :func:`mean_rank_interval`): per dataset a t interval over the blocks with two pseudo-blocks added, one in which
    the arm ranks first and one in which it ranks last, so that an arm that came first on every seed seen still has
    room for the bad seed it has not shown; across datasets Newcombe's square-and-add of the per-dataset intervals.
    Simulated coverage at 10 seeds: at least 96 % per dataset and 98 % across three datasets (99.5 % at 5 seeds),
    where a percentile bootstrap over blocks covered 49 % and 77 % (31 % and 54 % at 5 seeds): it collapses when an
    arm ranks first on every seed and misses the rare bad seed.
  - Rates (runs that solved the task, runs that diverged): the Clopper–Pearson interval, which inverts two exact
    one-sided binomial tests. Its coverage is at least the nominal level for every true rate, which
    :func:`~lstm_influence.analysis.coverage.rate_coverage` computes exactly (a sum over the binomial outcomes, no
    simulation); Wilson's score interval, shorter, covers only 0.84 at n = 10 for rates near 0 or 1, the regime of a
    task that most runs either all solve or all fail.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
IQM_TRIM = 0.25
#: Values this large are MLflow's encoding of an infinite metric (its SQL store writes ±inf as ±float max).
_INF_THRESHOLD = 1e300


def finite_or_inf(values) -> np.ndarray:
    """Float array with MLflow's ±float-max encoding turned back into ±inf."""
    arr = np.asarray(values, dtype=float).copy()
    arr[arr >= _INF_THRESHOLD] = np.inf
    arr[arr <= -_INF_THRESHOLD] = -np.inf
    return arr


def _oriented(x, lower_is_better: bool) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    return arr if lower_is_better else -arr


def paired_difference(a, b) -> np.ndarray:
    """``a − b`` where two worst values (both +inf or both −inf) tie at 0 instead of giving NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        d = a - b
    return np.where(np.isnan(d) & ~np.isnan(a) & ~np.isnan(b), 0.0, d)


# --------------------------------------------------------------------------------------------- location


def iqm(x, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean of the middle 50 % (``trim_mean(x, 0.25)``, as rliable)."""
    return stats.trim_mean(x, IQM_TRIM, axis=axis)


def iqm_interval(x, *, confidence: float = CONFIDENCE, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Tukey–McLaughlin interval of the IQM along ``axis`` (see the module docstring).

    Args:
        x: finite scores; along ``axis`` one value per run (other axes: independent samples, e.g. simulations).
        confidence: two-sided level.

    Returns:
        ``(low, high)`` arrays; NaN where fewer than two values (no spread, no interval). Constant data give a
        zero-width interval.
    """
    x = np.sort(np.moveaxis(np.asarray(x, dtype=float), axis, -1), axis=-1)
    n = x.shape[-1]
    if n < 2:
        nan = np.full(x.shape[:-1], np.nan)
        return nan, nan.copy()
    g = int(IQM_TRIM * n)
    h = n - 2 * g
    winsorized = np.clip(x, x[..., g : g + 1], x[..., n - g - 1 : n - g])
    se = np.sqrt((n - 1) * winsorized.var(axis=-1, ddof=1) / (h * (h - 1)))  # h ≥ 2 whenever n ≥ 2
    centre = stats.trim_mean(x, IQM_TRIM, axis=-1)
    half = stats.t.ppf(0.5 + confidence / 2, h - 1) * se
    return centre - half, centre + half


# --------------------------------------------------------------------------------------------- P(improvement)


def probability_of_improvement(x, y, *, lower_is_better: bool = True) -> np.ndarray:
    """P(a run of X beats a run of Y) + ½ P(tie), along the last axis (rliable's Mann–Whitney-based estimate).

    Args:
        x: the candidate's scores, shape ``(..., m)``.
        y: the reference's scores (the control arm), shape ``(..., n)``.
        lower_is_better: "beats" means "has the lower value".

    Returns:
        Probabilities in [0, 1] of shape ``(...)``; 0.5 means no difference; NaN when a sample is empty.
    """
    x, y = _oriented(x, lower_is_better), _oriented(y, lower_is_better)
    if x.shape[-1] == 0 or y.shape[-1] == 0:
        return np.full(np.broadcast_shapes(x.shape[:-1], y.shape[:-1]), np.nan)[()]
    a, b = x[..., :, None], y[..., None, :]
    return np.mean((a < b) + 0.5 * (a == b), axis=(-2, -1))[()]


def _hanley_mcneil_variance(theta: np.ndarray, m: int, n: int) -> np.ndarray:
    n_star = (m + n) / 2
    return theta * (1 - theta) / (m * n) * (1 + (n_star - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta)))


def newcombe_interval(theta, m: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's score-type interval (method 5) for P(improvement) = θ̂ estimated from samples of sizes m and n.

    Both ends solve (θ̂ − θ)² = z² V(θ) (Hanley–McNeil variance with n* = (m + n)/2) by bisection, below and
    above θ̂; vectorised over ``theta``.

    Returns:
        ``(low, high)``; NaN when either sample has fewer than two runs.
    """
    theta = np.asarray(theta, dtype=float)
    if m < 2 or n < 2:
        nan = np.full(theta.shape, np.nan)
        return nan[()], nan.copy()[()]
    z2 = stats.norm.ppf(0.5 + confidence / 2) ** 2

    def excess(t: np.ndarray) -> np.ndarray:
        return (theta - t) ** 2 - z2 * _hanley_mcneil_variance(t, m, n)

    def root(lo: np.ndarray, hi: np.ndarray, positive_at_lo: bool) -> np.ndarray:
        lo, hi = lo.copy(), hi.copy()
        for _ in range(60):  # 2^-60: far below any digit the report prints
            mid = (lo + hi) / 2
            above = excess(mid) > 0
            move_lo = above if positive_at_lo else ~above
            lo = np.where(move_lo, mid, lo)
            hi = np.where(move_lo, hi, mid)
        return (lo + hi) / 2

    low = root(np.zeros_like(theta), theta, positive_at_lo=True)
    high = root(theta, np.ones_like(theta), positive_at_lo=False)
    low = np.where(theta <= 0, 0.0, low)
    high = np.where(theta >= 1, 1.0, high)
    return low[()], high[()]


def square_and_add(points, lows, highs, *, axis: int = 0, bounds: tuple[float, float] = (-np.inf, np.inf)):
    """Mean of K independent estimates along ``axis`` with Newcombe's square-and-add (MOVER) interval, vectorised.

    L = θ̄ − √Σ(θ_k − l_k)² / K, U = θ̄ + √Σ(u_k − θ_k)² / K (Zou & Donner 2008): each estimate's own interval
    carries its uncertainty into the average, so the average never collapses where one estimate's interval is
    tight, and an asymmetric interval stays asymmetric.

    Args:
        points, lows, highs: the estimates and their intervals, same shape.
        axis: the axis of the K estimates.
        bounds: the parameter's range; the interval is clipped to it.

    Returns:
        ``(mean, low, high)`` with ``axis`` removed; the interval is NaN where any estimate has none.
    """
    points, lows, highs = (np.asarray(a, dtype=float) for a in (points, lows, highs))
    k = points.shape[axis]
    mean = points.mean(axis=axis)
    low = mean - np.sqrt(np.sum((points - lows) ** 2, axis=axis)) / k
    high = mean + np.sqrt(np.sum((highs - points) ** 2, axis=axis)) / k
    return mean, np.clip(low, *bounds), np.clip(high, *bounds)


def mover_mean_interval(points, lows, highs) -> tuple[float, float, float]:
    """Mean of K independent probabilities with the square-and-add interval (:func:`square_and_add`) in [0, 1].

    Returns:
        ``(mean, low, high)``; NaNs for no estimate; the interval is NaN when any estimate has none.
    """
    if np.asarray(points).size == 0:
        return np.nan, np.nan, np.nan
    mean, low, high = square_and_add(points, lows, highs, bounds=(0.0, 1.0))
    return float(mean), float(low), float(high)


# --------------------------------------------------------------------------------------------- exact rank tests


def _doubled_midranks(values: np.ndarray) -> np.ndarray:
    """Twice the midranks (1-based): integers even where values tie, so sums stay exact."""
    return np.rint(2 * stats.rankdata(values)).astype(np.int64)


def _subset_sum_distribution(weights: np.ndarray) -> np.ndarray:
    """P(Σ_{i∈S} w_i = s) for a uniformly random subset S (each item in or out with probability ½)."""
    dist = np.zeros(int(weights.sum()) + 1)
    dist[0] = 1.0
    for w in weights:
        shifted = np.zeros_like(dist)
        shifted[w:] = dist[: dist.size - w]
        dist = 0.5 * (dist + shifted)
    return dist


def _fixed_size_subset_sum_distribution(weights: np.ndarray, size: int) -> np.ndarray:
    """P(Σ_{i∈S} w_i = s) for S drawn uniformly among the subsets of ``size`` items (counts ÷ C(N, size))."""
    counts = np.zeros((size + 1, int(weights.sum()) + 1))
    counts[0, 0] = 1.0
    for w in weights:
        counts[1:, w:] = counts[1:, w:] + counts[:-1, : counts.shape[1] - w]
    return counts[size] / math.comb(weights.size, size)


def _two_sided(dist: np.ndarray, observed: int, centre2: int) -> float:
    """P(|S − c| ≥ |s − c|) for a distribution over integer sums; ``centre2`` is 2c (exact in integers)."""
    support = np.arange(dist.size)
    extreme = np.abs(2 * support - centre2) >= abs(2 * observed - centre2)
    return float(min(1.0, dist[extreme].sum()))


def signed_rank_test(differences) -> float:
    """Two-sided exact Wilcoxon signed-rank p-value of paired differences (the sign-flip permutation test on ranks).

    Zero differences are dropped (Wilcoxon's rule); tied |differences| get midranks; ±inf (a diverged run in one
    arm) ranks largest. Under H0 every sign pattern of the remaining n differences is equally likely, and the p-value
    is the exact probability, over all 2^n patterns, of a rank sum at least as far from its mean as the observed one.
    So it is never below 2 / 2^n (:func:`min_p_signed_rank`). NaN for an empty input; 1 when every difference is 0.
    """
    d = _nonzero_differences(differences)
    if not isinstance(d, np.ndarray):
        return d
    ranks2 = _doubled_midranks(np.abs(d))
    dist = _subset_sum_distribution(ranks2)
    return _two_sided(dist, int(ranks2[d > 0].sum()), int(ranks2.sum()))


def _nonzero_differences(differences) -> np.ndarray | float:
    """The differences a signed-rank test ranks (NaN dropped, then zeros), or its p-value when none is left: NaN
    for no difference at all, 1 when every one is 0."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return np.nan
    d = d[d != 0]
    return d if d.size else 1.0


def rank_sum_test(x, y) -> float:
    """Two-sided exact Mann–Whitney (Wilcoxon rank-sum) p-value, ties by midranks, by full permutation.

    The permutation distribution of x's rank sum over all C(m + n, m) splits of the pooled runs is computed exactly
    (dynamic programming over doubled midranks), so ties never produce a p-value below 2 / C(m + n, m)
    (:func:`min_p_rank_sum`). NaN when a sample is empty.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return np.nan
    ranks2 = _doubled_midranks(np.concatenate([x, y]))
    dist = _fixed_size_subset_sum_distribution(ranks2, x.size)
    return _two_sided(dist, int(ranks2[: x.size].sum()), 2 * x.size * (x.size + y.size + 1))


def _upper_or_lower(dist: np.ndarray, observed: int, upper: bool) -> float:
    """P(S ≥ s) (``upper``) or P(S ≤ s) for a distribution over integer sums."""
    return float(min(1.0, dist[observed:].sum() if upper else dist[: observed + 1].sum()))


def signed_rank_one_sided(differences, *, greater: bool) -> float:
    """One-sided exact Wilcoxon signed-rank p-value: of a shift above 0 (``greater``) or below 0.

    The rules of :func:`signed_rank_test` (zeros dropped, midranks, ±inf ranks largest, NaN dropped); the p-value is
    P(W+ ≥ w) for ``greater`` and P(W+ ≤ w) otherwise, over the 2^n equally likely sign patterns. NaN for an empty
    input; 1 when every difference is 0.

    >>> signed_rank_one_sided([0.5, 1.0, 2.0], greater=True)   # every sign positive: 1 pattern of 8
    0.125
    """
    d = _nonzero_differences(differences)
    if not isinstance(d, np.ndarray):
        return d
    ranks2 = _doubled_midranks(np.abs(d))
    return _upper_or_lower(_subset_sum_distribution(ranks2), int(ranks2[d > 0].sum()), greater)


def _check_margin(margin: float) -> float:
    m = float(margin)
    if not (np.isfinite(m) and m > 0):
        raise ValueError(f"an equivalence margin must be a positive finite number, got {margin!r}")
    return m


def _tails(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P(S ≥ s), P(S ≤ s))`` for every integer s of a distribution's support."""
    return np.minimum(1.0, np.cumsum(dist[::-1])[::-1]), np.minimum(1.0, np.cumsum(dist))


def _untied(values: np.ndarray) -> np.ndarray:
    """Rows (last axis) without NaN, zero or repeated values: there the null distribution is the tie-free one."""
    ordered = np.sort(values, axis=-1)
    repeated = (np.diff(ordered, axis=-1) == 0).any(axis=-1)
    return ~(np.isnan(values).any(axis=-1) | (values == 0).any(axis=-1) | repeated)


def _rows(values) -> tuple[np.ndarray, tuple[int, ...]]:
    """A 2-D view (samples × values) of an array whose last axis holds one sample, and the leading shape."""
    arr = np.asarray(values, dtype=float)
    return arr.reshape(-1, arr.shape[-1]), arr.shape[:-1]


def signed_rank_tost(differences, margin: float):
    """Exact paired two one-sided tests (TOST) of equivalence within ±``margin``: the larger of two one-sided p.

    H0: the differences are centred at or beyond ±m (their pseudo-median is ≤ −m or ≥ m); H1: within (−m, m).
    The two exact one-sided signed-rank tests of d + m > 0 and of d − m < 0 (:func:`signed_rank_one_sided`) each
    hold their level at their boundary, so their maximum does too (Schuirmann 1987; Wellek 2010, ch. 5).
    Equivalence at level α is shown when the returned p ≤ α. With n pairs it is never below 1/2^n
    (n = 5: 0.031), reached when every difference lies inside (−m, m).

    Args:
        differences: arm − control per pair, along the last axis (other axes: independent samples, e.g.
            simulations); ±inf (a diverged run) allowed, NaN dropped.
        margin: m > 0, in the metric's units.

    Returns:
        The TOST p-value: a float for one sample, an array over the leading axes; NaN for no differences.

    Raises:
        ValueError: a margin that is not a positive finite number.

    >>> signed_rank_tost([0.1, -0.2, 0.05, 0.15, -0.1], 1.0)   # all five inside ±1: 1/2^5
    0.03125
    """
    m = _check_margin(margin)
    d = np.asarray(differences, dtype=float)
    if d.shape[-1] == 0:
        return np.full(d.shape[:-1], np.nan) if d.ndim > 1 else np.nan
    rows, lead = _rows(d)
    out = np.empty(len(rows))
    above, below = rows + m, rows - m
    fast = _untied(np.abs(above)) & _untied(np.abs(below)) & _untied(rows)
    if fast.any():
        # without ties or zeros every row shares the null distribution of W+ over the ranks 1..n
        n = rows.shape[-1]
        upper, lower = _tails(_subset_sum_distribution(np.arange(1, n + 1)))
        w_above = np.sum(stats.rankdata(np.abs(above[fast]), axis=-1) * (above[fast] > 0), axis=-1)
        w_below = np.sum(stats.rankdata(np.abs(below[fast]), axis=-1) * (below[fast] > 0), axis=-1)
        out[fast] = np.maximum(upper[np.rint(w_above).astype(int)], lower[np.rint(w_below).astype(int)])
    for i in np.flatnonzero(~fast):
        d = rows[i][~np.isnan(rows[i])]
        out[i] = (
            max(signed_rank_one_sided(d + m, greater=True), signed_rank_one_sided(d - m, greater=False))
            if d.size
            else np.nan
        )
    return out.reshape(lead) if lead else float(out[0])


def rank_sum_one_sided(x, y, *, greater: bool) -> float:
    """One-sided exact Mann–Whitney p-value that x is shifted above y (``greater``) or below it.

    The permutation distribution of :func:`rank_sum_test` (ties by midranks), one tail: P(R ≥ r) or P(R ≤ r) for
    x's rank sum R. NaN when a sample is empty.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return np.nan
    ranks2 = _doubled_midranks(np.concatenate([x, y]))
    dist = _fixed_size_subset_sum_distribution(ranks2, x.size)
    return _upper_or_lower(dist, int(ranks2[: x.size].sum()), greater)


def rank_sum_tost(x, y, margin: float):
    """Exact unpaired TOST of equivalence within ±``margin``: one-sided rank-sum tests of x + m > y and x − m < y.

    The counterpart of :func:`signed_rank_tost` where runs have no partner; H0: the shift of x against y is ≤ −m
    or ≥ m.

    Args:
        x, y: the arm's and the control's values along the last axis (leading axes: independent samples, the same
            for both); NaN is not allowed.
        margin: m > 0.

    Returns:
        The TOST p-value: a float for one sample, an array over the leading axes; NaN when a sample is empty.

    Raises:
        ValueError: a margin that is not a positive finite number.
    """
    m = _check_margin(margin)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape[-1] == 0 or y.shape[-1] == 0:
        lead = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
        return np.full(lead, np.nan) if lead else np.nan
    xs, lead = _rows(x)
    ys, _ = _rows(np.broadcast_to(y, (*lead, y.shape[-1])))
    out = np.empty(len(xs))
    pooled_above, pooled_below = np.hstack([xs + m, ys]), np.hstack([xs - m, ys])
    fast = _untied(pooled_above) & _untied(pooled_below)
    if fast.any():
        k = xs.shape[-1]
        dist = _fixed_size_subset_sum_distribution(np.arange(1, k + ys.shape[-1] + 1), k)
        upper, lower = _tails(dist)
        r_above = np.sum(stats.rankdata(pooled_above[fast], axis=-1)[:, :k], axis=-1)
        r_below = np.sum(stats.rankdata(pooled_below[fast], axis=-1)[:, :k], axis=-1)
        out[fast] = np.maximum(upper[np.rint(r_above).astype(int)], lower[np.rint(r_below).astype(int)])
    for i in np.flatnonzero(~fast):
        out[i] = max(
            rank_sum_one_sided(xs[i] + m, ys[i], greater=True), rank_sum_one_sided(xs[i] - m, ys[i], greater=False)
        )
    return out.reshape(lead) if lead else float(out[0])


def min_p_signed_rank(n: int) -> float:
    """The smallest two-sided p-value :func:`signed_rank_test` can give with n non-zero pairs: 2 / 2^n."""
    return min(1.0, 2.0 ** (1 - n)) if n > 0 else np.nan


def min_p_rank_sum(m: int, n: int) -> float:
    """The smallest two-sided p-value :func:`rank_sum_test` can give for samples of m and n runs: 2 / C(m+n, m)."""
    return min(1.0, 2.0 / math.comb(m + n, m)) if m > 0 and n > 0 else np.nan


def pairs_for_clean_separation(comparisons: int, alpha: float) -> int:
    """Fewest pairs n with which a comparison whose every pair favours one arm passes Holm's strictest step.

    Holm compares the smallest of k p-values with α / k; a clean separation over n pairs has the signed-rank test's
    smallest p, 2 / 2^n, so n is the least integer with k · 2 / 2^n ≤ α.
    """
    return max(1, math.ceil(math.log2(2 * max(comparisons, 1) / alpha) - 1e-12))


def holm(pvalues) -> np.ndarray:
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
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[ok][order] * (m - np.arange(m))))
    inner = np.empty(m)
    inner[order] = adjusted
    out[ok] = inner
    return out


# --------------------------------------------------------------------------------------------- differences


@dataclass(frozen=True)
class Shift:
    """A Hodges–Lehmann location shift (arm minus control) with its exact interval.

    ``coverage`` is the interval's exact coverage for continuous data (≥ the nominal level unless the runs are
    too few to reach it, see :func:`hodges_lehmann_paired`); NaN ends mean no interval (fewer than two runs).
    """

    estimate: float
    low: float
    high: float
    coverage: float


def _order_statistic_rank(cdf: np.ndarray, confidence: float) -> int:
    """Largest k ≥ 1 with P(S ≤ k − 1) ≤ α/2 for an integer statistic S ≥ 0 with ``cdf``; 1 when none."""
    alpha_half = (1 - confidence) / 2
    ok = np.flatnonzero(cdf <= alpha_half + 1e-12)
    return int(ok[-1]) + 1 if ok.size else 1


def walsh_interval(differences, *, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Hodges–Lehmann estimate and exact signed-rank interval along the last axis (no NaN allowed).

    Vectorised core of :func:`hodges_lehmann_paired`: ``differences`` has shape ``(..., n)``, n ≥ 2.

    Returns:
        ``(estimate, low, high, coverage)``; the first three of shape ``(...)``.
    """
    d = np.asarray(differences, dtype=float)
    n = d.shape[-1]
    i, j = np.triu_indices(n)
    walsh = np.sort(np.nan_to_num(paired_difference(d[..., i], -d[..., j]) / 2, nan=0.0), axis=-1)
    estimate = np.median(walsh, axis=-1)
    cdf = np.cumsum(_subset_sum_distribution(np.arange(1, n + 1)))
    k = _order_statistic_rank(cdf, confidence)
    return estimate, walsh[..., k - 1], walsh[..., walsh.shape[-1] - k], float(1 - 2 * cdf[k - 1])


def hodges_lehmann_paired(differences, *, confidence: float = CONFIDENCE) -> Shift:
    """Median of the Walsh averages (d_i + d_j)/2, i ≤ j, with the exact signed-rank interval.

    The interval is [w_(k), w_(M+1−k)] of the M = n(n+1)/2 sorted Walsh averages, k the largest rank with
    P(W+ ≤ k − 1) ≤ (1 − confidence)/2 under the exact null distribution of the signed-rank statistic W+; its
    coverage for continuous symmetric differences is 1 − 2 P(W+ ≤ k − 1). Below 6 pairs no k reaches 95 %, and the
    interval is [min, max] with coverage 1 − 2 / 2^n (0.9375 at n = 5). ±inf differences (one run diverged) are
    allowed and may make an end infinite; a +inf and a −inf average to 0.
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return Shift(np.nan, np.nan, np.nan, np.nan)
    if d.size < 2:
        return Shift(float(d[0]), np.nan, np.nan, np.nan)
    estimate, low, high, coverage = walsh_interval(d, confidence=confidence)
    return Shift(float(estimate), float(low), float(high), coverage)


def hodges_lehmann_shift(x, y, *, confidence: float = CONFIDENCE) -> Shift:
    """Two-sample Hodges–Lehmann shift: the median of all x_i − y_j, with the exact Mann–Whitney interval.

    The interval is [D_(k), D_(mn+1−k)] of the m·n sorted differences, k the largest rank with
    P(U ≤ k − 1) ≤ (1 − confidence)/2 under the exact null distribution of U (Bauer 1972).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0 or y.size == 0:
        return Shift(np.nan, np.nan, np.nan, np.nan)
    diffs = np.sort(paired_difference(x[:, None], y[None, :]).ravel())
    estimate = float(np.median(diffs))
    if x.size < 2 or y.size < 2:
        return Shift(estimate, np.nan, np.nan, np.nan)
    ranks2 = 2 * np.arange(1, x.size + y.size + 1)
    rank_sum2 = _fixed_size_subset_sum_distribution(ranks2, x.size)
    # U = rank sum − m(m+1)/2; the doubled sums sit at even indices
    offset2 = x.size * (x.size + 1)
    u_dist = rank_sum2[offset2::2]
    cdf = np.cumsum(u_dist)
    k = _order_statistic_rank(cdf, confidence)
    return Shift(estimate, float(diffs[k - 1]), float(diffs[diffs.size - k]), float(1 - 2 * cdf[k - 1]))


# --------------------------------------------------------------------------------------------- ranks


def block_ranks(blocks, *, lower_is_better: bool = True) -> np.ndarray:
    """Rank the arms within each block (row): 1 = best, ties share the midrank, the worst value ranks last.

    Args:
        blocks: shape ``(n_blocks, n_arms)``; a block is one dataset × seed, every arm's score on it.
    """
    return stats.rankdata(_oriented(blocks, lower_is_better), axis=1)


def block_rank_interval(ranks, *, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean rank of each arm over the blocks of one dataset, with its interval; vectorised over leading axes.

    With n blocks (seeds) and K arms, arm a's ranks r_1 … r_n lie in [1, K]. Two pseudo-blocks are added, one with
    rank 1 and one with rank K (as Agresti and Coull add pseudo-counts to a proportion), and the interval is the
    t interval of the n + 2 values with n − 1 degrees of freedom, c̄ ± t(n − 1) s / √(n + 2), widened where needed
    to contain the plain mean r̄ and clipped to [1, K]. The pseudo-blocks keep the interval open where every seed
    gave the same rank: an arm that is first on 10 seeds of 10 gets [1, 1.54] with three arms, not [1, 1]. They
    matter most where an arm's rank distribution is skewed by a rare bad seed (a run that diverged ranks last),
    which a sample of a few seeds often does not show.

    Args:
        ranks: shape ``(..., n_blocks, n_arms)``, from :func:`block_ranks`.
        confidence: two-sided level.

    Returns:
        ``(mean, low, high)``, each of shape ``(..., n_arms)``; the point estimate is the plain mean r̄. The
        interval is NaN with fewer than two blocks.
    """
    ranks = np.asarray(ranks, dtype=float)
    n, k = ranks.shape[-2:]
    mean = ranks.mean(axis=-2)
    if n < 2:
        nan = np.full(mean.shape, np.nan)
        return mean, nan, nan.copy()
    pseudo_shape = (*ranks.shape[:-2], 1, k)
    augmented = np.concatenate([ranks, np.ones(pseudo_shape), np.full(pseudo_shape, float(k))], axis=-2)
    centre = augmented.mean(axis=-2)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * augmented.std(axis=-2, ddof=1) / np.sqrt(n + 2)
    low = np.clip(np.minimum(centre - half, mean), 1.0, k)
    high = np.clip(np.maximum(centre + half, mean), 1.0, k)
    return mean, low, high


def mean_rank_interval(
    ranks: np.ndarray, strata, *, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean rank of each arm, each stratum (dataset) weighted equally, with an interval that covers at few seeds.

    The estimand: for dataset d, let R_da be arm a's rank among the K arms in a random block (a seed on which every
    arm ran; 1 = best, ties share the midrank). The mean rank is θ_a = (1/D) Σ_d E[R_da], the expected rank in a
    random block with the D datasets weighted equally, whatever their numbers of seeds. With independent scores,
    E[R_da] = 1 + Σ_{b≠a} (P(b beats a) + ½ P(tie)). Its estimate is the mean over each dataset's blocks, averaged
    over datasets; the interval is :func:`block_rank_interval` per dataset, combined by :func:`square_and_add`.
    Its coverage is measured by simulation in :mod:`lstm_influence.analysis.coverage`.

    Args:
        ranks: ``(n_blocks, n_arms)`` from :func:`block_ranks`.
        strata: one label per block (its dataset).
        confidence: two-sided level.

    Returns:
        ``(mean, low, high)``, each of shape ``(n_arms,)``; the interval is NaN when a stratum has one block.
    """
    ranks = np.asarray(ranks, dtype=float)
    strata = np.asarray(strata)
    labels = list(dict.fromkeys(strata.tolist()))
    per_stratum = [block_rank_interval(ranks[strata == s], confidence=confidence) for s in labels]
    points, lows, highs = (np.stack(parts) for parts in zip(*per_stratum))
    return square_and_add(points, lows, highs, bounds=(1.0, float(ranks.shape[1])))


# --------------------------------------------------------------------------------------------- rates and times


def proportion_ci(k: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """A rate ``k / n`` with its Clopper–Pearson interval (``scipy.stats.binomtest``); NaNs when ``n == 0``."""
    if n == 0:
        return np.nan, np.nan, np.nan
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return k / n, float(ci.low), float(ci.high)


def mcnemar_exact(arm_only: int, control_only: int) -> float:
    """Exact two-sided McNemar test of paired 0/1 outcomes: the binomial test of the discordant pairs.

    Args:
        arm_only: pairs where only the arm had the event (say, solved the task).
        control_only: pairs where only the control had it.

    Returns:
        P(a split of the ``arm_only + control_only`` discordant pairs at least as uneven | each goes either way
        with probability ½); 1.0 without discordant pairs.

    >>> round(mcnemar_exact(6, 0), 5)   # 2 · 0.5⁶
    0.03125
    >>> mcnemar_exact(3, 3)
    1.0
    """
    discordant = int(arm_only) + int(control_only)
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(int(arm_only), discordant, 0.5).pvalue)


def min_p_mcnemar(n_pairs: int) -> float:
    """The smallest p :func:`mcnemar_exact` can return with ``n_pairs`` pairs (every pair discordant one way).

    It is the signed-rank test's bound: both are sign-flip tests of the same pairs.
    """
    return min_p_signed_rank(int(n_pairs))


@dataclass(frozen=True)
class KaplanMeierMedian:
    """Kaplan–Meier median time to an event with a pointwise (log-log) interval.

    ``median`` is NaN when the survival curve never drops to one half within the budget ("not reached");
    ``high`` is NaN when the interval's upper end is not reached.
    """

    median: float
    low: float
    high: float
    n_events: int
    n: int


def kaplan_meier_median(times, event, *, confidence: float = CONFIDENCE) -> KaplanMeierMedian:
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
