"""Edge cases of the analysis: hand-made frames (no MLflow) and a store whose sweep has nothing usable."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from mlflow import MlflowClient

from lstm_influence.analysis import analyse, plots
from lstm_influence.analysis.load import select_runs
from lstm_influence.analysis.stats import (
    convergence_bands,
    iqm_ci,
    metric_scores,
    probability_of_improvement,
    summarize,
)


def _runs(rows):
    frame = pd.DataFrame(rows, columns=["run_id", "dataset", "strategy", "seed", "diverged", "budget"])
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
        ]
    )
    metrics = _metrics(
        [("a", "test/norm_loss", 0.5), ("e", "test/norm_loss", np.nan), ("f", "test/norm_loss", 1.8e308)]
    )
    s = metric_scores(runs, metrics, "test/norm_loss").set_index("run_id")
    assert s["status"].to_dict() == {"a": "ok", "b": "missing", "c": "worst", "e": "worst", "f": "worst"}
    assert s.at["c", "value"] == np.inf
    higher = metric_scores(runs, metrics, "test/norm_loss", higher_is_better=["test/norm_loss"]).set_index("run_id")
    assert higher.at["c", "value"] == -np.inf


def test_epochs_to_target_censoring_rules():
    runs = _runs(
        [
            ("a", "d", "s", 0, False, 8),  # reached at 3
            ("b", "d", "s", 1, False, 8),  # reached_target = 0: censored at 8 -> 9
            ("c", "d", "s", 2, True, 8),  # diverged, nothing logged: censored
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
    assert s["status"].to_dict() == {"a": "ok", "b": "censored", "c": "censored", "e": "missing"}
    assert s.loc[["a", "b", "c"], "value"].tolist() == [3, 9, 9]


def test_summary_without_baseline_and_with_unequal_seeds():
    scores = pd.DataFrame(
        {
            "run_id": list("abcde"),
            "dataset": "d",
            "strategy": ["x", "x", "x", "y", "y"],
            "seed": [0, 1, 2, 0, 1],
            "value": [1.0, 2.0, 3.0, 0.5, 0.7],
            "status": "ok",
            "diverged": False,
            "budget": 10,
        }
    )
    summary = summarize(scores, "test/norm_loss", n_resamples=2000)
    assert summary["poi"].isna().all() and summary["p_value"].isna().all() and summary["p_holm"].isna().all()
    assert summary.set_index("strategy").at["x", "n_runs"] == 3
    versus_x = summarize(scores, "test/norm_loss", baseline="x", n_resamples=2000).set_index("strategy")
    assert versus_x.at["y", "poi"] == 1.0
    assert versus_x.at["x", "iqm"] == 2.0


def test_bootstrap_is_seeded_and_needs_two_values():
    x = np.array([0.3, 0.1, 0.4, 0.15, 0.9, 0.26])
    assert iqm_ci(x, seed=3) == iqm_ci(x, seed=3)
    assert iqm_ci(x, seed=3) != iqm_ci(x, seed=4)
    assert all(np.isnan(iqm_ci(np.array([0.2]))))
    assert probability_of_improvement(np.array([0.1]), np.array([0.2])) == 1.0


def test_select_runs_keeps_diverged_and_drops_unfinished():
    t = pd.Timestamp("2025-01-01", tz="UTC")
    runs = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3", "r4", "r5"],
            "status": ["FINISHED", "RUNNING", "FINISHED", "KILLED", "FAILED"],
            "strategy": ["s", "s", None, "s", "s"],
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
    empty_bands = pd.DataFrame(columns=["dataset", "strategy", "step", "n", "iqm", "low", "high"])
    empty_scores = pd.DataFrame(columns=["run_id", "dataset", "strategy", "seed", "value", "status", "diverged"])
    empty_summary = summarize(empty_scores.assign(budget=[]), "test/norm_loss")
    empty_metrics = pd.DataFrame(columns=["run_id", "dataset", "strategy", "seed", "metric", "value"])
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
    assert convergence_bands(pd.DataFrame(columns=["run_id", "dataset", "strategy", "metric", "step", "value"])).empty


def test_plot_functions_take_and_return_axes():
    fig = Figure()
    ax = fig.add_subplot()
    summary = pd.DataFrame(
        {
            "metric": "test/norm_loss",
            "lower_is_better": True,
            "dataset": "d",
            "strategy": ["baseline", "bias_init"],
            "poi": [np.nan, 0.7],
            "poi_low": [np.nan, 0.5],
            "poi_high": [np.nan, 0.9],
        }
    )
    assert plots.plot_probability_of_improvement(summary, "d", ax=ax) is ax
    assert ax.get_xlabel() == "P(lower than baseline)"
    own = plots.plot_probability_of_improvement(summary, "d")
    assert own is not ax and own.figure is not fig
    styles = plots.strategy_styles(["baseline", "bias_init", "my_new_strategy"])
    assert styles["baseline"]["color"] == plots.OKABE_ITO["black"]
    assert styles["my_new_strategy"]["color"] in plots.OKABE_ITO.values()


@pytest.fixture(scope="module")
def failed_only_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("failed")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("failed-only", artifact_location=(root / "artifacts").as_uri())
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
    return uri, root


def test_sweep_with_only_failed_runs_still_reports(failed_only_store, tmp_path):
    uri, _ = failed_only_store
    result = analyse("failed-only", tracking_uri=uri, out_dir=tmp_path, n_resamples=2000)
    assert result.data.included.empty and "No finished training runs to analyse." in result.messages
    text = result.report.read_text(encoding="utf-8")
    assert "nothing to summarise" in text and "out of memory" in text
    assert not (tmp_path / "figures").exists()
