"""Solved rates: Clopper–Pearson intervals (exact coverage), the exact McNemar test, the report's section."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from scipy import stats

from lstm_influence.analysis import plots
from lstm_influence.analysis.coverage import rate_coverage, wilson_ci
from lstm_influence.analysis.estimators import mcnemar_exact, min_p_mcnemar, proportion_ci
from lstm_influence.analysis.measured import measure
from lstm_influence.analysis.rates import PAIRED_RATE_TEST, UNPAIRED_RATE_TEST, solved_rates
from lstm_influence.analysis.result_sections import solved_section
from lstm_influence.analysis.settings import ReportSettings


def _scores(cells: dict[tuple[str, str], list[str]], *, drop: tuple[str, str, int] | None = None) -> pd.DataFrame:
    """A scores frame of ``conv/epochs_to_target``: per (dataset, arm) one status per seed ("ok" = solved)."""
    rows = []
    for (dataset, arm), statuses in cells.items():
        for seed, status in enumerate(statuses):
            if drop == (dataset, arm, seed):
                continue
            value = {"ok": 7.0, "censored": 21.0, "worst": np.inf, "missing": np.nan}[status]
            rows.append(
                {
                    "run_id": f"{dataset}-{arm}-{seed}",
                    "dataset": dataset,
                    "arm": arm,
                    "seed": seed,
                    "pair": f"seed={seed}|epochs=20|data_seed=0",
                    "value": value,
                    "status": status,
                    "diverged": status == "worst",
                    "budget": 20,
                }
            )
    return pd.DataFrame(rows)


CELLS = {
    ("adding", "baseline"): ["censored"] * 8 + ["ok", "ok"],
    ("adding", "chrono"): ["ok"] * 9 + ["worst"],  # a diverged run did not solve the task
    ("adding", "zeros"): ["censored"] * 9 + ["ok"],
    ("copy", "baseline"): ["censored"] * 10,
    ("copy", "chrono"): ["censored"] * 9 + ["missing"],  # a run without the metric is left out
}


def test_clopper_pearson_interval_and_its_exact_coverage():
    rate, low, high = proportion_ci(3, 10)
    ci = stats.binomtest(3, 10).proportion_ci(method="exact")
    assert (rate, low, high) == pytest.approx((0.3, ci.low, ci.high))
    assert proportion_ci(0, 10)[1] == 0 and proportion_ci(10, 10)[2] == 1
    assert proportion_ci(0, 10)[2] == pytest.approx(1 - 0.025 ** (1 / 10))  # the one-sided exact bound
    assert all(np.isnan(proportion_ci(0, 0)))
    for n in (5, 10, 20):
        p, coverage = rate_coverage(n)
        assert coverage.min() >= 0.95 - 1e-9, n  # never below nominal, at any true rate
        assert coverage.min() < 0.98, n  # and not trivially wide
        _, wilson = rate_coverage(n, rates=p, interval=wilson_ci)
        assert wilson.min() < 0.86, n  # why the report does not use Wilson's shorter interval


def test_rate_coverage_is_the_binomial_sum():
    # n = 1: k = 0 gives [0, 0.975], k = 1 gives [0.025, 1]; at p = 0.01 only k = 0 covers, with probability 0.99
    _, coverage = rate_coverage(1, rates=[0.01, 0.5, 0.99])
    assert coverage == pytest.approx([0.99, 1.0, 0.99])
    with pytest.raises(ValueError, match="n=0"):
        rate_coverage(0)


def test_mcnemar_exact_by_hand():
    assert mcnemar_exact(7, 1) == pytest.approx(2 * (1 + 8) / 2**8)
    assert mcnemar_exact(1, 7) == pytest.approx(mcnemar_exact(7, 1))
    assert mcnemar_exact(0, 0) == 1.0
    assert min_p_mcnemar(10) == pytest.approx(2 / 2**10) and np.isnan(min_p_mcnemar(0))


def test_solved_rates_counts_tests_and_holm():
    rates = solved_rates(_scores(CELLS)).set_index(["dataset", "arm"])
    base = rates.loc[("adding", "baseline")]
    assert (base["n_solved"], base["n_runs"]) == (2, 10) and np.isnan(base["p_value"])
    chrono = rates.loc[("adding", "chrono")]
    assert (chrono["n_solved"], chrono["n_runs"], chrono["test"]) == (9, 10, PAIRED_RATE_TEST)
    assert (chrono["rate_low"], chrono["rate_high"]) == pytest.approx(proportion_ci(9, 10)[1:])
    # pairs: seeds 0-7 chrono only, seed 8 both, seed 9 baseline only (chrono diverged there)
    assert (chrono["arm_only"], chrono["control_only"]) == (8, 1)
    assert chrono["p_value"] == pytest.approx(2 * (1 + 9) / 2**9)
    zeros = rates.loc[("adding", "zeros")]
    assert (zeros["arm_only"], zeros["control_only"]) == (0, 1) and zeros["p_value"] == 1.0
    copy = rates.loc[("copy", "chrono")]
    assert copy["n_runs"] == 9 and copy["test"] == UNPAIRED_RATE_TEST  # seed 9 has no partner: Fisher
    assert copy["p_value"] == 1.0
    tested = rates["p_value"].dropna().sort_values()
    assert rates.loc[tested.index[0], "p_holm"] == pytest.approx(3 * tested.iloc[0])


def test_solved_section_lists_informative_tasks_and_summarises_the_rest():
    rates = solved_rates(_scores(CELLS))
    settings = ReportSettings(metrics=["test/norm_loss"])
    text = solved_section(rates, settings, measure({}, rates, settings))
    assert "## Solved rate" in text
    assert "| adding | chrono | 9/10 | 0.9 [0.55, 1] | 8 / 1 | McNemar exact (10) | 0.0391 | 0.117 |" in text
    assert "Holm over all 3 comparisons" in text
    assert "Every arm the same: `copy` (none)." in text
    assert "0.961 at n = 10" in text  # the Clopper–Pearson interval's smallest exact coverage at 10 runs
    assert solved_section(rates.iloc[0:0], settings, measure({}, rates.iloc[0:0], settings)) == ""


def test_solved_figure_draws_a_bar_per_cell():
    rates = solved_rates(_scores(CELLS))
    fig = plots.solved_figure(rates)
    assert isinstance(fig, Figure)
    bars = [p for ax in fig.axes for c in ax.containers if isinstance(c, BarContainer) for p in c]
    assert len(bars) == len(rates)
    assert sorted(round(p.get_width(), 3) for p in bars) == sorted(round(r, 3) for r in rates["rate"])
    fig.savefig(io.BytesIO(), format="png")
    assert isinstance(plots.solved_figure(rates.iloc[0:0]), Figure)
