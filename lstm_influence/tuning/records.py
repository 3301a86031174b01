"""A study's MLflow record: its parent run and its trials' runs, found, reopened, annotated and closed.

The few MLflow calls the tracking layer has no function for yet live here, and only here, so that moving them into
:mod:`lstm_influence.tracking` is one file's change: opening a parent run that is not a training run, reopening it
on resume, renaming a run, closing it with a status, and looking an experiment up without creating it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow.entities import Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lstm_influence import tracking
from lstm_influence.tracking.names import ERROR, RUN_TRIAL, RUN_TUNE, RUN_TYPE

OPTUNA_STUDY = "optuna_study"
OPTUNA_STORAGE = "optuna_storage"
TRIAL_NUMBER = "trial_number"
TRIAL_ROLE = "trial_role"
TRIAL_STATE = "trial_state"


def find_experiment_id(client: MlflowClient, name: str) -> str | None:
    """The id of experiment ``name``, None when the store has no such (active) experiment; never creates one."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage == "deleted":
        return None
    return experiment.experiment_id


def study_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    """Every active study parent run (``run_type=tune``) of the experiment, across result pages."""
    return tracking.search_all_runs(client, experiment_id, f"tags.{RUN_TYPE} = '{RUN_TUNE}'")


def trial_runs(client: MlflowClient, experiment_id: str, study: str, number: int, status: str = "") -> list[Run]:
    """The runs of trial ``number`` of ``study`` (optionally only those with ``status``), newest first."""
    query = f"tags.{OPTUNA_STUDY} = '{study}' and tags.{TRIAL_NUMBER} = '{number}' and tags.{RUN_TYPE} = '{RUN_TRIAL}'"
    if status:
        query += f" and attributes.status = '{status}'"
    runs = tracking.search_all_runs(client, experiment_id, query)
    return sorted(runs, key=lambda run: run.info.start_time or 0, reverse=True)


def reopen_run(client: MlflowClient, run_id: str, experiment_id: str) -> bool:
    """Set an earlier parent run back to RUNNING; False when it is gone, deleted or in another experiment."""
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return False
    if run.info.lifecycle_stage != "active" or run.info.experiment_id != experiment_id:
        return False
    client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
    return True


def create_run(client: MlflowClient, experiment_id: str, name: str, tags: Mapping[str, Any]) -> str:
    """A new RUNNING run named ``name`` with ``tags``; its id."""
    run = client.create_run(experiment_id, run_name=name, tags={key: str(value) for key, value in tags.items()})
    return run.info.run_id


def rename_run(client: MlflowClient, run_id: str, name: str) -> None:
    client.update_run(run_id, name=name)


def close_run(client: MlflowClient, run_id: str, status: int, error: str | None = None) -> None:
    """End the run with ``status`` (a :class:`RunStatus`), recording ``error`` (cut to MLflow's tag limit) if given."""
    if error is not None:
        client.set_tag(run_id, ERROR, error[:5000])
    client.set_terminated(run_id, RunStatus.to_string(status))


def kill_stale_trial_runs(client: MlflowClient, experiment_id: str, study: str, number: int) -> None:
    """Close as KILLED the runs of a trial a killed process left RUNNING, marking their trial state FAIL."""
    for run in trial_runs(client, experiment_id, study, number, RunStatus.to_string(RunStatus.RUNNING)):
        client.set_tag(run.info.run_id, TRIAL_STATE, "FAIL")
        close_run(client, run.info.run_id, RunStatus.KILLED)
