"""The MLflow store: tracking URIs, a client per store, experiments, and shippable stores.

SQLite stores are opened through :mod:`~lstm_influence.tracking.sqlite_store`, which creates them safely when several
processes start at once; this module opens each one once per process.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

from mlflow.entities import Experiment, LifecycleStage
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lstm_influence.tracking.sqlite_store import StoreError, open_sqlite, store_lock

_opened: set[str] = set()  # stores this process has already opened under the lock


# ---------------------------------------------------------------------------------------------------------------
# URIs


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI, as written (relative or absolute); None for other stores.

    Parsed with SQLAlchemy's URL parser, so a query (``sqlite:///mlflow.db?timeout=30``) is not part of the path.
    In-memory databases (``sqlite://``, ``sqlite:///:memory:``) have no file: None.
    """
    if not uri.startswith("sqlite:"):
        return None
    try:
        database = make_url(uri).database
    except ArgumentError:
        return None
    if not database or database == ":memory:":
        return None
    return Path(database)


def absolute_uri(uri: str, base: str | Path | None = None) -> str:
    """``uri`` with a relative SQLite path made absolute (query kept), so every process writes to the same file.

    Args:
        base: the folder a relative path is relative to; None: the working directory.
    """
    path = sqlite_path(uri)
    if path is None or path.is_absolute():
        return uri
    path = (Path(base) / path) if base is not None else path
    return make_url(uri).set(database=str(path.resolve())).render_as_string(hide_password=False)


def is_server(uri: str) -> bool:
    """True for a tracking server (``http://``, ``https://``), whose address is also its UI's."""
    return uri.startswith(("http://", "https://"))


def default_artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store live beside the database file, not in whatever folder the process runs in.

    MLflow's own default is ``./mlruns`` relative to the working directory, which scatters artifacts when the same
    store is written from several folders (tests, sweeps run elsewhere). None for other stores: a server decides.
    """
    path = sqlite_path(uri)
    if path is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment).strip("_") or "experiment"
    return (path.resolve().parent / "mlruns" / slug).as_uri()


# ---------------------------------------------------------------------------------------------------------------
# opening a store


def make_client(uri: str) -> MlflowClient:
    """A client for ``uri`` (``sqlite:///mlflow.db``, ``http://host:port``, ...), its store ready to use.

    A SQLite store is opened under :func:`store_lock` the first time in this process: created (from the cached
    template) when missing, checked for a half-finished schema when present.

    Raises:
        StoreError: the SQLite store's schema is half-created, or newer than this MLflow.
    """
    database = sqlite_path(uri)
    if database is None or uri in _opened:
        return MlflowClient(tracking_uri=uri)
    client = open_sqlite(database, uri)
    _opened.add(uri)
    return client


def find_experiment(client: MlflowClient, name: str) -> Experiment | None:
    """Experiment ``name`` of the client's store (a deleted one too), None when it does not exist; never creates one."""
    return client.get_experiment_by_name(name)


def find_experiment_id(client: MlflowClient, name: str) -> str | None:
    """The id of experiment ``name``, None when the store has no such experiment or it is deleted; never creates one."""
    experiment = find_experiment(client, name)
    if experiment is None or experiment.lifecycle_stage == LifecycleStage.DELETED:
        return None
    return experiment.experiment_id


def experiment_names(client: MlflowClient) -> list[str]:
    """The names of the store's active experiments, sorted (for messages that list the valid choices)."""
    names: list[str] = []
    token = None
    while True:
        page = client.search_experiments(page_token=token)
        names += [experiment.name for experiment in page]
        token = page.token
        if not token:
            return sorted(names)


def get_or_create_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if missing; safe when several processes race to create it.

    Raises:
        MlflowException: the experiment exists but is deleted.
    """
    experiment = find_experiment(client, name)
    if experiment is not None:
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            raise MlflowException(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
                "or choose another tracking.experiment"
            )
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=default_artifact_location(client.tracking_uri, name))
    except MlflowException:
        # Another process created it between our lookup and our create: MLflow does not create experiments atomically.
        experiment = find_experiment(client, name)
        if experiment is None:
            raise
        return experiment.experiment_id


def relative_artifact_locations(database: Path | str, root: Path | str) -> int:
    """Rewrite a SQLite store's artifact locations under ``root`` as paths relative to ``root``, so the store and its
    artifacts can move together (say, committed to a repository and opened from a fresh clone).

    MLflow records every artifact location as an absolute ``file://`` URI when it is created. After this rewrite,
    ``mlflow ui --backend-store-uri sqlite:///<database relative to root>`` started in ``root`` finds every artifact
    (MLflow resolves a scheme-less location against its working directory); runs added later still record absolute
    URIs, so run this again before shipping. Locations outside ``root`` (another store's, a server's) are kept.

    Args:
        database: the store's SQLite file.
        root: the folder the store will be opened from (a repository root).

    Returns:
        The number of locations rewritten (experiments and runs).
    """
    database, root = Path(database), Path(root).resolve()
    if not database.is_file():
        raise StoreError(f"no SQLite store at {database}")
    prefixes = [root.as_uri() + "/", str(root) + "/"]

    def relative(location: str | None) -> str | None:
        for prefix in prefixes:
            if location and location.startswith(prefix):
                return location[len(prefix) :]
        return None

    changed = 0
    with store_lock(database), closing(sqlite3.connect(database)) as db, db:
        for table, key, column in (
            ("experiments", "experiment_id", "artifact_location"),
            ("runs", "run_uuid", "artifact_uri"),
        ):
            for row_id, location in db.execute(f"SELECT {key}, {column} FROM {table}").fetchall():
                new = relative(location)
                if new is not None:
                    db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (new, row_id))
                    changed += 1
    return changed
