"""experiments/compare.py's tuning table: a study's best values are called tuned only when the study searched."""

from __future__ import annotations

import pandas as pd
import pytest

from lstm_influence.analysis.run_sections import tuning_section
from lstm_influence.analysis.tuning_report import tuning_table
from tests.helpers import experiment_script


@pytest.fixture(scope="module")
def compare():
    return experiment_script("compare")


def _study(dataset: str, strategy: str, minute: int, **tags) -> dict:
    """A study parent run as ``mlflow.search_runs`` shows it."""
    row = {
        "run_id": f"{strategy}-{dataset}",
        "status": "FINISHED",
        "start_time": pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(minutes=minute),
        "tags.run_type": "tune",
        "tags.dataset": dataset,
        "tags.strategy": strategy,
        "metrics.tune/best_value": 0.5,
        "metrics.tune/default_value": 0.6,
    }
    row.update({f"tags.{key}": value for key, value in tags.items()})
    return row


@pytest.fixture(scope="module")
def studies():
    runs = pd.DataFrame(
        [
            _study("adding", "baseline", 0, budget="8", trials_done="8", search_trials="7", searched="True",
                   sampler="sobol+tpe", **{"best.learning_rate": "0.003", "tried.learning_rate": "7"}),
            _study("adding", "bias_init", 1, budget="2", trials_done="2", search_trials="1", searched="False",
                   sampler="sobol", **{"best.learning_rate": "0.01", "tried.learning_rate": "2"}),
            _study("text", "baseline", 2, budget="1", trials_done="1", search_trials="0", searched="False",
                   sampler="sobol", **{"best.learning_rate": "0.001", "tried.learning_rate": "1"}),
            _study("text", "bias_init", 3, budget="20", trials_done="20"),  # run before the sampler was recorded
        ]
    )  # fmt: skip
    return tuning_table(runs)


def test_the_view_carries_sampler_search_trials_searched_and_a_verdict(compare, studies):
    view = compare.tuning_view(studies)
    assert list(view.columns) == [
        *compare.TUNING_COLUMNS,
        compare.VERDICT_COLUMN,
        "best.learning_rate",
        "tried.learning_rate",
    ]
    view = view.set_index(["dataset", "strategy"])
    assert view["sampler"].tolist() == ["sobol+tpe", "sobol", "sobol", "unrecorded"]
    assert view["search_trials"].tolist()[:3] == [7, 1, 0] and pd.isna(view.at[("text", "bias_init"), "search_trials"])
    assert view["searched"].tolist() == [True, False, False, False]
    assert view[compare.VERDICT_COLUMN].tolist() == [
        "tuned",
        "not searched: one draw",
        "not searched: default only",
        "unrecorded",
    ]


def test_only_a_searched_study_is_called_tuned_in_the_report(compare, studies):
    section = tuning_section(compare.tuning_view(studies))
    lines = {line.split("|")[2].strip(): line for line in section.splitlines() if line.startswith("| adding")}
    assert "| tuned |" in lines["baseline"] and "not searched" not in lines["baseline"]
    assert "| not searched: one draw |" in lines["bias_init"] and "| tuned |" not in lines["bias_init"]


def test_the_verdict_by_hand(compare):
    assert compare.tuning_verdict(True, 2) == "tuned"
    assert compare.tuning_verdict(False, 1) == "not searched: one draw"
    assert compare.tuning_verdict(False, 0) == "not searched: default only"
    assert compare.tuning_verdict(False, pd.NA) == "unrecorded"
