"""A tuning study's runs in MLflow: its parent run and one run per trial.

A study's parent has tags ``run_type=tune`` and ``optuna_study`` (the Optuna study's name); each trial's run is a
child of it (``mlflow.parentRunId``) with ``run_type=trial``, ``optuna_study``, ``trial_number`` and, once Optuna has
ended the trial, ``trial_state``. A study runs in one process at a time, so a trial's run left RUNNING when the next
process starts belongs to a process that is gone.
"""

from __future__ import annotations

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from lstm_influence.names import OPTUNA_STUDY, RUN_TRIAL, RUN_TUNE, RUN_TYPE, TRIAL_NUMBER, TRIAL_STATE
from lstm_influence.tracking.runs import close_stale_runs, find_runs

STALE_TRIAL_STATE = "FAIL"  # what Optuna calls a trial whose process died; the study marks it so too


def study_parents(client: MlflowClient, experiment_id: str, study: str | None = None) -> list[Run]:
    """The study parent runs of the experiment (of one Optuna ``study`` if given), newest first."""
    return find_runs(client, experiment_id, {RUN_TYPE: RUN_TUNE, OPTUNA_STUDY: study})


def trial_runs(client: MlflowClient, experiment_id: str, study: str, number: int, *, status: str = "") -> list[Run]:
    """The runs of trial ``number`` of ``study`` (only those with ``status``, if given), newest first.

    A trial normally has one run; one that a killed process left behind and that was run again has several.
    """
    tags = {RUN_TYPE: RUN_TRIAL, OPTUNA_STUDY: study, TRIAL_NUMBER: number}
    return find_runs(client, experiment_id, tags, status=status)


def close_stale_trial_runs(client: MlflowClient, experiment_id: str, study: str, number: int) -> list[Run]:
    """Close as KILLED the runs of trial ``number`` that a killed process left RUNNING, their ``trial_state`` FAIL.

    Returns:
        The runs it closed. Call it only while no other process runs this study.
    """
    return close_stale_runs(
        client,
        experiment_id,
        {RUN_TYPE: RUN_TRIAL, OPTUNA_STUDY: study, TRIAL_NUMBER: number},
        f"its process ended without closing it; trial {number} is marked failed and does not count",
        mark={TRIAL_STATE: STALE_TRIAL_STATE},
    )
