"""Tuning results for the analysis report: one row per strategy × dataset study, read from MLflow.

``python -m lstm_influence.tune`` leaves one parent run per study (tag ``run_type=tune``) whose tags and metrics hold
the study's summary (see :mod:`lstm_influence.tune`). :func:`tuning_results` reads them; :func:`tuning_table` is the
pure part, over a frame shaped like ``mlflow.search_runs``'s (``run_id``, ``status``, ``start_time``, ``tags.*``,
``metrics.*``).

This module imports neither TensorFlow nor Optuna.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

TUNE_RUN_TYPE = "tune"
BEST_PREFIX = "tags.best."
COLUMNS = [
    "dataset",
    "strategy",
    "budget",
    "trials",
    "pruned",
    "failed",
    "metric",
    "best_value",
    "default_value",
    "improvement",
    "relative_improvement",
    "best_trial",
    "best_is_default",
]
TRAILING = ["tuned_label", "study", "parent_run_id", "status", "start_time"]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _integer(value: Any) -> Any:
    number = _number(value)
    return pd.NA if np.isnan(number) else int(number)


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def tuning_table(runs: pd.DataFrame, *, latest_only: bool = True) -> pd.DataFrame:
    """One row per tuning study, from the study parent runs in ``runs``.

    Args:
        runs: MLflow runs as ``mlflow.search_runs`` returns them; rows whose ``tags.run_type`` is not ``tune`` are
            ignored.
        latest_only: keep only the most recently started study per strategy × dataset (an earlier study with
            another space, budget of epochs or objective is superseded).

    Returns:
        Columns ``dataset, strategy`` (sorted by them); ``budget`` (trials each study was given), ``trials``
        (finished: complete or pruned), ``pruned``, ``failed``; ``metric`` (the objective, e.g.
        ``final val/norm_loss``, lower is better); ``best_value`` and ``default_value`` (the default
        configuration's score in the same study); ``improvement`` = default − best (≥ 0, since the default
        configuration is one of the trials) and ``relative_improvement`` = improvement / default;
        ``best_trial``, ``best_is_default``; one ``best.<name>`` column per tuned parameter (NaN where a
        strategy does not have it, e.g. ``best.t_max`` outside bias_init); ``tuned_label`` (select the tuned
        configuration with ``+tuned=<label>``), ``study``, ``parent_run_id``, ``status``, ``start_time``.
    """
    empty = pd.DataFrame(columns=COLUMNS + TRAILING)
    if runs is None or runs.empty or "tags.run_type" not in runs:
        return empty
    studies = runs[runs["tags.run_type"] == TUNE_RUN_TYPE]
    if studies.empty:
        return empty
    if latest_only:
        studies = studies.sort_values("start_time").groupby(["tags.dataset", "tags.strategy"]).tail(1)

    def column(frame: pd.DataFrame, name: str) -> pd.Series:
        return frame[name] if name in frame else pd.Series(np.nan, index=frame.index)

    table = pd.DataFrame(
        {
            "dataset": column(studies, "tags.dataset"),
            "strategy": column(studies, "tags.strategy"),
            "budget": column(studies, "tags.budget").map(_integer),
            "trials": column(studies, "tags.trials_done").map(_integer),
            "pruned": column(studies, "tags.trials_pruned").map(_integer),
            "failed": column(studies, "tags.trials_failed").map(_integer),
            "metric": column(studies, "tags.objective"),
            "best_value": column(studies, "metrics.tune/best_value").map(_number),
            "default_value": column(studies, "metrics.tune/default_value").map(_number),
            "best_trial": column(studies, "tags.best_trial").map(_integer),
            "best_is_default": column(studies, "tags.best_is_default").map(lambda v: v == "True"),
        }
    )
    table["improvement"] = table["default_value"] - table["best_value"]
    table["relative_improvement"] = table["improvement"] / table["default_value"].where(table["default_value"] != 0)
    best_columns = sorted(name for name in studies.columns if name.startswith(BEST_PREFIX))
    for name in best_columns:
        table["best." + name[len(BEST_PREFIX) :]] = studies[name].map(_decode)
    table["tuned_label"] = column(studies, "tags.tuned_label")
    table["study"] = column(studies, "tags.optuna_study")
    table["parent_run_id"] = studies["run_id"]
    table["status"] = column(studies, "status")
    table["start_time"] = column(studies, "start_time")
    ordered = COLUMNS + [c for c in table.columns if c.startswith("best.")] + TRAILING
    return table[ordered].sort_values(["dataset", "strategy", "start_time"]).reset_index(drop=True)


def _search_frame(client: MlflowClient, experiment_id: str) -> pd.DataFrame:
    rows = []
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.run_type = '{TUNE_RUN_TYPE}'", run_view_type=ViewType.ACTIVE_ONLY
    )
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "status": run.info.status,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
        }
        row.update({f"tags.{key}": value for key, value in run.data.tags.items()})
        row.update({f"metrics.{key}": value for key, value in run.data.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def tuning_results(
    tracking_uri: str = "sqlite:///mlflow.db", experiment: str = "lstm-influence", *, latest_only: bool = True
) -> pd.DataFrame:
    """The tuning studies of ``experiment`` as a table (see :func:`tuning_table`); empty when there are none.

    Args:
        tracking_uri: the MLflow store the tuning ran against (``tracking.uri``).
        experiment: the MLflow experiment name (``tracking.experiment``).
        latest_only: one row per strategy × dataset, the most recent study.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return tuning_table(pd.DataFrame())
    return tuning_table(_search_frame(client, found.experiment_id), latest_only=latest_only)
