"""All MLflow glue in one place; no other module of the project talks to MLflow directly.

The package, one concept a module:

* :mod:`~lstm_influence.tracking.names`: the names runs are recorded under (tags, run types, metrics, strategies);
* :mod:`~lstm_influence.tracking.store`: tracking URIs, a client per store (SQLite stores created under a file
  lock, so parallel first starts are safe), experiments;
* :mod:`~lstm_influence.tracking.runs`: opening, logging to and closing a training run; finding runs (paged);
* :mod:`~lstm_influence.tracking.sweeps`: a sweep's parent and children, stale-run closing, supersede;
* :mod:`~lstm_influence.tracking.links`: MLflow UI links and the lines that tell the user where to look.

Everything public is importable from here, e.g. ``from lstm_influence import tracking; tracking.make_client(uri)``.
"""

from __future__ import annotations

from lstm_influence.tracking.links import announce, ui_hint, ui_link
from lstm_influence.tracking.names import CONFIG_HASH, PARENT_RUN_ID, RUN_TYPE, SWEEP_ID
from lstm_influence.tracking.names import ERROR as ERROR_TAG
from lstm_influence.tracking.runs import (
    FAILED,
    FINISHED,
    KILLED,
    RUNNING,
    RunLogger,
    arm_name,
    finished_runs_by_hash,
    run_tags,
    search_all_runs,
    training_run,
)
from lstm_influence.tracking.store import (
    SQLITE_PREFIX,
    StoreError,
    absolute_uri,
    default_artifact_location,
    find_experiment,
    get_or_create_experiment,
    is_server,
    make_client,
    sqlite_path,
    sqlite_uri,
    store_lock,
)
from lstm_influence.tracking.sweeps import (
    close_stale_children,
    find_sweep_parent,
    kill_run,
    supersede,
    sweep_children,
    sweep_parents,
    sweep_runs,
)

__all__ = [
    "CONFIG_HASH",
    "ERROR_TAG",
    "FAILED",
    "FINISHED",
    "KILLED",
    "PARENT_RUN_ID",
    "RUNNING",
    "RUN_TYPE",
    "SQLITE_PREFIX",
    "SWEEP_ID",
    "RunLogger",
    "StoreError",
    "absolute_uri",
    "announce",
    "arm_name",
    "close_stale_children",
    "default_artifact_location",
    "find_experiment",
    "find_sweep_parent",
    "finished_runs_by_hash",
    "get_or_create_experiment",
    "is_server",
    "kill_run",
    "make_client",
    "run_tags",
    "search_all_runs",
    "sqlite_path",
    "sqlite_uri",
    "store_lock",
    "supersede",
    "sweep_children",
    "sweep_parents",
    "sweep_runs",
    "training_run",
    "ui_hint",
    "ui_link",
]
