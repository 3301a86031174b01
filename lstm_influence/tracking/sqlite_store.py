"""SQLite stores that start safely in parallel: the lock, the schema checks and the template new stores copy.

A SQLite store (``sqlite:///mlflow.db``) is created by whichever process opens it first: MLflow creates its tables
and then replays about fifty schema migrations. Two processes doing that at once on the same new file break it
("table _alembic_tmp_tags already exists"), and the file stays half-migrated. So every process opens a SQLite store
under an exclusive file lock next to it (``mlflow.db.lock``): the first one creates the schema, the others wait for
it and find a finished store. Opening an existing store under the lock costs milliseconds.

A new store is a copy of an empty store that MLflow migrated once per MLflow version, kept in the user's cache
(``~/.cache/lstm_influence/``): copying is about 1.4 s faster than replaying the migrations each time.

A store whose schema creation was interrupted is refused with :class:`StoreError`, which says how to recover,
instead of a database traceback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

SQLITE_PREFIX = "sqlite:///"
LOCK_SUFFIX = ".lock"
LOCK_TIMEOUT_S = 300.0  # longer than any schema creation; a lock held longer than this is a stuck process
TEMPLATE_DIR_ENV = "LSTM_INFLUENCE_CACHE"  # where store templates are kept; default ~/.cache/lstm_influence
LEFTOVER_PREFIX = "_alembic_tmp_"  # tables Alembic creates while rebuilding a SQLite table, dropped when done
TEMPLATE_MARK = 0x4C53544D  # SQLite user_version of a store copied from the template (an unused header field)


class StoreError(RuntimeError):
    """The tracking store cannot be used as it is (half-migrated, locked for too long); the message says why."""


def sqlite_uri(database: Path | str) -> str:
    """The ``sqlite:`` URI of a database file (relative paths stay relative)."""
    return f"{SQLITE_PREFIX}{database}"


@contextlib.contextmanager
def store_lock(database: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock beside ``database`` (``<database>.lock``), shared with every process on this machine.

    Any SQLite file whose schema its first user creates (MLflow's store, an Optuna storage) can be created under it.

    Raises:
        StoreError: another process held the lock for ``timeout`` seconds.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{database}{LOCK_SUFFIX}", timeout=timeout)
    try:
        with lock:
            yield
    except Timeout as error:
        raise StoreError(
            f"waited {timeout:.0f} s for {lock.lock_file}, held by another process setting up the store {database}; "
            "if no other command is running on this store, delete the lock file and run again"
        ) from error


def open_sqlite(database: Path, uri: str) -> MlflowClient:
    """A client for the SQLite store at ``database`` (its ``uri``), under :func:`store_lock`: created from the cached
    template when missing, checked for a half-finished schema when present.

    Raises:
        StoreError: the store's schema is half-created, or newer than this MLflow, or the file is not SQLite.
    """
    # Imported before the lock, so that waiting processes import in parallel rather than inside the lock.
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    with store_lock(database):
        try:
            if not _has_tables(database):
                _copy_template(database)
            else:
                _refuse_broken_schema(database)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{database} is not a SQLite database ({error}): give tracking.uri a new file") from error
        try:
            return MlflowClient(tracking_uri=uri)  # MLflow checks the schema and adds its default experiment
        except (MlflowException, SQLAlchemyError, sqlite3.Error) as error:
            raise StoreError(_cannot_open(database, error)) from error


# ---------------------------------------------------------------------------------------------------------------
# the schema


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _read(database: Path, query: str) -> list[str]:
    """The first column of ``query`` on ``database``, opened read-only (a read never creates or changes the file)."""
    with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as connection:
        return [row[0] for row in connection.execute(query)]


def _tables(database: Path) -> list[str]:
    return _read(database, "SELECT name FROM sqlite_master WHERE type = 'table'")


def _has_tables(database: Path) -> bool:
    return database.exists() and database.stat().st_size > 0 and bool(_tables(database))


def _revisions(database: Path) -> list[str]:
    return _read(database, "SELECT version_num FROM alembic_version")


def _user_version(database: Path) -> int:
    return int(_read(database, "PRAGMA user_version")[0])


def _migrations() -> Any | None:
    """MLflow's schema migrations (the Alembic scripts it ships in ``mlflow/store/db_migrations``), read with
    Alembic's public API; None when this MLflow does not ship them there, and the checks that need them are skipped
    (MLflow itself still refuses a schema it cannot use, and :func:`_cannot_open` explains that)."""
    try:
        import mlflow.store
        from alembic.script import ScriptDirectory

        location = Path(mlflow.store.__file__).parent / "db_migrations"
        return ScriptDirectory(str(location)) if (location / "versions").is_dir() else None
    except Exception:
        return None


def schema_head() -> str | None:
    """The schema revision this MLflow migrates a store to; None when its migrations cannot be read."""
    migrations = _migrations()
    if migrations is None:
        return None
    try:
        heads = migrations.get_heads()
    except Exception:
        return None
    return heads[0] if len(heads) == 1 else None


def _known_revisions() -> set[str] | None:
    migrations = _migrations()
    if migrations is None:
        return None
    try:
        return {revision.revision for revision in migrations.walk_revisions()}
    except Exception:
        return None


def _refuse_broken_schema(database: Path) -> None:
    """Raise :class:`StoreError` for a schema left half-created by a process that stopped while creating it, or
    written by a newer MLflow than this one."""
    tables = _tables(database)
    leftovers = sorted(name for name in tables if name.startswith(LEFTOVER_PREFIX))
    if leftovers:
        raise StoreError(_half_migrated(database, f"a migration's temporary table(s) {', '.join(leftovers)} remain"))
    if "alembic_version" not in tables:
        raise StoreError(_half_migrated(database, "it has tables but no schema version (alembic_version)"))
    revisions = _revisions(database)
    if len(revisions) != 1:
        raise StoreError(_half_migrated(database, f"alembic_version holds {len(revisions)} rows instead of 1"))
    known = _known_revisions()
    if known is not None and revisions[0] not in known:
        raise StoreError(
            f"the MLflow store {database} has schema version {revisions[0]}, which this MLflow ({_mlflow_version()}, "
            f"schema {schema_head()}) does not know: a newer MLflow wrote it; upgrade MLflow (pip install -U mlflow) "
            "or use another store (tracking.uri=...)"
        )


def _cannot_open(database: Path, error: BaseException) -> str:
    """What to tell the user when MLflow itself refuses a store that passed :func:`_refuse_broken_schema`."""
    if "out-of-date database schema" in str(error):
        return (
            f"the MLflow store {database} was written by an older MLflow; back the file up, then run "
            f"`mlflow db upgrade {sqlite_uri(database.resolve())}`"
        )
    if "database is locked" in str(error):
        return f"the MLflow store {database} stayed locked by another process: {_first_line(error)}"
    return _half_migrated(database, f"MLflow could not finish its schema ({_first_line(error)})")


def _half_migrated(database: Path, reason: str) -> str:
    uri = sqlite_uri(database.resolve())
    return (
        f"the MLflow store {database} is half-migrated: {reason}. A process stopped while creating or upgrading its "
        f"schema. To recover: if it holds no runs you need, delete {database} (and {database.parent / 'mlruns'}) "
        f"and run again; otherwise back the file up, drop any table named {LEFTOVER_PREFIX}* "
        f"(sqlite3 {database} .tables), then run `mlflow db upgrade {uri}`"
    )


def _mlflow_version() -> str:
    import mlflow

    return mlflow.__version__


# ---------------------------------------------------------------------------------------------------------------
# the template a new store is copied from


def template_path() -> Path:
    """The empty, fully migrated store this MLflow version starts new stores from."""
    chosen = os.environ.get(TEMPLATE_DIR_ENV)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(chosen) if chosen else cache / "lstm_influence"
    return root / f"mlflow-{_mlflow_version()}.db"


def is_template_copy(database: Path | str) -> bool:
    """True when ``database`` was created as a copy of the template (SQLite's ``user_version`` header carries
    :data:`TEMPLATE_MARK`), False when MLflow created its schema itself."""
    return _user_version(Path(database)) == TEMPLATE_MARK


def _copy_template(database: Path) -> None:
    """Create ``database`` as a copy of the migrated template (made once, under its own lock); MLflow's own
    schema creation runs instead when the template cannot be made (an unwritable cache, an MLflow that behaves
    differently)."""
    try:
        template = template_path()
        template.parent.mkdir(parents=True, exist_ok=True)
        with store_lock(template):
            if not _is_complete_template(template):
                _build_template(template)
    except Exception:
        # The template is only a shortcut: without it MLflow creates the schema itself, still under the store's lock.
        return
    partial = database.with_name(f".{database.name}.{os.getpid()}.partial")
    shutil.copyfile(template, partial)
    os.replace(partial, database)  # atomic: a reader never sees half a copy


def _is_complete_template(template: Path) -> bool:
    try:
        if not (_has_tables(template) and is_template_copy(template)):
            return False
        head = schema_head()
        return head is None or _revisions(template) == [head]
    except sqlite3.Error:
        return False


def _build_template(template: Path) -> None:
    """Let MLflow create a store through its public client on an empty file, keep the schema (and the rows its
    migrations seed) without the Default experiment, which MLflow recreates in each copy with that copy's own
    artifact location, mark it, then move it in place."""
    handle, scratch = tempfile.mkstemp(prefix=".template-", suffix=".db", dir=template.parent)
    os.close(handle)
    Path(scratch).unlink()  # MLflow creates the schema only in a file that has no tables
    try:
        MlflowClient(tracking_uri=sqlite_uri(scratch)).search_experiments(max_results=1)
        with closing(sqlite3.connect(scratch)) as db, db:
            if _read(Path(scratch), "SELECT COUNT(*) FROM runs") != [0]:
                raise StoreError(f"the new store {scratch} already holds runs")
            db.execute("DELETE FROM experiments WHERE experiment_id = 0")
            db.execute(f"PRAGMA user_version = {TEMPLATE_MARK}")
        os.replace(scratch, template)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------------------
# shipping a store
