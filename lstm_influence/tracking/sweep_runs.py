"""A sweep's runs in MLflow: its parent run, its children, and the repairs a resume makes.

A sweep's parent has tags ``run_type=sweep`` and ``sweep_id``; each job's run is a child (``mlflow.parentRunId``,
``sweep_id``, ``sweep_attempt``: the attempt that ran it).
"""

from __future__ import annotations

import logging

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from lstm_influence.names import (
    CONFIG_HASH,
    PARENT_RUN_ID,
    RUN_SWEEP,
    RUN_TYPE,
    SUPERSEDED_BY,
    SWEEP_ATTEMPT,
    SWEEP_ID,
)
from lstm_influence.tracking.runs import FINISHED, KILLED, close_run, close_stale_runs, find_runs

log = logging.getLogger(__name__)


def sweep_parents(client: MlflowClient, experiment_id: str, sweep_id: str | None = None) -> list[Run]:
    """The sweep parent runs of the experiment (of one ``sweep_id`` if given), newest first."""
    return find_runs(client, experiment_id, {RUN_TYPE: RUN_SWEEP, SWEEP_ID: sweep_id})


def find_sweep_parent(client: MlflowClient, experiment_id: str, sweep_id: str) -> Run | None:
    """The parent run of sweep ``sweep_id`` (the newest where there are several), None when it has none yet."""
    parents = sweep_parents(client, experiment_id, sweep_id)
    return parents[0] if parents else None


def sweep_children(
    client: MlflowClient, experiment_id: str, parent_run_id: str, *, attempt: int | None = None, status: str = ""
) -> list[Run]:
    """The child runs of a sweep's parent, newest first.

    Args:
        attempt: only the runs this attempt started; None: every attempt's.
        status: only runs with this status (``RUNNING``, ``FINISHED``, ...); empty: any.
    """
    return find_runs(client, experiment_id, {PARENT_RUN_ID: parent_run_id, SWEEP_ATTEMPT: attempt}, status=status)


def sweep_runs(client: MlflowClient, experiment_id: str, parent: Run) -> list[Run]:
    """Every run of the parent's sweep except the parent: its children, and runs tagged with its ``sweep_id``."""
    selected = {run.info.run_id: run for run in sweep_children(client, experiment_id, parent.info.run_id)}
    sweep_id = parent.data.tags.get(SWEEP_ID)
    if sweep_id:
        for run in find_runs(client, experiment_id, {SWEEP_ID: sweep_id}):
            selected.setdefault(run.info.run_id, run)
    selected.pop(parent.info.run_id, None)
    return list(selected.values())


def close_stale_children(client: MlflowClient, experiment_id: str, parent_run_id: str, attempt: int) -> list[Run]:
    """Mark KILLED the children an earlier attempt left RUNNING: their process is gone (killed, machine down).

    Returns:
        The runs it closed. Call it only while no other process runs this sweep.
    """
    reason = f"its process ended without closing it; found by attempt {attempt}"
    stale = close_stale_runs(client, experiment_id, {PARENT_RUN_ID: parent_run_id}, reason)
    for run in stale:
        log.info("run %s (%s) left RUNNING by an earlier attempt: marked KILLED", run.info.run_id, run.info.run_name)
    return stale


def kill_run(client: MlflowClient, run_id: str, reason: str) -> None:
    """End a run KILLED, with ``reason`` in its ``error`` tag (a job its sweep stopped)."""
    close_run(client, run_id, KILLED, reason)


def supersede(client: MlflowClient, experiment_id: str, digest: str, keep_run_id: str) -> list[str]:
    """Soft-delete every other FINISHED run of config ``digest``, tagged ``superseded_by`` the run kept.

    After a forced re-run the config keeps exactly one FINISHED run; ``mlflow runs restore --run-id ID`` undoes it.

    Returns:
        The ids of the runs deleted.
    """
    deleted = []
    for run in find_runs(client, experiment_id, {CONFIG_HASH: digest}, status=FINISHED):
        if run.info.run_id != keep_run_id:
            client.set_tag(run.info.run_id, SUPERSEDED_BY, keep_run_id)
            client.delete_run(run.info.run_id)
            deleted.append(run.info.run_id)
            log.info("run %s superseded by %s, deleted (mlflow runs restore undoes it)", run.info.run_id, keep_run_id)
    return deleted
