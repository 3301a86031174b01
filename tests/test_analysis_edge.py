"""Edge cases of the analysis: hand-made frames (no MLflow) and a store whose sweep has nothing usable."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lstm_influence import tracking
from lstm_influence.analysis import analyse, plots
from lstm_influence.analysis.bands import convergence_bands
from lstm_influence.analysis.estimators import (
    hodges_lehmann_paired,
    iqm_interval,
    min_p_rank_sum,
    min_p_signed_rank,
    newcombe_interval,
    pairs_for_clean_separation,
    probability_of_improvement,
    rank_sum_test,
    signed_rank_test,
)
from lstm_influence.analysis.load import RunRecord, runs_frame, select_runs
from lstm_influence.analysis.summaries import arm_order, metric_scores, summarize
from tests.helpers import Store


def _runs(rows):
    frame = pd.DataFrame(rows, columns=["run_id", "dataset", "arm", "seed", "diverged", "budget"])
    frame["included"] = True
    return frame


def _metrics(rows):
    return pd.DataFrame(rows, columns=["run_id", "metric", "value"])


def test_metric_scores_statuses():
    runs = _runs(
        [
            ("a", "d", "baseline", 0, False, 10),
            ("b", "d", "baseline", 1, False, 10),  # did not log the metric: missing
            ("c", "d", "baseline", 2, True, 10),  # diverged, no value: worst
            ("e", "d", "baseline", 3, False, 10),  # logged NaN: worst
            ("f", "d", "baseline", 4, False, 10),  # logged +inf, stored by MLflow as float max: worst
            ("g", "d", "baseline", 5, True, 10),  # diverged with a small finite value: still worst
        ]
    )
    metrics = _metrics(
        [
            ("a", "test/norm_loss", 0.5),
            ("e", "test/norm_loss", np.nan),
            ("f", "test/norm_loss", 1.8e308),
            ("g", "test/norm_loss", 0.01),
        ]
    )
    s = metric_scores(runs, metrics, "test/norm_loss").set_index("run_id")
    assert s["status"].to_dict() == {"a": "ok", "b": "missing", "c": "worst", "e": "worst", "f": "worst", "g": "worst"}
    assert s.at["c", "value"] == np.inf and s.at["g", "value"] == np.inf
    higher = metric_scores(runs, metrics, "test/norm_loss", higher_is_better=["test/norm_loss"]).set_index("run_id")
    assert higher.at["c", "value"] == -np.inf


def test_epochs_to_target_censoring_rules():
    runs = _runs(
        [
            ("a", "d", "s", 0, False, 8),  # reached at 3
            ("b", "d", "s", 1, False, 8),  # reached_target = 0: censored at 8 -> 9
            ("c", "d", "s", 2, True, 8),  # diverged: worst, below every censored run
            ("e", "d", "s", 3, False, 8),  # no conv metrics at all: missing, not censored
        ]
    )
    metrics = _metrics(
        [
            ("a", "conv/epochs_to_target", 3),
            ("a", "conv/reached_target", 1),
            ("b", "conv/reached_target", 0),
        ]
    )
    s = metric_scores(runs, metrics, "conv/epochs_to_target").set_index("run_id")
    assert s["status"].to_dict() == {"a": "ok", "b": "censored", "c": "worst", "e": "missing"}
    assert s.loc[["a", "b", "c"], "value"].tolist() == [3, 9, np.inf]


def test_summary_without_baseline_and_with_unequal_seeds():
    scores = pd.DataFrame(
        {
            "run_id": list("abcde"),
            "dataset": "d",
            "arm": ["x", "x", "x", "y", "y"],
            "seed": [0, 1, 2, 0, 1],
            "value": [1.0, 2.0, 3.0, 0.5, 0.7],
            "status": "ok",
            "diverged": False,
            "budget": 10,
        }
    )
    scores["pair"] = "seed=" + scores["seed"].astype(str)
    summary = summarize(scores, "test/norm_loss")
    assert summary["poi"].isna().all() and summary["p_value"].isna().all() and summary["p_holm"].isna().all()
    assert summary.set_index("arm").at["x", "n_runs"] == 3
    versus_x = summarize(scores, "test/norm_loss", control="x").set_index("arm")
    assert versus_x.at["y", "poi"] == 1.0 and versus_x.at["y", "test"] == "rank-sum exact"  # seed 2 unpartnered
    assert versus_x.at["x", "iqm"] == 2.0


def test_intervals_need_two_values_and_never_collapse_at_separation():
    assert all(np.isnan(v) for v in iqm_interval(np.array([0.2])))
    low, high = iqm_interval(np.array([0.4, 0.4, 0.4, 0.4]))
    assert low == high == 0.4  # constant data: the only point interval
    low, high = newcombe_interval(1.0, 5, 5)
    assert 0.5 < low < 1.0 and high == 1.0  # P(improvement) = 1 from 5 runs is not "1 [1, 1]"
    shift = hodges_lehmann_paired([-0.3, -0.2, -0.25, -0.1, -0.4])
    assert shift.low < shift.estimate < shift.high and shift.coverage == 1 - 2 / 32
    assert probability_of_improvement(np.array([0.1]), np.array([0.2])) == 1.0


def test_fully_tied_groups_never_beat_the_exact_minimum():
    """Five tied values per arm: the normal approximation gave p = 0.004 < 2/252; exact tests cannot."""
    assert rank_sum_test([7.0] * 5, [11.0] * 5) == pytest.approx(2 / 252) == min_p_rank_sum(5, 5)
    assert rank_sum_test([11.0] * 5, [11.0] * 5) == 1.0
    assert signed_rank_test([-4.0] * 5) == pytest.approx(2 / 32) == min_p_signed_rank(5)
    assert signed_rank_test([0.0] * 5) == 1.0
    # censored ties: three runs tied at the censoring value in each arm
    p = rank_sum_test([11.0, 11.0, 11.0, 9.0, 8.0], [11.0, 11.0, 11.0, 12.0, 12.0])
    assert min_p_rank_sum(5, 5) <= p <= 1
    for n in range(1, 12):
        rng = np.random.default_rng(n)
        ties = rng.integers(0, 3, size=(50, n)).astype(float)
        assert min(signed_rank_test(row - 1) for row in ties) >= min_p_signed_rank(n) - 1e-15
    assert pairs_for_clean_separation(12, 0.05) == 9 and pairs_for_clean_separation(1, 0.05) == 6


def test_arm_tag_groups_runs_and_orders_arms():
    def record(run_id, arm, strategy):
        tags = {"strategy": strategy, "dataset": "d", "seed": "0", "run_type": "train"}
        if arm:
            tags["arm"] = arm
        return RunRecord(run_id, run_id, "FINISHED", 1, 2, tags, {"train.epochs": "3"}, {"test/norm_loss": 0.5})

    runs, _, _ = runs_frame(
        [record("a", "chrono", "bias_init"), record("b", None, "baseline"), record("c", "zeros", "bias_init")]
    )
    assert runs.set_index("run_id")["arm"].to_dict() == {"a": "chrono", "b": "baseline", "c": "zeros"}
    assert runs.set_index("run_id").at["a", "strategy_tag"] == "bias_init"
    # the control first, then the swept order, then any other arm as it appears: no fixed list of names
    assert arm_order(["zeros", "my_nudge", "chrono", "baseline"]) == ["baseline", "zeros", "my_nudge", "chrono"]
    swept = ["chrono", "my_nudge", "zeros"]
    assert arm_order(["zeros", "other", "chrono", "baseline", "my_nudge"], order=swept) == [
        "baseline",
        "chrono",
        "my_nudge",
        "zeros",
        "other",
    ]
    assert arm_order(["zeros", "chrono"], control="zeros") == ["zeros", "chrono"]


def test_the_report_lists_arms_in_the_order_the_sweep_swept_them():
    from lstm_influence.analysis.load import SweepData

    def record(run_id, arm, start):
        tags = {"strategy": "bias_init", "arm": arm, "dataset": "synthetic", "seed": "0", "run_type": "train"}
        return RunRecord(run_id, run_id, "FINISHED", start, start + 1, tags, {}, {"test/norm_loss": 0.5})

    runs, metrics, params = runs_frame([record("a", "zz_last", 3), record("b", "my_nudge", 1), record("c", "mid", 2)])
    runs["included"], runs["reason"] = True, ""

    def data(sweep_params):
        sweep = None if sweep_params is None else {"params": sweep_params}
        return SweepData("e", "1", "sqlite://", sweep, pd.DataFrame(), runs, metrics, pd.DataFrame(), params)

    assert data(None).arms == ["my_nudge", "mid", "zz_last"]  # no sweep: by each arm's first start
    assert data({"sweep.params.arm": "zz_last,mid,my_nudge,absent"}).arms == ["zz_last", "mid", "my_nudge"]
    assert data({"sweep.grid.arm": "'mid','zz_last'"}).arms == ["mid", "zz_last", "my_nudge"]  # the rest by start


def test_tasks_of_one_dataset_are_analysed_apart():
    def record(run_id, dataset, task):
        tags = {"strategy": "baseline", "dataset": dataset, "seed": "0", "run_type": "train"}
        params = {"train.epochs": "3", **({"dataset.task": task} if task else {})}
        return RunRecord(run_id, run_id, "FINISHED", 1, 2, tags, params, {"test/norm_loss": 0.5})

    runs, _, _ = runs_frame(
        [record("a", "synthetic", "adding"), record("b", "synthetic", "copy"), record("c", "text", None)]
    )
    assert runs.set_index("run_id")["dataset"].to_dict() == {
        "a": "synthetic/adding",
        "b": "synthetic/copy",
        "c": "text",
    }
    # same arm, seed and budget, different tasks: both runs stay, none supersedes the other
    assert select_runs(runs.iloc[:2])["included"].all()


def test_select_runs_keeps_diverged_and_drops_unfinished():
    t = pd.Timestamp("2025-01-01", tz="UTC")
    runs = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3", "r4", "r5"],
            "status": ["FINISHED", "RUNNING", "FINISHED", "KILLED", "FAILED"],
            "arm": ["s", "s", None, "s", "s"],
            "dataset": ["d", "d", "d", "d", "d"],
            "seed": pd.array([0, 1, 2, 3, 0], dtype="Int64"),
            "config_hash": ["h1", "h2", "h3", "h4", "h1"],
            "error": [None, None, None, None, "OSError: disk full"],
            "start_time": [t] * 5,
            "diverged": [True, False, False, False, False],
        }
    )
    out = select_runs(runs).set_index("run_id")
    assert out["included"].to_dict() == {"r1": True, "r2": False, "r3": False, "r4": False, "r5": False}
    assert out.at["r2", "reason"] == "status RUNNING" and "tag" in out.at["r3", "reason"]
    assert out.at["r5", "reason"] == "status FAILED: OSError: disk full; re-run as r1"


def test_figures_survive_empty_inputs():
    empty_bands = pd.DataFrame(columns=["dataset", "arm", "step", "n", "iqm", "low", "high"])
    empty_scores = pd.DataFrame(columns=["run_id", "dataset", "arm", "seed", "pair", "value", "status", "diverged"])
    empty_summary = summarize(empty_scores.assign(budget=[]), "test/norm_loss")
    empty_metrics = pd.DataFrame(columns=["run_id", "dataset", "arm", "seed", "metric", "value"])
    figs = [
        plots.convergence_figure(empty_bands),
        plots.distribution_figure(empty_scores, empty_summary),
        plots.stability_figure(empty_scores, empty_summary, empty_metrics),
        plots.retention_figure(empty_metrics),
        plots.improvement_figure(empty_summary),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        fig.savefig(io.BytesIO(), format="png")
    assert convergence_bands(pd.DataFrame(columns=["run_id", "dataset", "arm", "metric", "step", "value"])).empty


def test_plot_functions_take_and_return_axes():
    fig = Figure()
    ax = fig.add_subplot()
    summary = pd.DataFrame(
        {
            "metric": "test/norm_loss",
            "lower_is_better": True,
            "dataset": "d",
            "arm": ["baseline", "bias_init"],
            "poi": [np.nan, 0.7],
            "poi_low": [np.nan, 0.5],
            "poi_high": [np.nan, 0.9],
        }
    )
    assert plots.plot_probability_of_improvement(summary, "d", ax=ax) is ax
    assert ax.get_xlabel() == "P(lower than baseline)"
    own = plots.plot_probability_of_improvement(summary, "d")
    assert own is not ax and own.figure is not fig
    styles = plots.arm_styles(["baseline", "bias_init", "my_new_strategy"])
    assert styles["baseline"] == plots.CONTROL_STYLE
    assert styles["my_new_strategy"]["color"] in plots.TOL_MUTED


@pytest.fixture(scope="module")
def failed_only_store(mlflow_store: Store) -> Store:
    """The module's store with experiment ``failed-only``: a sweep whose one training run FAILED."""
    client = tracking.make_client(mlflow_store.uri)
    exp = client.create_experiment("failed-only", artifact_location=(mlflow_store.root / "artifacts").as_uri())
    now = int(time.time() * 1000)
    parent = client.create_run(exp, start_time=now, tags={"run_type": "sweep", "sweep_id": "s1"}, run_name="s1")
    child = client.create_run(
        exp,
        start_time=now + 1,
        run_name="baseline-synthetic-s0",
        tags={
            "run_type": "train",
            "sweep_id": "s1",
            "strategy": "baseline",
            "dataset": "synthetic",
            "seed": "0",
            "mlflow.parentRunId": parent.info.run_id,
            "error": "RuntimeError: out of memory",
        },
    )
    client.set_terminated(child.info.run_id, "FAILED")
    return mlflow_store


def test_sweep_with_only_failed_runs_still_reports(failed_only_store, tmp_path):
    result = analyse("failed-only", tracking_uri=failed_only_store.uri, out_dir=tmp_path)
    assert result.data.included.empty and "No finished training runs to analyse." in result.messages
    text = result.report.read_text(encoding="utf-8")
    assert "nothing to summarise" in text and "out of memory" in text
    assert not (tmp_path / "figures").exists()


def test_iqm_interval_of_a_non_negative_metric_stops_at_zero_and_retention_may_go_below():
    values = [0.001, 0.002, 0.003, 0.004, 0.09]  # skewed: the t interval alone reaches below 0
    low, _ = iqm_interval(np.array(values))
    assert low < 0
    scores = pd.DataFrame(
        {
            "run_id": list("abcde"),
            "dataset": "d",
            "arm": "x",
            "seed": range(5),
            "value": values,
            "status": "ok",
            "diverged": False,
            "budget": 10,
        }
    )
    scores["pair"] = "seed=" + scores["seed"].astype(str)
    loss = summarize(scores, "test/norm_loss", control="x").set_index("arm")
    retention = summarize(scores, "influence/retention", control="x").set_index("arm")
    assert loss.at["x", "iqm_low"] == 0.0
    assert retention.at["x", "iqm_low"] == pytest.approx(float(low))
