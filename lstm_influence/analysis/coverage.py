"""How often the report's 95 % intervals cover the truth, measured by simulation at a given number of seeds.

Each interval method of :mod:`lstm_influence.analysis.estimators` is applied to many simulated experiments whose
true value is known, all at once (vectorised over experiments), and the share of intervals that contain the truth
is the coverage. The data are normal, as seed-to-seed noise of a final loss roughly is:

* IQM: n runs from N(0, 1); the truth is 0 (the IQM of a symmetric distribution is its centre).
* P(improvement): n runs of an arm from N(0, 1) against n control runs from N(δ, 1), δ ∈ :data:`EFFECTS`; the
  truth is Φ(δ / √2) (with δ = 2 about 0.92: most experiments separate completely, where a bootstrap collapses).
* Paired difference: n differences from N(δ, 1); the truth is δ.
* Rates (solved, diverged): no simulation is needed. With n runs the observed count k is Binomial(n, p), so the
  coverage of a rate interval at a true rate p is the exact sum Σ_k P(k) · [p inside the interval for k]
  (:func:`rate_coverage`).
* Mean rank: :data:`RANK_ARMS` arms on :data:`RANK_DATASETS` datasets, n seed blocks each; arm a's score on
  dataset d is N(δ · L[d, a], 1) with L = :data:`RANK_LAYOUT`, so the arms' order differs between datasets. In half
  of the settings arm 0 diverges with probability 0.15 and the last arm with 0.3 (:data:`RANK_DIVERGENCE`; a run
  that diverged ranks last, two such runs tie): a rare bad seed that skews an arm's rank. The truth is the exact
  expected rank (:func:`expected_block_ranks`). Both the per-dataset intervals and the across-dataset one count.

* Equivalence (TOST within ±m): not an interval but a test, so what is measured is its size, the rate at which
  it declares equivalence when the true difference sits on the margin (δ = ±m, the least favourable null), for
  margins of :data:`EQUIVALENCE_MARGINS` SD; paired: n differences from N(δ, 1); unpaired: n runs from N(δ, 1)
  against n from N(0, 1) (:func:`equivalence_size`). A valid test keeps it at or below α.

The coverage reported for a method is the smallest over the effects (and, for the mean rank, over arms, datasets
and divergence settings). The simulation is seeded, so the same n gives the same numbers (the report quotes them at
its cells' own n).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from lstm_influence.analysis.estimators import (
    CONFIDENCE,
    block_rank_interval,
    block_ranks,
    iqm_interval,
    newcombe_interval,
    probability_of_improvement,
    proportion_ci,
    rank_sum_tost,
    signed_rank_tost,
    square_and_add,
    walsh_interval,
)

EFFECTS = (0.0, 0.5, 1.0, 2.0)
N_EXPERIMENTS = 2000
SIMULATION_SEED = 0
METHODS = ("iqm", "poi", "paired_diff", "mean_rank")
#: Arm a's mean on dataset d, in units of the effect δ: one order, its reverse, and a shuffled one.
RANK_LAYOUT = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0], [1.0, 3.0, 0.0, 2.0]])
RANK_DATASETS, RANK_ARMS = RANK_LAYOUT.shape
#: Divergence probability of each arm (on every dataset), in the settings that have divergence.
RANK_DIVERGENCE = np.array([0.15, 0.0, 0.0, 0.3])
#: Equivalence margins, in SD of the noise, at which :func:`equivalence_size` measures the TOST's size.
EQUIVALENCE_MARGINS = (0.25, 0.5, 1.0, 2.0)
EQUIVALENCE_TESTS = ("paired", "unpaired")
#: Experiments per margin and boundary for the size: a rate near 0.05 then has a Monte Carlo SE of 0.0015.
EQUIVALENCE_EXPERIMENTS = 20_000


def _covered(low: np.ndarray, high: np.ndarray, truth) -> np.ndarray:
    """Share of the experiments (axis 0) whose interval contains the truth; one value per remaining index."""
    return np.mean((low <= truth) & (truth <= high), axis=0)


def expected_block_ranks(means, divergence=None) -> np.ndarray:
    """Exact expected rank of each arm in a random block (1 = best, lower score is better, ties share the midrank).

    Arm a's score in a block is +inf (it diverged) with probability q_a, else N(μ_a, 1), independently across arms
    (a seed effect shared by every arm would not change the ranks). Then
    E[R_a] = 1 + Σ_{b≠a} [(1 − q_a)(1 − q_b) Φ((μ_a − μ_b) / √2) + q_a (1 − q_b) + ½ q_a q_b].

    Args:
        means: μ, shape ``(..., n_arms)`` (e.g. datasets × arms).
        divergence: q, broadcastable to ``means``; None for no divergence.

    Returns:
        Expected ranks, the shape of ``means``; they sum to n_arms (n_arms + 1) / 2 along the last axis.
    """
    mu = np.asarray(means, dtype=float)
    q = np.broadcast_to(np.zeros(1) if divergence is None else np.asarray(divergence, dtype=float), mu.shape)
    mu_a, mu_b = mu[..., :, None], mu[..., None, :]
    q_a, q_b = q[..., :, None], q[..., None, :]
    beats = (1 - q_a) * (1 - q_b) * stats.norm.cdf((mu_a - mu_b) / np.sqrt(2)) + q_a * (1 - q_b) + 0.5 * q_a * q_b
    n_arms = mu.shape[-1]
    beats = beats * (1 - np.eye(n_arms))  # an arm does not compete with itself
    return 1 + beats.sum(axis=-1)


def mean_rank_coverage(
    n: int,
    means,
    divergence=None,
    *,
    n_experiments: int = N_EXPERIMENTS,
    confidence: float = CONFIDENCE,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated coverage of the mean-rank intervals with n seed blocks per dataset.

    Args:
        n: blocks (seeds) per dataset; at least 2.
        means: arm means per dataset, shape ``(n_datasets, n_arms)``; scores are N(mean, 1), lower is better.
        divergence: each arm's divergence probability, broadcastable to ``means``; None for none.
        n_experiments: simulated experiments.
        confidence: the intervals' nominal level.
        rng: the random generator (default: seeded with :data:`SIMULATION_SEED`).

    Returns:
        ``(per_dataset, across)``: the coverage of each dataset's interval, shape ``(n_datasets, n_arms)``, and of
        the across-dataset interval (datasets weighted equally), shape ``(n_arms,)``.
    """
    rng = np.random.default_rng(SIMULATION_SEED) if rng is None else rng
    mu = np.asarray(means, dtype=float)
    q = np.broadcast_to(np.zeros(1) if divergence is None else np.asarray(divergence, dtype=float), mu.shape)
    n_datasets, n_arms = mu.shape
    shape = (n_experiments, n_datasets, n, n_arms)
    scores = rng.normal(size=shape) + mu[None, :, None, :]
    scores = np.where(rng.random(shape) < q[None, :, None, :], np.inf, scores)
    ranks = block_ranks(scores.reshape(-1, n_arms)).reshape(shape)
    mean, low, high = block_rank_interval(ranks, confidence=confidence)
    truth = expected_block_ranks(mu, q)
    per_dataset = _covered(low, high, truth)
    _, low_all, high_all = square_and_add(mean, low, high, axis=1, bounds=(1.0, float(n_arms)))
    across = _covered(low_all, high_all, truth.mean(axis=0))
    return per_dataset, across


def interval_coverage(
    n: int,
    *,
    n_experiments: int = N_EXPERIMENTS,
    confidence: float = CONFIDENCE,
    seed: int = SIMULATION_SEED,
    effects: tuple[float, ...] = EFFECTS,
) -> dict[str, float]:
    """Simulated coverage of the IQM, P(improvement), paired-difference and mean-rank intervals at n runs per arm.

    Args:
        n: runs per arm (pairs for the paired difference, seed blocks per dataset for the mean rank); at least 2.
        n_experiments: simulated experiments per method and setting.
        confidence: the intervals' nominal level.
        seed: seeds ``numpy.random.default_rng``.
        effects: the shifts δ for P(improvement), the paired difference and the mean rank; the smallest coverage
            is returned.

    Returns:
        ``{"iqm": c, "poi": c, "paired_diff": c, "mean_rank": c}`` (:data:`METHODS`), each the share of intervals
        containing the truth.

    Raises:
        ValueError: n below 2 (one run gives no interval).
    """
    if n < 2:
        raise ValueError(f"interval coverage needs n >= 2 runs per arm, got n={n}")
    rng = np.random.default_rng(seed)
    low, high = iqm_interval(rng.normal(size=(n_experiments, n)), confidence=confidence)
    coverage = {"iqm": float(_covered(low, high, 0.0))}
    # the mean rank draws from its own stream, so adding it left the other methods' numbers as they were
    rank_rng = np.random.default_rng([seed, 1])
    poi, paired, ranked = [], [], []
    for delta in effects:
        arm = rng.normal(size=(n_experiments, n))
        control = rng.normal(delta, 1.0, size=(n_experiments, n))
        theta = probability_of_improvement(arm, control)
        low, high = newcombe_interval(theta, n, n, confidence=confidence)
        poi.append(float(_covered(low, high, stats.norm.cdf(delta / np.sqrt(2)))))
        _, low, high, _ = walsh_interval(rng.normal(delta, 1.0, size=(n_experiments, n)), confidence=confidence)
        paired.append(float(_covered(low, high, delta)))
        for divergence in (None, RANK_DIVERGENCE):
            per_dataset, across = mean_rank_coverage(
                n, delta * RANK_LAYOUT, divergence, n_experiments=n_experiments, confidence=confidence, rng=rank_rng
            )
            ranked.append(min(per_dataset.min(), across.min()))
    coverage["poi"] = min(poi)
    coverage["paired_diff"] = min(paired)
    coverage["mean_rank"] = float(min(ranked))
    return coverage


#: True rates at which :func:`rate_coverage` evaluates an interval method (dense near 0 and 1, where rates of
#: "solved" and "diverged" sit and where normal-theory intervals fail).
RATE_GRID = np.unique(np.concatenate([np.linspace(0.001, 0.999, 999), np.geomspace(1e-4, 0.05, 60)]))


def wilson_ci(k: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Wilson's score interval for ``k / n``: the shorter alternative :func:`rate_coverage` measures against."""
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def rate_coverage(
    n: int, *, rates=RATE_GRID, interval=proportion_ci, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Exact coverage of a rate interval with n runs, at each true rate in ``rates``.

    Args:
        n: runs; at least 1.
        rates: true rates p in (0, 1).
        interval: ``(k, n, confidence=...) -> (rate, low, high)``; default the report's Clopper–Pearson.
        confidence: the interval's nominal level.

    Returns:
        ``(rates, coverage)``: P(the interval from k ~ Binomial(n, p) contains p), for each p.
    """
    if n < 1:
        raise ValueError(f"rate coverage needs n >= 1 runs, got n={n}")
    p = np.asarray(rates, dtype=float)
    bounds = np.array([interval(k, n, confidence=confidence)[1:] for k in range(n + 1)])  # (n + 1, 2)
    inside = (bounds[:, :1] <= p[None, :]) & (p[None, :] <= bounds[:, 1:])  # (n + 1, len(p))
    probability = stats.binom.pmf(np.arange(n + 1)[:, None], n, p[None, :])
    return p, (probability * inside).sum(axis=0)


# --------------------------------------------------------------------------------------------- equivalence


def equivalence_rate(
    n: int,
    shift: float,
    margin: float,
    *,
    paired: bool = True,
    alpha: float = 0.05,
    n_experiments: int = N_EXPERIMENTS,
    rng: np.random.Generator | None = None,
) -> float:
    """Share of simulated experiments in which the exact TOST declares equivalence within ±``margin`` at ``alpha``.

    Args:
        n: pairs (paired) or runs per arm (unpaired); at least 1.
        shift: the true difference arm − control, in SD of the noise.
        margin: the equivalence margin, in the same units.
        paired: :func:`~lstm_influence.analysis.estimators.signed_rank_tost` on n differences from N(shift, 1);
            otherwise :func:`~lstm_influence.analysis.estimators.rank_sum_tost` on n runs from N(shift, 1) against
            n from N(0, 1).
        alpha: the test's level: equivalence is declared when p < alpha (the report's rule).
        n_experiments: simulated experiments.
        rng: the random generator (default: seeded with :data:`SIMULATION_SEED`).

    Returns:
        The rejection rate: the size where ``|shift| = margin``, the power where ``|shift| < margin``.
    """
    if n < 1:
        raise ValueError(f"an equivalence test needs n >= 1 runs, got n={n}")
    rng = np.random.default_rng(SIMULATION_SEED) if rng is None else rng
    arm = rng.normal(shift, 1.0, size=(n_experiments, n))
    p = signed_rank_tost(arm, margin) if paired else rank_sum_tost(arm, rng.normal(size=(n_experiments, n)), margin)
    return float(np.mean(p < alpha))


def equivalence_size(
    n: int,
    *,
    alpha: float = 0.05,
    margins: tuple[float, ...] = EQUIVALENCE_MARGINS,
    n_experiments: int = EQUIVALENCE_EXPERIMENTS,
    seed: int = SIMULATION_SEED,
    tests: tuple[str, ...] = EQUIVALENCE_TESTS,
) -> dict[str, float]:
    """Simulated size of the exact TOST with n pairs (runs per arm): the largest rejection rate at δ = ±m.

    Args:
        n: pairs (paired) or runs per arm (unpaired).
        alpha: the level equivalence is declared at.
        margins: the margins m, in SD of the noise; both boundaries of each are simulated.
        n_experiments: simulated experiments per margin and boundary.
        seed: seeds ``numpy.random.default_rng`` (one stream per test, so each number is reproducible alone).
        tests: which of :data:`EQUIVALENCE_TESTS` to simulate.

    Returns:
        ``{test: size}`` for each of ``tests``; a valid test has size ≤ ``alpha``.
    """
    sizes = {}
    for k, test in enumerate(EQUIVALENCE_TESTS):
        if test not in tests:
            continue
        rng = np.random.default_rng([seed, 2, k])
        sizes[test] = max(
            equivalence_rate(n, boundary, m, paired=test == "paired", alpha=alpha, n_experiments=n_experiments, rng=rng)
            for m in margins
            for boundary in (-m, m)
        )
    return sizes


def clipped_band_coverage(
    n: int,
    *,
    n_experiments: int = N_EXPERIMENTS,
    confidence: float = CONFIDENCE,
    seed: int = SIMULATION_SEED,
) -> dict[str, float]:
    """Simulated coverage of the learning curves' band: the IQM interval clipped to the runs' own range.

    A band drawn past every observed value would show losses no run had, so the figures clip it to the smallest and
    largest run at each step. Clipping can only lose coverage, and loses it where the truth lies outside the
    sample's range (with n normal runs, that happens with probability 2 / 2ⁿ for the centre): n runs from N(0, 1),
    truth 0, as for the IQM above.

    Returns:
        ``{"iqm": c, "clipped": c}``: the interval as the tables give it, and clipped to [min, max] of the runs.

    Raises:
        ValueError: n below 2.
    """
    if n < 2:
        raise ValueError(f"band coverage needs n >= 2 runs, got n={n}")
    x = np.random.default_rng([seed, 3]).normal(size=(n_experiments, n))
    low, high = iqm_interval(x, confidence=confidence)
    clipped_low, clipped_high = np.fmax(low, x.min(axis=1)), np.fmin(high, x.max(axis=1))
    return {"iqm": float(_covered(low, high, 0.0)), "clipped": float(_covered(clipped_low, clipped_high, 0.0))}
