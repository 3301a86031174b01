"""Equivalence within a margin: the exact paired (and unpaired) TOST, its size at the margin, and where it shows."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from lstm_influence.analysis.coverage import EQUIVALENCE_TESTS, equivalence_rate, equivalence_size
from lstm_influence.analysis.declaration import load_declaration, parse_margin
from lstm_influence.analysis.estimators import (
    rank_sum_one_sided,
    rank_sum_tost,
    signed_rank_one_sided,
    signed_rank_tost,
)
from lstm_influence.analysis.result_sections import equivalence_verdict
from lstm_influence.analysis.summaries import SUMMARY_COLUMNS, summarize

D = [0.1, -0.2, 0.05, 0.15, -0.1]


def brute_signed_rank_tail(d, greater: bool) -> float:
    """One-sided signed-rank p by listing every sign pattern (no ties, no zeros)."""
    d = np.asarray(d, dtype=float)
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    observed = ranks[d > 0].sum()
    sums = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=d.size)]
    sums = np.asarray(sums)
    return float(np.mean(sums >= observed) if greater else np.mean(sums <= observed))


def brute_rank_sum_tail(x, y, greater: bool) -> float:
    """One-sided rank-sum p by listing every split of the pooled runs (no ties)."""
    pooled = np.concatenate([x, y])
    ranks = np.argsort(np.argsort(pooled)) + 1
    observed = ranks[: len(x)].sum()
    sums = np.asarray([sum(c) for c in itertools.combinations(ranks, len(x))])
    return float(np.mean(sums >= observed) if greater else np.mean(sums <= observed))


def largest_level_below(alpha: float, n: int) -> float:
    """The largest one-sided signed-rank tail probability below alpha with n pairs: the test's exact size."""
    patterns = itertools.product([0, 1], repeat=n)
    sums = np.asarray([sum(r for r, s in zip(range(1, n + 1), signs) if s) for signs in patterns])
    tails = [np.mean(sums <= w) for w in range(sums.max() + 1)]
    return max(t for t in tails if t < alpha)


# ------------------------------------------------------------------------------------------- the tests by hand


def test_paired_tost_by_hand():
    # all five differences inside ±1: both one-sided tests see five positive (negative) signs, p = 1/32 each
    assert signed_rank_tost(D, 1.0) == 1 / 32
    # m = 0.12: d + m = [0.22, -0.08, 0.17, 0.27, 0.02] ranks 4, 2, 3, 5, 1; W+ = 13, P(W+ >= 13) = 3/32 (the
    # complements with sums 0, 1, 2); d - m = [-0.02, -0.32, -0.07, 0.03, -0.22]: W+ = 2, P(W+ <= 2) = 3/32
    assert signed_rank_one_sided(np.array(D) + 0.12, greater=True) == 3 / 32
    assert signed_rank_one_sided(np.array(D) - 0.12, greater=False) == 3 / 32
    assert signed_rank_tost(D, 0.12) == 3 / 32
    # m = 0.05: d - m = [0.05, -0.25, 0, 0.10, -0.15]; the zero is dropped, ranks 1, 4, 2, 3 of four, W+ = 3,
    # P(W+ <= 3) = 5/16 (sums 0, 1, 2, 3 and 1 + 2); the lower test's p is smaller, so 5/16 decides
    assert signed_rank_one_sided(np.array(D) - 0.05, greater=False) == 5 / 16
    assert signed_rank_one_sided(np.array(D) + 0.05, greater=True) < 5 / 16
    assert signed_rank_tost(D, 0.05) == 5 / 16
    # every difference 0 counts as 0 ± m on each side: one-sided p = 1/2^n
    assert signed_rank_tost([0.0, 0.0, 0.0], 1.0) == 1 / 8


def test_paired_tost_agrees_with_brute_force_enumeration():
    rng = np.random.default_rng(5)
    for _ in range(20):
        d, m = rng.normal(0.2, 1.0, size=7), rng.uniform(0.2, 2.0)
        expected = max(brute_signed_rank_tail(d + m, True), brute_signed_rank_tail(d - m, False))
        assert signed_rank_tost(d, m) == pytest.approx(expected)


def test_unpaired_tost_agrees_with_brute_force_enumeration():
    assert rank_sum_tost([1.0, 2.0, 3.0], [1.1, 2.1, 3.1], 5.0) == 1 / 20  # complete separation both ways: 1/C(6, 3)
    rng = np.random.default_rng(6)
    for _ in range(20):
        x, y, m = rng.normal(0.3, 1.0, size=4), rng.normal(size=5), rng.uniform(0.2, 2.0)
        expected = max(brute_rank_sum_tail(x + m, y, True), brute_rank_sum_tail(x - m, y, False))
        assert rank_sum_tost(x, y, m) == pytest.approx(expected)
        assert rank_sum_one_sided(x + m, y, greater=True) == pytest.approx(brute_rank_sum_tail(x + m, y, True))


def test_vectorised_rows_equal_one_at_a_time_with_ties_zeros_and_inf():
    rng = np.random.default_rng(7)
    d = rng.normal(size=(50, 6))
    d[0, :2] = 0.5  # tied |d - m| and a zero in d - m
    d[1, 0] = np.inf  # a diverged arm run
    d[2, :] = 0.0
    d[3, 0] = np.nan
    together = signed_rank_tost(d, 0.5)
    apart = [signed_rank_tost(row, 0.5) for row in d]
    assert together == pytest.approx(apart)
    assert together[1] == signed_rank_tost(d[1], 0.5)  # +inf lies beyond +m: the upper test cannot pass
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(40, 5))
    x[0, 0] = y[0, 0] + 0.5  # a tie after shifting
    assert rank_sum_tost(x, y, 0.5) == pytest.approx([rank_sum_tost(a, b, 0.5) for a, b in zip(x, y)])


def test_margin_must_be_positive_and_empty_input_gives_nan():
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="positive finite"):
            signed_rank_tost(D, bad)
        with pytest.raises(ValueError, match="positive finite"):
            rank_sum_tost(D, D, bad)
    assert np.isnan(signed_rank_tost([], 1.0)) and np.isnan(signed_rank_tost([np.nan], 1.0))
    assert np.isnan(rank_sum_tost([], [1.0], 1.0))


# ------------------------------------------------------------------------------------------- size by simulation


@pytest.mark.parametrize("n", [5, 10])
def test_tost_size_at_the_margin_is_at_most_alpha(n):
    size = equivalence_size(n)
    assert set(size) == set(EQUIVALENCE_TESTS)
    for test, value in size.items():
        assert value <= 0.05, (n, test, value)
    # at a wide margin the test at the far boundary always passes, so the size is the exact one-sided level
    exact = largest_level_below(0.05, n)
    assert size["paired"] == pytest.approx(exact, abs=3 * np.sqrt(exact * (1 - exact) / 20_000) + 1e-12)


def test_the_size_check_catches_a_test_that_is_too_liberal():
    """One one-sided test alone (not the maximum of two) is no equivalence test: at the boundary it passes often."""
    rng = np.random.default_rng(0)
    d = rng.normal(1.0, 1.0, size=(20_000, 10))  # the true difference sits on the upper boundary m = 1
    lower_only = np.array([signed_rank_one_sided(row + 1.0, greater=True) for row in d[:2000]])
    assert np.mean(lower_only < 0.05) > 0.9
    assert equivalence_rate(10, 1.0, 1.0) <= 0.05


def test_power_grows_with_the_margin():
    # true difference 0: a margin of 1 SD shows equivalence most of the time with 10 pairs, 0.25 SD almost never
    wide, narrow = equivalence_rate(10, 0.0, 1.0), equivalence_rate(10, 0.0, 0.25)
    assert wide > 0.6 and narrow < 0.05
    # at 5 pairs the smallest p is 1/32: every difference has to sit inside the margin
    assert equivalence_rate(5, 0.0, 1.0) == pytest.approx((0.6827**5), abs=0.02)


# ------------------------------------------------------------------------------------------- in the summary and report


def scores_frame(values: dict[str, list[float]], dataset: str = "text") -> pd.DataFrame:
    """A scores frame (one run per arm and seed, paired by seed) from {arm: values by seed}."""
    rows = [
        {"run_id": f"{arm}-{seed}", "dataset": dataset, "arm": arm, "seed": seed, "value": v}
        for arm, vs in values.items()
        for seed, v in enumerate(vs)
    ]
    frame = pd.DataFrame(rows).assign(status="ok", diverged=False, budget=10)
    frame["pair"] = "seed=" + frame["seed"].astype(str)
    return frame


BASE = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
SCORES = {
    "baseline": BASE,
    "close": [b + d for b, d in zip(BASE, [0.01, -0.02, 0.005, 0.015, -0.01, 0.02])],  # every |d| < 0.1
    "far": [b + 0.5 for b in BASE],
}


def test_summary_carries_the_margin_the_tost_p_and_its_holm_value():
    summary = summarize(scores_frame(SCORES), "test/norm_loss", margin=0.1).set_index("arm")
    assert list(SUMMARY_COLUMNS[SUMMARY_COLUMNS.index("p_holm") :][:4]) == [
        "p_holm",
        "margin",
        "p_equiv",
        "p_equiv_holm",
    ]
    # 6 pairs all inside ±0.1: both one-sided p are 1/64; 'far' sits outside on every pair: p = 1
    assert summary.at["close", "p_equiv"] == 1 / 64 and summary.at["far", "p_equiv"] == 1.0
    assert summary.at["close", "margin"] == 0.1
    assert summary.at["close", "p_equiv_holm"] == 2 / 64  # Holm over the two equivalence tests
    assert np.isnan(summary.at["baseline", "p_equiv"]) and np.isnan(summary.at["baseline", "margin"])
    without = summarize(scores_frame(SCORES), "test/norm_loss")
    assert without["margin"].isna().all() and without["p_equiv"].isna().all()
    only = summarize(scores_frame(SCORES), "test/norm_loss", margin=0.1, equivalence_arms=["far"]).set_index("arm")
    assert np.isnan(only.at["close", "p_equiv"]) and only.at["far", "p_equiv"] == 1.0


def test_unpaired_cells_get_the_rank_sum_tost():
    scores = scores_frame(SCORES)
    scores = scores[~((scores["arm"] == "close") & (scores["seed"] == 5))]  # one run without a partner
    summary = summarize(scores, "test/norm_loss", margin=0.1).set_index("arm")
    x = np.asarray(SCORES["close"][:5])
    assert summary.at["close", "p_equiv"] == rank_sum_tost(x, np.asarray(BASE), 0.1)


def test_verdict_says_equivalent_only_when_the_holm_adjusted_tost_passes():
    assert equivalence_verdict(0.031, 0.1) == "equivalent within ±0.1"
    assert equivalence_verdict(0.05, 0.1) == "not shown"
    assert equivalence_verdict(float("nan"), 0.1) == "—"


def test_declaration_and_margin_flags(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("primary: conv/aulc\nmargins:\n  test/norm_loss: 0.02\nequivalence_arms: [far]\n")
    declared = load_declaration(str(path))
    assert declared.primary == "conv/aulc" and declared.margins == {"test/norm_loss": 0.02}
    assert declared.equivalence_arms == ("far",) and declared.control is None
    assert parse_margin("test/norm_loss=0.01") == ("test/norm_loss", 0.01)
    for bad in ("test/norm_loss", "=0.1", "test/norm_loss=-1", "test/norm_loss=x"):
        with pytest.raises(ValueError):
            parse_margin(bad)
    path.write_text("primary: conv/aulc\nmargin: {test/norm_loss: 0.02}\n")
    with pytest.raises(ValueError, match=r"unknown key.*margin.*valid keys"):
        load_declaration(str(path))
    with pytest.raises(ValueError, match=r"no analysis declaration conf/analysis/nope\.yaml"):
        load_declaration("nope")
