"""All MLflow glue in one place; no other module of the project talks to MLflow directly.

The package, one concept a module:

* :mod:`~lstm_influence.names`: the names runs are recorded under (tags, run types, the control arm), and
  :mod:`~lstm_influence.metrics` the metrics they log;
* :mod:`~lstm_influence.tracking.store`: tracking URIs, a client per store, experiments, shippable stores;
* :mod:`~lstm_influence.tracking.sqlite_store`: SQLite stores created under a file lock from a cached template, so
  parallel first starts are safe;
* :mod:`~lstm_influence.tracking.runs`: creating, reopening, renaming and closing runs (a training run in one
  ``with``), logging to them, finding runs by tags (paged), stale-run closing, metric histories, artifact files;
* :mod:`~lstm_influence.tracking.sweep_runs`: a sweep's parent and children, closing its stale children, supersede;
* :mod:`~lstm_influence.tracking.studies`: a tuning study's parent and its trials' runs, closing stale trial runs;
* :mod:`~lstm_influence.tracking.links`: MLflow UI links and the lines that tell the user where to look;
* :mod:`~lstm_influence.tracking.provenance`: where a run came from (commit, versions, backend, machine, data).

Everything public is importable from here, e.g. ``from lstm_influence import tracking; tracking.make_client(uri)``;
``tracking.Run`` is MLflow's run entity, for type hints in modules that read runs.
"""

from __future__ import annotations

from lstm_influence.names import CONFIG_HASH, PARENT_RUN_ID, RUN_TYPE, SWEEP_ID
from lstm_influence.names import ERROR as ERROR_TAG
from lstm_influence.tracking.links import announce, ui_hint, ui_link
from lstm_influence.tracking.runs import (
    ENDED,
    FAILED,
    FINISHED,
    KILLED,
    RUNNING,
    Run,
    RunLogger,
    arm_name,
    close_run,
    close_stale_runs,
    create_run,
    end_fluent_runs,
    find_runs,
    finished_runs_by_hash,
    log_files,
    metric_history,
    rename_run,
    reopen_run,
    run_tags,
    search_all_runs,
    tag_filter,
    training_run,
)
from lstm_influence.tracking.sqlite_store import SQLITE_PREFIX, StoreError, sqlite_uri, store_lock
from lstm_influence.tracking.store import (
    absolute_uri,
    default_artifact_location,
    experiment_names,
    find_experiment,
    find_experiment_id,
    get_or_create_experiment,
    is_server,
    make_client,
    relative_artifact_locations,
    sqlite_path,
)
from lstm_influence.tracking.studies import close_stale_trial_runs, study_parents, trial_runs
from lstm_influence.tracking.sweep_runs import (
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
    "ENDED",
    "ERROR_TAG",
    "FAILED",
    "FINISHED",
    "KILLED",
    "PARENT_RUN_ID",
    "RUNNING",
    "RUN_TYPE",
    "SQLITE_PREFIX",
    "SWEEP_ID",
    "Run",
    "RunLogger",
    "StoreError",
    "absolute_uri",
    "announce",
    "arm_name",
    "close_run",
    "close_stale_children",
    "close_stale_runs",
    "close_stale_trial_runs",
    "create_run",
    "default_artifact_location",
    "end_fluent_runs",
    "experiment_names",
    "find_experiment",
    "find_experiment_id",
    "find_runs",
    "find_sweep_parent",
    "finished_runs_by_hash",
    "get_or_create_experiment",
    "is_server",
    "kill_run",
    "log_files",
    "make_client",
    "metric_history",
    "relative_artifact_locations",
    "rename_run",
    "reopen_run",
    "run_tags",
    "search_all_runs",
    "sqlite_path",
    "sqlite_uri",
    "store_lock",
    "study_parents",
    "supersede",
    "sweep_children",
    "sweep_parents",
    "sweep_runs",
    "tag_filter",
    "training_run",
    "trial_runs",
    "ui_hint",
    "ui_link",
]
