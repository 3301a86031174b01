"""The tracking layer: URI parsing, paging, UI links, and SQLite stores that survive parallel first starts."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pytest
from filelock import FileLock

from lstm_influence import names, tracking
from lstm_influence.metrics import TRAIN_LOSS, VAL_LOSS
from lstm_influence.tracking import sqlite_store, store
from lstm_influence.tracking.sqlite_store import StoreError
from tests.helpers import experiment_script, start_together, store_uri


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
    monkeypatch.setenv(sqlite_store.TEMPLATE_DIR_ENV, str(cache))
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


def test_a_shipped_store_finds_its_artifacts_from_a_moved_copy(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    uri = f"sqlite:///{repo}/results/study/mlflow.db"
    client = tracking.make_client(uri)
    experiment_id = tracking.get_or_create_experiment(client, "study")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_text(run_id, "hello", "notes/a.txt")
    publish = experiment_script("publish_store")
    assert publish.main([str(repo / "results/study/mlflow.db"), "--root", str(repo)]) == 0
    with closing(sqlite3.connect(repo / "results/study/mlflow.db")) as db:
        (location,) = db.execute("SELECT artifact_uri FROM runs").fetchone()
        experiment_locations = [row[0] for row in db.execute("SELECT artifact_location FROM experiments")]
    assert location == f"results/study/mlruns/study/{run_id}/artifacts"
    assert "results/study/mlruns/study" in experiment_locations
    # a clone elsewhere, opened from its root as the README says: the artifact is found there, not at the old path
    clone = tmp_path / "clone"
    shutil.copytree(repo, clone)
    shutil.rmtree(repo)
    monkeypatch.chdir(clone)
    moved = tracking.make_client("sqlite:///results/study/mlflow.db")
    assert [f.path for f in moved.list_artifacts(run_id, "notes")] == ["notes/a.txt"]
    assert Path(moved.download_artifacts(run_id, "notes/a.txt", str(tmp_path))).read_text() == "hello"
    assert tracking.relative_artifact_locations(clone / "results/study/mlflow.db", clone) == 0  # nothing left
    assert publish.main([str(tmp_path / "missing.db")]) == 2


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
    client = tracking.make_client(store_uri(tmp_path))
    experiment_id = tracking.get_or_create_experiment(client, "paging")
    for seed in range(5):
        client.create_run(experiment_id, tags={names.SEED: str(seed), names.RUN_TYPE: names.RUN_TRAIN})
    monkeypatch.setattr(tracking.runs, "SEARCH_PAGE", 2)  # 5 runs: three pages
    found = tracking.search_all_runs(client, experiment_id, order_by=[f"tags.{names.SEED} ASC"])
    assert [run.data.tags[names.SEED] for run in found] == ["0", "1", "2", "3", "4"]


def test_a_new_store_is_a_copy_of_the_migrated_template(tmp_path, template_cache):
    first = tmp_path / "first.db"
    tracking.make_client(f"sqlite:///{first}")
    (template,) = template_cache.glob("mlflow-*.db")
    assert sqlite_store.is_template_copy(template) and sqlite_store.is_template_copy(first)
    assert revisions(first) == revisions(template) == [sqlite_store.schema_head()]
    built = template.stat().st_mtime_ns
    second = tmp_path / "second.db"
    client = tracking.make_client(f"sqlite:///{second}")
    assert sqlite_store.is_template_copy(second)  # copied: a schema MLflow created itself has user_version 0
    assert template.stat().st_mtime_ns == built  # the template is made once per MLflow version, then reused
    assert set(tables(second)) == set(tables(first))
    default = client.get_experiment("0")  # MLflow finished its own set-up on the copy, not in the template's folder
    assert default.name == "Default" and str(template_cache) not in default.artifact_location
    assert not list(tmp_path.glob("*.partial")) and not list(template_cache.glob(".template-*"))


def test_without_a_template_mlflow_creates_the_schema_itself(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv(sqlite_store.TEMPLATE_DIR_ENV, str(blocker / "cache"))
    database = tmp_path / "fallback.db"
    client = tracking.make_client(f"sqlite:///{database}")
    assert not sqlite_store.is_template_copy(database)  # the public path: MLflow's own schema creation
    assert revisions(database) == [sqlite_store.schema_head()]
    experiment_id = tracking.get_or_create_experiment(client, "fallback")
    run_id = tracking.create_run(client, experiment_id, "r", {})
    assert client.get_run(run_id).info.run_name == "r"


def test_without_readable_migrations_the_store_still_opens_and_skips_the_version_check(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "_migrations", lambda: None)  # an MLflow that lays out its migrations differently
    monkeypatch.setenv(sqlite_store.TEMPLATE_DIR_ENV, str(tmp_path / "cache"))
    assert sqlite_store.schema_head() is None
    database = tmp_path / "store.db"
    tracking.make_client(f"sqlite:///{database}")
    assert sqlite_store.is_template_copy(database) and len(revisions(database)) == 1
    store._opened.clear()
    tracking.make_client(f"sqlite:///{database}")  # reopened: the schema checks that need no migrations still run


def test_a_store_from_a_newer_mlflow_is_refused_with_what_to_do(tmp_path, template_cache):
    database = tmp_path / "newer.db"
    tracking.make_client(f"sqlite:///{database}")
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
        connection.commit()
    store._opened.clear()
    with pytest.raises(StoreError, match="newer MLflow wrote it"):
        tracking.make_client(f"sqlite:///{database}")


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
# runs: finding by tags, a run's life, stale runs, studies, histories, artifacts


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory):
    """One store for the run tests (each test makes its own experiment)."""
    return tracking.make_client(store_uri(tmp_path_factory.mktemp("runs")))


@pytest.fixture
def experiment(shared_client, request) -> str:
    return tracking.get_or_create_experiment(shared_client, request.node.name)


def run_at(client, experiment_id: str, start_time: int, **tags) -> str:
    """A RUNNING run started at ``start_time`` (ms) with ``tags``: its id."""
    run = client.create_run(experiment_id, start_time=start_time, tags={k: str(v) for k, v in tags.items()})
    return run.info.run_id


def test_a_tag_filter_quotes_keys_and_states_the_status():
    query = tracking.tag_filter({names.PARENT_RUN_ID: "p1", names.TRIAL_NUMBER: 3}, tracking.RUNNING)
    assert query == "tags.`mlflow.parentRunId` = 'p1' and tags.`trial_number` = '3' and attributes.status = 'RUNNING'"
    assert tracking.tag_filter({}) == ""
    with pytest.raises(ValueError, match="it's"):
        tracking.tag_filter({names.SWEEP_ID: "it's"})


def test_runs_are_found_by_tags_and_status_newest_first_without_deleted_ones(shared_client, experiment):
    client = shared_client
    old = run_at(client, experiment, 1_000, **{names.PARENT_RUN_ID: "p", names.SWEEP_ATTEMPT: 1})
    new = run_at(client, experiment, 3_000, **{names.PARENT_RUN_ID: "p", names.SWEEP_ATTEMPT: 2})
    middle = run_at(client, experiment, 2_000, **{names.PARENT_RUN_ID: "p", names.SWEEP_ATTEMPT: 1})
    run_at(client, experiment, 4_000, **{names.PARENT_RUN_ID: "other"})
    deleted = run_at(client, experiment, 5_000, **{names.PARENT_RUN_ID: "p"})
    client.delete_run(deleted)
    client.set_terminated(middle, tracking.FINISHED)

    def ids(runs):
        return [run.info.run_id for run in runs]

    assert ids(tracking.find_runs(client, experiment, {names.PARENT_RUN_ID: "p"})) == [new, middle, old]
    assert ids(tracking.find_runs(client, experiment, {names.PARENT_RUN_ID: "p", names.SWEEP_ATTEMPT: None})) == [
        new,
        middle,
        old,
    ]
    assert ids(tracking.sweep_children(client, experiment, "p", attempt=1)) == [middle, old]
    assert ids(tracking.sweep_children(client, experiment, "p", status=tracking.RUNNING)) == [new, old]


def test_a_run_is_created_renamed_closed_with_its_error_and_reopened(shared_client, experiment):
    client = shared_client
    run_id = tracking.create_run(client, experiment, "tune-a-b", {names.RUN_TYPE: names.RUN_TUNE, names.SEED: 3})
    run = client.get_run(run_id)
    assert (run.info.run_name, run.info.status) == ("tune-a-b", tracking.RUNNING)
    assert run.data.tags[names.SEED] == "3"
    tracking.rename_run(client, run_id, "renamed")
    tracking.close_run(client, run_id, tracking.FAILED, "RuntimeError: " + "x" * 9000)
    run = client.get_run(run_id)
    assert (run.info.run_name, run.info.status) == ("renamed", tracking.FAILED)
    assert len(run.data.tags[names.ERROR]) == tracking.runs.ERROR_LENGTH
    assert tracking.reopen_run(client, run_id, experiment)
    assert client.get_run(run_id).info.status == tracking.RUNNING
    tracking.close_run(client, run_id, tracking.FINISHED)  # a resumed run that ends well keeps no old error
    run = client.get_run(run_id)
    assert run.info.status == tracking.FINISHED and names.ERROR not in run.data.tags
    with pytest.raises(ValueError, match=r"'RUNNING', expected one of FINISHED, FAILED, KILLED"):
        tracking.close_run(client, run_id, tracking.RUNNING)


def test_a_run_that_is_gone_deleted_or_elsewhere_is_not_reopened(shared_client, experiment):
    client = shared_client
    elsewhere = tracking.get_or_create_experiment(client, "reopen-elsewhere")
    other = tracking.create_run(client, elsewhere, "other", {})
    tracking.close_run(client, other, tracking.KILLED)
    deleted = tracking.create_run(client, experiment, "deleted", {})
    tracking.close_run(client, deleted, tracking.KILLED)
    client.delete_run(deleted)
    assert not tracking.reopen_run(client, "0" * 32, experiment)
    assert not tracking.reopen_run(client, deleted, experiment)
    assert not tracking.reopen_run(client, other, experiment)
    assert client.get_run(other).info.status == tracking.KILLED


def test_stale_sweep_children_are_killed_with_the_attempt_that_found_them(shared_client, experiment):
    client = shared_client
    stale = run_at(client, experiment, 1_000, **{names.PARENT_RUN_ID: "p"})
    done = run_at(client, experiment, 2_000, **{names.PARENT_RUN_ID: "p"})
    client.set_terminated(done, tracking.FINISHED)
    elsewhere = run_at(client, experiment, 3_000, **{names.PARENT_RUN_ID: "q"})
    closed = tracking.close_stale_children(client, experiment, "p", attempt=2)
    assert [run.info.run_id for run in closed] == [stale]
    run = client.get_run(stale)
    assert run.info.status == tracking.KILLED and "found by attempt 2" in run.data.tags[names.ERROR]
    assert client.get_run(done).info.status == tracking.FINISHED
    assert client.get_run(elsewhere).info.status == tracking.RUNNING


def test_a_study_finds_its_parents_and_trials_and_closes_a_dead_trial_as_failed(shared_client, experiment):
    client = shared_client
    parent = run_at(client, experiment, 1_000, **{names.RUN_TYPE: names.RUN_TUNE, names.OPTUNA_STUDY: "s"})
    other_parent = run_at(client, experiment, 2_000, **{names.RUN_TYPE: names.RUN_TUNE, names.OPTUNA_STUDY: "t"})
    trial = {names.RUN_TYPE: names.RUN_TRIAL, names.OPTUNA_STUDY: "s", names.TRIAL_NUMBER: 4}
    first = run_at(client, experiment, 3_000, **trial)
    client.set_terminated(first, tracking.FAILED)
    dead = run_at(client, experiment, 4_000, **trial)
    other_trial = run_at(client, experiment, 5_000, **{**trial, names.TRIAL_NUMBER: 5})
    assert [run.info.run_id for run in tracking.study_parents(client, experiment)] == [other_parent, parent]
    assert [run.info.run_id for run in tracking.study_parents(client, experiment, "s")] == [parent]
    assert [run.info.run_id for run in tracking.trial_runs(client, experiment, "s", 4)] == [dead, first]
    closed = tracking.close_stale_trial_runs(client, experiment, "s", 4)
    assert [run.info.run_id for run in closed] == [dead]
    run = client.get_run(dead)
    assert run.info.status == tracking.KILLED and run.data.tags[names.TRIAL_STATE] == "FAIL"
    assert "trial 4" in run.data.tags[names.ERROR]
    assert client.get_run(first).info.status == tracking.FAILED  # an ended run is left as it ended
    assert client.get_run(other_trial).info.status == tracking.RUNNING
    assert tracking.trial_runs(client, experiment, "s", 4, status=tracking.RUNNING) == []


def test_a_sweep_holds_its_children_and_the_runs_tagged_with_its_id_but_not_its_parent(shared_client, experiment):
    client = shared_client
    parent_id = tracking.create_run(client, experiment, "sweep", {names.RUN_TYPE: names.RUN_SWEEP, names.SWEEP_ID: "w"})
    child = run_at(client, experiment, 1_000, **{names.PARENT_RUN_ID: parent_id})
    tagged = run_at(client, experiment, 2_000, **{names.SWEEP_ID: "w"})
    both = run_at(client, experiment, 3_000, **{names.PARENT_RUN_ID: parent_id, names.SWEEP_ID: "w"})
    run_at(client, experiment, 4_000, **{names.SWEEP_ID: "another"})
    parent = tracking.find_sweep_parent(client, experiment, "w")
    assert parent.info.run_id == parent_id
    assert sorted(run.info.run_id for run in tracking.sweep_runs(client, experiment, parent)) == sorted(
        [child, tagged, both]
    )


def test_experiments_are_looked_up_without_creating_them(shared_client):
    client = shared_client
    assert tracking.find_experiment_id(client, "never-made") is None
    assert tracking.find_experiment(client, "never-made") is None
    gone = tracking.get_or_create_experiment(client, "lookup-deleted")
    kept = tracking.get_or_create_experiment(client, "lookup-kept")
    client.delete_experiment(gone)
    assert tracking.find_experiment_id(client, "lookup-kept") == kept
    assert tracking.find_experiment_id(client, "lookup-deleted") is None
    assert tracking.find_experiment(client, "lookup-deleted").lifecycle_stage == "deleted"
    listed = tracking.experiment_names(client)
    assert "lookup-kept" in listed and "lookup-deleted" not in listed and "never-made" not in listed
    assert listed == sorted(listed)


def test_a_metric_history_is_its_steps_and_values(shared_client, experiment):
    client = shared_client
    run_id = tracking.create_run(client, experiment, "history", {})
    for step, value in [(1, 0.5), (2, 0.25), (3, float("nan"))]:
        client.log_metric(run_id, VAL_LOSS, value, step=step)
    history = tracking.metric_history(client, run_id, VAL_LOSS)
    assert history[:2] == [(1, 0.5), (2, 0.25)] and history[2][0] == 3 and history[2][1] != history[2][1]
    assert tracking.metric_history(client, run_id, TRAIN_LOSS) == []


def test_files_are_logged_at_their_paths_below_the_root(shared_client, experiment, tmp_path):
    client = shared_client
    run_id = tracking.create_run(client, experiment, "files", {})
    (tmp_path / "figures").mkdir()
    report, figure = tmp_path / "report.md", tmp_path / "figures" / "curve.svg"
    report.write_text("# report")
    figure.write_text("<svg/>")
    tracking.log_files(client, run_id, [report, figure], root=tmp_path, artifact_path="analysis")
    assert [a.path for a in client.list_artifacts(run_id, "analysis")] == ["analysis/figures", "analysis/report.md"]
    assert [a.path for a in client.list_artifacts(run_id, "analysis/figures")] == ["analysis/figures/curve.svg"]
    outside = tmp_path.parent / "outside.md"
    outside.write_text("x")
    with pytest.raises(ValueError, match=r"outside\.md"):
        tracking.log_files(client, run_id, [outside], root=tmp_path, artifact_path="analysis")


# ---------------------------------------------------------------------------------------------------------------
# four processes, one new store


FIRST_COMMAND = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lstm_influence import tracking
    from lstm_influence import names
    from lstm_influence.metrics import VAL_LOSS

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
    client.log_metric(run.info.run_id, VAL_LOSS, float(worker))
    client.set_terminated(run.info.run_id, tracking.FINISHED)
    print(f"opened {opened:.3f}")
    """
)


@pytest.mark.parametrize("template", [True, False], ids=["from-template", "mlflow-migrates"])
def test_four_commands_started_at_once_on_a_new_store_all_succeed_and_leave_it_intact(
    tmp_path, template_cache, template
):
    database = tmp_path / "fresh" / "mlflow.db"  # neither the folder nor the template cache exist yet
    uri = tracking.sqlite_uri(database)
    cache = template_cache
    if not template:  # a cache that cannot be created forces MLflow's own schema creation, under the same lock
        (tmp_path / "blocker").write_text("a file where the cache folder would go")
        cache = tmp_path / "blocker" / "cache"
    started = time.monotonic()
    # Started together once all have imported MLflow (seconds on a loaded machine), not after a guessed delay.
    results = start_together(FIRST_COMMAND, uri, tmp_path, 4, env={sqlite_store.TEMPLATE_DIR_ENV: str(cache)})
    wall = time.monotonic() - started
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    print(f"4 processes: {wall:.1f} s wall; store opened in", [result.stdout.split()[-1] for result in results])

    assert not [name for name in tables(database) if name.startswith(sqlite_store.LEFTOVER_PREFIX)]
    assert revisions(database) == [sqlite_store.schema_head()]
    assert sqlite_store.is_template_copy(database) == template  # each path really ran
    client = tracking.make_client(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "together"]
    runs = tracking.search_all_runs(client, experiment.experiment_id)
    assert sorted(run.info.run_name for run in runs) == [f"worker-{n}" for n in range(4)]
    assert {run.info.status for run in runs} == {tracking.FINISHED}


def test_logged_metrics_keep_nan_and_clamp_infinities_to_the_largest_float(shared_client, experiment):
    import math

    import numpy as np

    from lstm_influence.tracking.runs import _clamp_infinite

    assert math.isnan(_clamp_infinite(float("nan")))
    assert _clamp_infinite(float("inf")) == sys.float_info.max
    assert _clamp_infinite(-np.inf) == -sys.float_info.max
    assert _clamp_infinite(np.float32(0.25)) == 0.25 and type(_clamp_infinite(np.float32(0.25))) is float
    client = shared_client
    run_id = tracking.create_run(client, experiment, "non-finite", {})
    logger = tracking.RunLogger(client, run_id, experiment, "sqlite://")
    values = {"nan": float("nan"), "inf": float("inf"), "minus_inf": -np.inf, "plain": np.float32(0.5), "none": None}
    logger.log_metrics(values, step=1)
    stored = client.get_run(run_id).data.metrics
    assert math.isnan(stored["nan"])  # a diverged loss stays visible as NaN, not a number
    assert stored["inf"] == sys.float_info.max and stored["minus_inf"] == -sys.float_info.max
    assert stored["plain"] == 0.5 and "none" not in stored
