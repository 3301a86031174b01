"""The tracking layer: URI parsing, paging, UI links, and SQLite stores that survive parallel first starts."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pytest
from filelock import FileLock

from lstm_influence import tracking
from lstm_influence.tracking import names, store
from lstm_influence.tracking.store import StoreError


def tables(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as connection:
        return [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def revisions(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as connection:
        return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]


@pytest.fixture
def template_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty template cache: the test sees a machine that never created a store."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(store.TEMPLATE_DIR_ENV, str(cache))
    return cache


# ---------------------------------------------------------------------------------------------------------------
# URIs and links


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", Path("mlflow.db")),
        ("sqlite:///runs/mlflow.db", Path("runs/mlflow.db")),
        ("sqlite:////data/stores/mlflow.db", Path("/data/stores/mlflow.db")),
        ("sqlite:///mlflow.db?timeout=30", Path("mlflow.db")),
        ("sqlite:////data/mlflow.db?timeout=30&check_same_thread=false", Path("/data/mlflow.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("http://127.0.0.1:5000", None),
        ("postgresql://user@host/db", None),
    ],
)
def test_sqlite_path_is_parsed_not_sliced(uri, expected):
    assert tracking.sqlite_path(uri) == expected


def test_absolute_uri_resolves_a_relative_path_and_keeps_the_query(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        tracking.absolute_uri("sqlite:///sub/mlflow.db?timeout=30") == f"sqlite:///{tmp_path}/sub/mlflow.db?timeout=30"
    )
    assert tracking.absolute_uri("sqlite:////abs/mlflow.db") == "sqlite:////abs/mlflow.db"
    assert tracking.absolute_uri("http://host:5000") == "http://host:5000"


def test_artifacts_of_a_sqlite_store_live_beside_it(tmp_path):
    location = tracking.default_artifact_location(f"sqlite:///{tmp_path}/mlflow.db?timeout=5", "my exp/1")
    assert location == (tmp_path / "mlruns" / "my_exp_1").as_uri()
    assert tracking.default_artifact_location("http://host:5000", "x") is None


def test_ui_links_point_at_the_runs_table():
    assert tracking.ui_link("sqlite:///mlflow.db", "3") == "http://127.0.0.1:5000/#/experiments/3/runs"
    assert tracking.ui_link("http://host:5000/", "3", "abc") == "http://host:5000/#/experiments/3/runs/abc"
    local = tracking.ui_hint("sqlite:///mlflow.db", "3")
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in local and local.endswith("#/experiments/3/runs")
    assert (
        tracking.ui_hint("https://mlflow.example.org", "3") == "MLflow: https://mlflow.example.org/#/experiments/3/runs"
    )


# ---------------------------------------------------------------------------------------------------------------
# a store in this process


def test_search_all_runs_reads_every_page(tmp_path, monkeypatch):
    client = tracking.make_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = tracking.get_or_create_experiment(client, "paging")
    for seed in range(5):
        client.create_run(experiment_id, tags={names.SEED: str(seed), names.RUN_TYPE: names.RUN_TRAIN})
    monkeypatch.setattr(tracking.runs, "SEARCH_PAGE", 2)  # 5 runs: three pages
    found = tracking.search_all_runs(client, experiment_id, order_by=[f"tags.{names.SEED} ASC"])
    assert [run.data.tags[names.SEED] for run in found] == ["0", "1", "2", "3", "4"]


def test_a_new_store_is_a_copy_of_the_migrated_template(tmp_path, template_cache, caplog):
    first = tmp_path / "first.db"
    tracking.make_client(f"sqlite:///{first}")
    (template,) = template_cache.glob("mlflow-*.db")
    assert revisions(first) == revisions(template) and len(revisions(first)) == 1
    caplog.set_level(logging.INFO, logger="mlflow.store.db.utils")
    second = tmp_path / "second.db"
    client = tracking.make_client(f"sqlite:///{second}")
    assert "Creating initial MLflow database tables" not in caplog.text  # copied, not migrated again
    assert set(tables(second)) == set(tables(first))
    assert client.get_experiment("0").name == "Default"  # MLflow finished its own set-up on the copy
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("CREATE TABLE _alembic_tmp_tags (key TEXT)", "_alembic_tmp_tags"),
        ("INSERT INTO alembic_version VALUES ('0a8213491aaa')", "2 rows"),
        ("DROP TABLE alembic_version", "no schema version"),
    ],
)
def test_a_half_migrated_store_is_named_with_how_to_recover(tmp_path, template_cache, damage, reason):
    healthy = tmp_path / "healthy.db"
    tracking.make_client(f"sqlite:///{healthy}")
    broken = tmp_path / "broken.db"
    broken.write_bytes(healthy.read_bytes())
    with closing(sqlite3.connect(broken)) as connection:
        connection.execute(damage)
        connection.commit()
    with pytest.raises(StoreError) as info:
        tracking.make_client(f"sqlite:///{broken}")
    message = str(info.value)
    assert "half-migrated" in message and reason in message
    assert f"delete {broken}" in message and "mlflow db upgrade" in message


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path):
    junk = tmp_path / "notes.db"
    junk.write_text("not a database, just notes " * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        tracking.make_client(f"sqlite:///{junk}")


def test_the_store_lock_times_out_with_a_message_naming_the_lock(tmp_path):
    database = tmp_path / "mlflow.db"
    with FileLock(f"{database}.lock"):  # another holder (its own file descriptor, as another process would have)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"mlflow\.db\.lock"):
            with tracking.store_lock(database, timeout=0.3):
                pass
        assert time.monotonic() - started < 5


# ---------------------------------------------------------------------------------------------------------------
# four processes, one new store


FIRST_COMMAND = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lstm_influence import tracking
    from lstm_influence.tracking import names
    import mlflow.store.tracking.sqlalchemy_store  # imported before the start line, as in a real command

    uri, go, worker = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    go.with_name(f"ready-{worker}").touch()
    while not go.exists():
        time.sleep(0.005)
    started = time.perf_counter()
    client = tracking.make_client(uri)
    opened = time.perf_counter() - started
    experiment_id = tracking.get_or_create_experiment(client, "together")
    run = client.create_run(experiment_id, run_name=f"worker-{worker}", tags={names.RUN_TYPE: names.RUN_TRAIN})
    client.log_metric(run.info.run_id, names.VAL_LOSS, float(worker))
    client.set_terminated(run.info.run_id, tracking.FINISHED)
    print(f"opened {opened:.3f}")
    """
)


def test_four_commands_started_at_once_on_a_new_store_all_succeed_and_leave_it_intact(tmp_path, template_cache):
    database = tmp_path / "fresh" / "mlflow.db"  # neither the folder nor the template cache exist yet
    uri = f"sqlite:///{database}"
    go = tmp_path / "go"
    environment = {**os.environ, store.TEMPLATE_DIR_ENV: str(template_cache)}
    started = time.monotonic()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_COMMAND, uri, str(go), str(worker)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    # Start them together once all have imported MLflow (seconds on a loaded machine), not after a guessed delay.
    while len(list(tmp_path.glob("ready-*"))) < 4 and all(worker.poll() is None for worker in workers):
        time.sleep(0.05)
    go.touch()
    results = [worker.communicate(timeout=180) for worker in workers]
    wall = time.monotonic() - started
    for worker, (_, err) in zip(workers, results):
        assert worker.returncode == 0, err[-3000:]
    print(f"4 processes: {wall:.1f} s wall; store opened in", [out.split()[-1] for out, _ in results])

    assert not [name for name in tables(database) if name.startswith(store.LEFTOVER_PREFIX)]
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert revisions(database) == [_get_latest_schema_revision()]
    client = tracking.make_client(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "together"]
    runs = tracking.search_all_runs(client, experiment.experiment_id)
    assert sorted(run.info.run_name for run in runs) == [f"worker-{n}" for n in range(4)]
    assert {run.info.status for run in runs} == {tracking.FINISHED}
