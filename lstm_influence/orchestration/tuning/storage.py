"""Where a study lives and what it is called: the Optuna storage beside the MLflow store, and the study's name.

The name hashes everything that makes two studies the same study (:func:`study_name`), so the same command finds
its study again and resumes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import optuna
from omegaconf import DictConfig

from lstm_influence import tracking
from lstm_influence.config.identity import config_hash
from lstm_influence.orchestration.tuning import sampling
from lstm_influence.orchestration.tuning.space import Param

OPTUNA_DB = "optuna.db"  # the default storage's file name, beside the MLflow SQLite store
SQLITE_BUSY_TIMEOUT_S = 60  # how long a SQLite storage connection waits for another process's write


def study_name(base: DictConfig, space: Sequence[Param], objective: str, seed: int) -> str:
    """``<strategy>-<dataset>-<hash>``: the hash covers the configuration (without tracking keys), the space, the
    objective, the sampler seed and the sampling plan, not the budget, so rerunning with more trials resumes the
    same study."""
    payload = {
        "config": config_hash(base),
        "space": [param.describe() for param in space],
        "objective": objective,
        "seed": seed,
        "plan": sampling.SAMPLING_PLAN,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{base.strategy.name}-{base.dataset.name}-{digest}"


def storage_url(tracking_uri: str, storage: str | None = None) -> str:
    """The Optuna storage: ``storage`` if given, else ``optuna.db`` beside the MLflow SQLite file (in the working
    directory when MLflow is a server)."""
    if storage:
        return storage
    database = tracking.sqlite_path(tracking_uri)
    return tracking.sqlite_uri(database.with_name(OPTUNA_DB) if database is not None else Path(OPTUNA_DB))


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage at ``url``, its tables created if the database is new.

    Optuna creates its schema when the storage is opened; two processes doing that at once on the same new SQLite
    file (parallel studies: ``-m tune=all hydra/launcher=joblib``) race, and the loser fails with "table ...
    already exists". A SQLite storage is therefore opened under :func:`lstm_influence.tracking.store_lock`, as the
    MLflow store is: the first process creates the tables, the others wait and find them. A SQLite connection
    waits up to :data:`SQLITE_BUSY_TIMEOUT_S` for another process's write.
    """
    database = tracking.sqlite_path(url)
    if database is None:
        return optuna.storages.RDBStorage(url)
    with tracking.store_lock(database):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}})


__all__ = ["OPTUNA_DB", "open_storage", "storage_url", "study_name"]
