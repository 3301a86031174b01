"""The report's 95 % intervals cover the truth: simulated experiments with known effects (vectorised, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lstm_influence.analysis.coverage import interval_coverage
from lstm_influence.analysis.estimators import hodges_lehmann_paired, newcombe_interval, probability_of_improvement


@pytest.mark.parametrize("seed", [0, 1])
def test_every_interval_covers_at_least_93_percent_at_ten_runs(seed):
    coverage = interval_coverage(10, n_experiments=1000, seed=seed)
    assert set(coverage) == {"iqm", "poi", "paired_diff"}
    for method, value in coverage.items():
        assert value >= 0.93, (method, value)


def test_coverage_below_ten_runs_is_measured_not_assumed():
    five = interval_coverage(5, n_experiments=1000)
    # the paired interval at 5 pairs is [min, max] Walsh average: exactly 1 - 2/32 for continuous data
    assert five["paired_diff"] == pytest.approx(1 - 2 / 32, abs=0.02)
    assert all(0.85 <= v <= 1.0 for v in five.values())
    with pytest.raises(ValueError, match="n=1"):
        interval_coverage(1)


def test_newcombe_covers_where_a_percentile_bootstrap_collapses():
    """At a strong effect most 5-run experiments separate completely; a bootstrap then prints 1 [1, 1]."""
    rng = np.random.default_rng(3)
    truth = stats.norm.cdf(2 / np.sqrt(2))
    arm, control = rng.normal(size=(600, 5)), rng.normal(2.0, 1.0, size=(600, 5))
    theta = probability_of_improvement(arm, control)
    low, high = newcombe_interval(theta, 5, 5)
    assert np.mean((low <= truth) & (truth <= high)) >= 0.93
    assert np.all(high - low > 0)


def test_paired_interval_matches_its_vectorised_core_on_one_sample():
    d = np.array([0.3, -0.1, 0.2, 0.5, 0.05, 0.4, -0.2, 0.1, 0.25, 0.15])
    shift = hodges_lehmann_paired(d)
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(10) for j in range(i, 10)])
    assert (shift.low, shift.high) == (walsh[8], walsh[-9])  # n = 10: the 9th smallest and largest
    assert shift.coverage == pytest.approx(1 - 2 * 25 / 1024)
