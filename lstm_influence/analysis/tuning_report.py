"""Tuning results for the analysis report: one row per strategy × dataset study, read from MLflow.

``python -m lstm_influence.tuning`` leaves one parent run per study (tag ``run_type=tune``) whose tags and metrics
hold the study's summary (see :mod:`lstm_influence.tuning.study`). :func:`tuning_results` reads them, every page;
:func:`tuning_table` is the pure part, over a frame shaped like ``mlflow.search_runs``'s (``run_id``, ``status``,
``start_time``, ``tags.*``, ``metrics.*``).

This module imports neither TensorFlow nor Optuna.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from lstm_influence import tracking
from lstm_influence.tracking.names import RUN_TUNE, RUN_TYPE

BEST_PREFIX = "tags.best."
TRIED_PREFIX = "tags.tried."
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
    "sampler",
    "search_trials",
    "searched",
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
        ``best_trial``, ``best_is_default``; ``sampler`` (which samplers chose the search trials: ``sobol``, the
        space-filling start-up design, ``sobol+tpe`` or ``tpe``), ``search_trials`` (finished trials besides the
        default one) and ``searched`` (at least two of them: with fewer, the best values are one draw, not tuned);
        one ``best.<name>`` column per parameter (NaN where a strategy does not have it, e.g. ``best.t_max``
        outside bias_init) and one ``tried.<name>`` column, the distinct values the finished trials ran with;
        ``tuned_label`` (select the tuned configuration with ``+tuned=<label>``), ``study``, ``parent_run_id``,
        ``status``, ``start_time``. Studies run before the sampler was recorded read ``sampler`` "unrecorded".
    """
    empty = pd.DataFrame(columns=COLUMNS + TRAILING)
    if runs is None or runs.empty or f"tags.{RUN_TYPE}" not in runs:
        return empty
    studies = runs[runs[f"tags.{RUN_TYPE}"] == RUN_TUNE]
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
            "sampler": column(studies, "tags.sampler").fillna("unrecorded"),
            "search_trials": column(studies, "tags.search_trials").map(_integer),
            "searched": column(studies, "tags.searched").map(lambda v: v == "True"),
        }
    )
    table["improvement"] = table["default_value"] - table["best_value"]
    table["relative_improvement"] = table["improvement"] / table["default_value"].where(table["default_value"] != 0)
    best_columns = sorted(name for name in studies.columns if name.startswith(BEST_PREFIX))
    for name in best_columns:
        table["best." + name[len(BEST_PREFIX) :]] = studies[name].map(_decode)
    for name in sorted(name for name in studies.columns if name.startswith(TRIED_PREFIX)):
        table["tried." + name[len(TRIED_PREFIX) :]] = studies[name].map(_integer)
    table["tuned_label"] = column(studies, "tags.tuned_label")
    table["study"] = column(studies, "tags.optuna_study")
    table["parent_run_id"] = studies["run_id"]
    table["status"] = column(studies, "status")
    table["start_time"] = column(studies, "start_time")
    per_param = [c for c in table.columns if c.startswith(("best.", "tried."))]
    ordered = COLUMNS + per_param + TRAILING
    return table[ordered].sort_values(["dataset", "strategy", "start_time"]).reset_index(drop=True)


def runs_frame(runs: list[tracking.Run]) -> pd.DataFrame:
    """MLflow runs as a frame shaped like ``mlflow.search_runs``'s (``run_id``, ``status``, ``start_time``,
    ``tags.*``, ``metrics.*``)."""
    rows = []
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
    client = tracking.make_client(tracking_uri)
    experiment_id = tracking.find_experiment_id(client, experiment)
    if experiment_id is None:
        return tuning_table(pd.DataFrame())
    return tuning_table(runs_frame(tracking.study_parents(client, experiment_id)), latest_only=latest_only)
