"""Tuning results for the analysis report: one row per strategy × dataset study, read from MLflow.

``python -m lstm_influence.tune`` leaves one parent run per study (tag ``run_type=tune``) whose tags and metrics
hold the study's summary (see :mod:`~.tuning.study`). :func:`tuning_results` reads them, every page;
:func:`tuning_table` is the pure part, over a frame shaped like ``mlflow.search_runs``'s (``run_id``, ``status``,
``start_time``, ``tags.*``, ``metrics.*``).

This module imports neither TensorFlow nor Optuna.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from lstm_influence import names, tracking
from lstm_influence.metrics import TUNE_BEST_VALUE, TUNE_DEFAULT_VALUE

BEST_PREFIX = f"tags.{names.BEST_PREFIX}"
TRIED_PREFIX = f"tags.{names.TRIED_PREFIX}"
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


def tag(name: str) -> str:
    """The column of tag ``name`` in a frame shaped like ``mlflow.search_runs``'s."""
    return f"tags.{name}"


def metric(name: str) -> str:
    """The column of metric ``name`` in a frame shaped like ``mlflow.search_runs``'s."""
    return f"metrics.{name}"


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
    if runs is None or runs.empty or tag(names.RUN_TYPE) not in runs:
        return empty
    studies = runs[runs[tag(names.RUN_TYPE)] == names.RUN_TUNE]
    if studies.empty:
        return empty
    if latest_only:
        studies = studies.sort_values("start_time").groupby([tag(names.DATASET), tag(names.STRATEGY)]).tail(1)
    table = _study_summary(studies)
    table["improvement"] = table["default_value"] - table["best_value"]
    table["relative_improvement"] = table["improvement"] / table["default_value"].where(table["default_value"] != 0)
    for name in sorted(name for name in studies.columns if name.startswith(BEST_PREFIX)):
        table["best." + name[len(BEST_PREFIX) :]] = studies[name].map(_decode)
    for name in sorted(name for name in studies.columns if name.startswith(TRIED_PREFIX)):
        table["tried." + name[len(TRIED_PREFIX) :]] = studies[name].map(_integer)
    table["tuned_label"] = _column(studies, tag(names.TUNED_LABEL))
    table["study"] = _column(studies, tag(names.OPTUNA_STUDY))
    table["parent_run_id"] = studies["run_id"]
    table["status"] = _column(studies, "status")
    table["start_time"] = _column(studies, "start_time")
    per_param = [c for c in table.columns if c.startswith(("best.", "tried."))]
    ordered = COLUMNS + per_param + TRAILING
    return table[ordered].sort_values(["dataset", "strategy", "start_time"]).reset_index(drop=True)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, or NaN where no study logged it."""
    return frame[name] if name in frame else pd.Series(np.nan, index=frame.index)


def _study_summary(studies: pd.DataFrame) -> pd.DataFrame:
    """Each study's strategy, dataset, trial counts, objective, best and default scores and sampler, typed."""
    return pd.DataFrame(
        {
            "dataset": _column(studies, tag(names.DATASET)),
            "strategy": _column(studies, tag(names.STRATEGY)),
            "budget": _column(studies, tag(names.STUDY_BUDGET)).map(_integer),
            "trials": _column(studies, tag(names.TRIALS_DONE)).map(_integer),
            "pruned": _column(studies, tag(names.TRIALS_PRUNED)).map(_integer),
            "failed": _column(studies, tag(names.TRIALS_FAILED)).map(_integer),
            "metric": _column(studies, tag(names.STUDY_OBJECTIVE)),
            "best_value": _column(studies, metric(TUNE_BEST_VALUE)).map(_number),
            "default_value": _column(studies, metric(TUNE_DEFAULT_VALUE)).map(_number),
            "best_trial": _column(studies, tag(names.BEST_TRIAL)).map(_integer),
            "best_is_default": _column(studies, tag(names.BEST_IS_DEFAULT)).map(lambda v: v == "True"),
            "sampler": _column(studies, tag(names.STUDY_SAMPLER)).fillna("unrecorded"),
            "search_trials": _column(studies, tag(names.SEARCH_TRIALS)).map(_integer),
            "searched": _column(studies, tag(names.STUDY_SEARCHED)).map(lambda v: v == "True"),
        }
    )


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
        row.update({tag(key): value for key, value in run.data.tags.items()})
        row.update({metric(key): value for key, value in run.data.metrics.items()})
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
