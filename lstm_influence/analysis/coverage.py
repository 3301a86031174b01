"""How often the report's 95 % intervals cover the truth, measured by simulation at a given number of seeds.

Each interval method of :mod:`lstm_influence.analysis.estimators` is applied to many simulated experiments whose
true value is known, all at once (vectorised over experiments), and the share of intervals that contain the truth
is the coverage. The data are normal, as seed-to-seed noise of a final loss roughly is:

* IQM: n runs from N(0, 1); the truth is 0 (the IQM of a symmetric distribution is its centre).
* P(improvement): n runs of an arm from N(0, 1) against n control runs from N(δ, 1), δ ∈ :data:`EFFECTS`; the
  truth is Φ(δ / √2) (with δ = 2 about 0.92: most experiments separate completely, where a bootstrap collapses).
* Paired difference: n differences from N(δ, 1); the truth is δ.

The coverage reported for a method is the smallest over the effects. The simulation is seeded, so the same n gives
the same numbers (the report quotes them at its cells' own n).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from lstm_influence.analysis.estimators import (
    CONFIDENCE,
    iqm_interval,
    newcombe_interval,
    probability_of_improvement,
    walsh_interval,
)

EFFECTS = (0.0, 0.5, 1.0, 2.0)
N_EXPERIMENTS = 2000
SIMULATION_SEED = 0
METHODS = ("iqm", "poi", "paired_diff")


def _covered(low: np.ndarray, high: np.ndarray, truth: float) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))


def interval_coverage(
    n: int,
    *,
    n_experiments: int = N_EXPERIMENTS,
    confidence: float = CONFIDENCE,
    seed: int = SIMULATION_SEED,
    effects: tuple[float, ...] = EFFECTS,
) -> dict[str, float]:
    """Simulated coverage of the IQM, P(improvement) and paired-difference intervals with n runs (pairs) per arm.

    Args:
        n: runs per arm (pairs for the paired difference); at least 2.
        n_experiments: simulated experiments per method and effect.
        confidence: the intervals' nominal level.
        seed: seeds ``numpy.random.default_rng``.
        effects: the shifts δ for P(improvement) and the paired difference; the smallest coverage is returned.

    Returns:
        ``{"iqm": c, "poi": c, "paired_diff": c}``, each the share of intervals containing the truth.

    Raises:
        ValueError: n below 2 (one run gives no interval).
    """
    if n < 2:
        raise ValueError(f"interval coverage needs n >= 2 runs per arm, got n={n}")
    rng = np.random.default_rng(seed)
    low, high = iqm_interval(rng.normal(size=(n_experiments, n)), confidence=confidence)
    coverage = {"iqm": _covered(low, high, 0.0)}
    poi, paired = [], []
    for delta in effects:
        arm = rng.normal(size=(n_experiments, n))
        control = rng.normal(delta, 1.0, size=(n_experiments, n))
        theta = probability_of_improvement(arm, control)
        low, high = newcombe_interval(theta, n, n, confidence=confidence)
        poi.append(_covered(low, high, float(stats.norm.cdf(delta / np.sqrt(2)))))
        _, low, high, _ = walsh_interval(rng.normal(delta, 1.0, size=(n_experiments, n)), confidence=confidence)
        paired.append(_covered(low, high, delta))
    coverage["poi"] = min(poi)
    coverage["paired_diff"] = min(paired)
    return coverage
