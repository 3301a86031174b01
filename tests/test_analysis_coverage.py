"""The report's 95 % intervals cover the truth: simulated experiments with known effects (vectorised, seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lstm_influence.analysis.coverage import (
    METHODS,
    RANK_DIVERGENCE,
    RANK_LAYOUT,
    expected_block_ranks,
    interval_coverage,
    mean_rank_coverage,
)
from lstm_influence.analysis.estimators import (
    block_rank_interval,
    block_ranks,
    hodges_lehmann_paired,
    mean_rank_interval,
    newcombe_interval,
    probability_of_improvement,
)
from lstm_influence.analysis.summaries import ALL_DATASETS, summarize

T9 = stats.t.ppf(0.975, 9)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_interval_covers_at_least_93_percent_at_ten_runs(seed):
    coverage = interval_coverage(10, n_experiments=1000, seed=seed)
    assert set(coverage) == set(METHODS) == {"iqm", "poi", "paired_diff", "mean_rank"}
    for method, value in coverage.items():
        assert value >= 0.93, (method, value)


def test_coverage_below_ten_runs_is_measured_not_assumed():
    five = interval_coverage(5, n_experiments=1000)
    # the paired interval at 5 pairs is [min, max] Walsh average: exactly 1 - 2/32 for continuous data
    assert five["paired_diff"] == pytest.approx(1 - 2 / 32, abs=0.02)
    assert all(0.85 <= v <= 1.0 for v in five.values())
    with pytest.raises(ValueError, match="n=1"):
        interval_coverage(1)


def test_adding_the_mean_rank_left_the_other_methods_numbers_unchanged():
    # the mean rank simulates from its own random stream; these are the values reports quoted before it existed
    ten = interval_coverage(10)
    assert (ten["iqm"], ten["poi"], ten["paired_diff"]) == (0.947, 0.9515, 0.9495)


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


# --------------------------------------------------------------------------------------------- the mean rank


def test_expected_block_ranks_by_hand():
    assert expected_block_ranks([0.0, 0.0]).tolist() == [1.5, 1.5]
    # two arms one SD apart: the better one is beaten with probability Φ(−1/√2)
    assert expected_block_ranks([0.0, 1.0])[0] == pytest.approx(1 + stats.norm.cdf(-1 / np.sqrt(2)))
    # an arm that always diverges ranks last; two that always diverge tie for the last two places
    assert expected_block_ranks([0.0, 20.0, 40.0], [1.0, 0.0, 0.0]).tolist() == [3.0, 1.0, 2.0]
    assert expected_block_ranks([0.0, 0.0, 0.0], [1.0, 1.0, 0.0]).tolist() == [2.5, 2.5, 1.0]
    # the expected ranks of every dataset sum to K(K + 1)/2
    truth = expected_block_ranks(RANK_LAYOUT, RANK_DIVERGENCE)
    assert truth.shape == RANK_LAYOUT.shape
    assert truth.sum(axis=1) == pytest.approx([10.0, 10.0, 10.0])


def test_expected_block_ranks_agree_with_a_large_simulation():
    rng = np.random.default_rng(11)
    mu, q = np.array([0.0, 0.4, 1.0, 2.5]), np.array([0.2, 0.0, 0.05, 0.3])
    scores = rng.normal(size=(200_000, 4)) + mu
    scores[rng.random(scores.shape) < q] = np.inf
    simulated = block_ranks(scores).mean(axis=0)
    assert simulated == pytest.approx(expected_block_ranks(mu, q), abs=0.01)  # standard error about 0.0025


def test_an_arm_first_on_every_seed_keeps_an_open_interval_computed_by_hand():
    # 10 seeds, 3 arms, always in the order 0 < 1 < 2: a percentile bootstrap would print 1 [1, 1]
    ranks = np.tile([1.0, 2.0, 3.0], (10, 1))
    mean, low, high = block_rank_interval(ranks)
    # with the pseudo-blocks the first arm's 12 values are eleven 1s and one 3: mean 14/12, variance 1/3
    first = T9 * np.sqrt(1 / 3) / np.sqrt(12)
    middle = T9 * np.sqrt(2 / 11) / np.sqrt(12)  # ten 2s, a 1 and a 3: mean 2, variance 2/11
    assert mean.tolist() == [1.0, 2.0, 3.0]
    assert low == pytest.approx([1.0, 2 - middle, 3 - (1 / 6 + first)])
    assert high == pytest.approx([1 + 1 / 6 + first, 2 + middle, 3.0])
    assert high[0] == pytest.approx(1.5437, abs=1e-4)  # the value the estimator's docstring quotes
    assert np.isnan(block_rank_interval(ranks[:1])[1]).all()


def test_mean_rank_interval_weights_datasets_equally_and_adds_their_intervals_in_squares():
    rng = np.random.default_rng(4)
    a = block_ranks(rng.normal(size=(4, 3)))
    b = block_ranks(rng.normal(size=(9, 3)) + np.array([0.0, 1.0, 2.0]))
    mean, low, high = mean_rank_interval(np.vstack([a, b]), ["a"] * 4 + ["b"] * 9)
    (ma, la, ha), (mb, lb, hb) = block_rank_interval(a), block_rank_interval(b)
    assert mean == pytest.approx((ma + mb) / 2)  # not the mean over the 13 blocks
    assert low == pytest.approx(np.clip(mean - np.sqrt((ma - la) ** 2 + (mb - lb) ** 2) / 2, 1, 3))
    assert high == pytest.approx(np.clip(mean + np.sqrt((ha - ma) ** 2 + (hb - mb) ** 2) / 2, 1, 3))
    assert np.all(low < mean) and np.all(mean < high)
    # one dataset alone: its own interval
    alone = mean_rank_interval(b, ["b"] * 9)
    assert np.allclose(alone, block_rank_interval(b))
    # a dataset with one block gives no interval
    assert np.isnan(mean_rank_interval(np.vstack([a, b[:1]]), ["a"] * 4 + ["b"])[1]).all()


def test_the_summary_reports_the_mean_rank_interval_of_its_blocks():
    rng = np.random.default_rng(8)
    arms, seeds = ["baseline", "bias_init", "custom_init"], range(6)
    rows = [
        {"dataset": d, "arm": arm, "seed": s, "value": rng.normal(shift * k)}
        for d, shift in (("financial", 0.5), ("text", 2.0))
        for k, arm in enumerate(arms)
        for s in seeds
    ]
    scores = pd.DataFrame(rows).assign(status="ok", diverged=False, budget=10, run_id=lambda f: f.index.astype(str))
    scores["pair"] = "seed=" + scores["seed"].astype(str)
    summary = summarize(scores, "test/norm_loss").set_index(["dataset", "arm"])
    blocks = {
        d: block_ranks(scores[scores["dataset"] == d].pivot(index="seed", columns="arm", values="value")[arms])
        for d in ("financial", "text")
    }
    text = block_rank_interval(blocks["text"])
    across = mean_rank_interval(np.vstack(list(blocks.values())), ["financial"] * 6 + ["text"] * 6)
    for i, arm in enumerate(arms):
        reported = summary.loc[("text", arm), ["mean_rank", "mean_rank_low", "mean_rank_high"]].to_numpy(float)
        assert reported == pytest.approx([part[i] for part in text])
        reported = summary.loc[(ALL_DATASETS, arm), ["mean_rank", "mean_rank_low", "mean_rank_high"]]
        assert reported.to_numpy(float) == pytest.approx([part[i] for part in across])
        assert summary.loc[(ALL_DATASETS, arm), "n_blocks"] == 12


@pytest.mark.parametrize("n_arms", [2, 4, 6])
def test_mean_rank_covers_over_arms_datasets_layouts_effects_and_divergence(n_arms):
    """The thorough grid the method was chosen on: 1 or 4 datasets; the arms in one order everywhere, reversed on
    every other dataset, or with effects growing across datasets; with and without rare divergence."""
    rng = np.random.default_rng(n_arms)
    steps = np.arange(n_arms, dtype=float)
    divergence = np.zeros(n_arms)
    divergence[0], divergence[-1] = 0.15, 0.3
    layouts = {
        "one dataset": steps[None],
        "same order": np.tile(steps, (4, 1)),
        "reversed on every other": np.stack([steps, steps[::-1]] * 2),
        "growing effects": np.outer([0.0, 0.5, 1.0, 2.0], steps),
    }
    results = []
    for n in (5, 10):
        for name, layout in layouts.items():
            for delta in (0.0, 0.5, 1.0, 2.0):
                for q in (None, divergence):
                    per_dataset, across = mean_rank_coverage(n, delta * layout, q, n_experiments=2000, rng=rng)
                    results.append((min(per_dataset.min(), across.min()), n, name, delta, q is not None))
    assert min(results) >= (0.93,), min(results)
