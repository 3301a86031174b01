"""What the tests share: the tiny run settings, fresh interpreters, throwaway MLflow stores and reading runs back.

Plain constants and functions only; the fixtures built on them live in ``conftest.py``. Runs are read back through
:mod:`lstm_influence.tracking`, the project's one door to MLflow, so the tests read what the analysis would. MLflow
is imported only by the functions that read a store: ``conftest.py`` imports this module, and a test process that
never touches MLflow (the layers' run on JAX) should not pay seconds for it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from mlflow.entities import Run

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"  # the config tree, packaged as lstm_influence.conf

# A run that takes a couple of seconds on 2 cores: short sequences, few samples, few units.
TINY = (
    "dataset.seq_len=12",
    "dataset.n_train=128",
    "dataset.n_val=64",
    "dataset.n_test=64",
    "model.units=8",
    "train.epochs=2",
    "train.batch_size=32",
    "train.verbose=0",
)

# The MLflow experiment a run logs to when tracking.experiment is not overridden (the contract's default).
EXPERIMENT = "lstm-influence"


def without(overrides: Iterable[str], key: str) -> list[str]:
    """``overrides`` less those that set ``key`` (``without(TINY, "train.epochs")``), to set it another way."""
    return [override for override in overrides if override.split("=", 1)[0] != key]


def tiny_config(tracking_uri: str, *overrides: str):
    """The packaged config composed with :data:`TINY` sizes and the store at ``tracking_uri``; ``overrides`` last."""
    import lstm_influence as li

    return li.compose([*TINY, f"tracking.uri={tracking_uri}", *overrides])


@contextmanager
def packaged_hydra() -> Iterator[None]:
    """Hydra initialised on the packaged config tree for the block, as inside a command; uninitialised after.

    Code that composes through Hydra's global loader (the sweep's ``plan_jobs``) runs inside it; a test that only
    wants a config calls :func:`compose_with_hydra`.
    """
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    # Hydra refuses to be initialised twice; a command run in-process (hydra.main) may have left it initialised.
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module="lstm_influence.conf", version_base="1.3"):
        yield


def compose_with_hydra(config_name: str, overrides: Iterable[str] = (), *, return_hydra_config: bool = True):
    """Top config ``config_name`` (``config`` or ``tuning``) composed from the packaged tree as a command would.

    Args:
        config_name: ``config`` (training runs and sweeps) or ``tuning`` (studies).
        overrides: command-line style overrides, e.g. ``["experiment=compare"]``.
        return_hydra_config: keep the ``hydra`` node: the sweeper's params, the launcher, the callbacks.
    """
    from hydra import compose

    with packaged_hydra():
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def experiment_script(name: str) -> ModuleType:
    """``experiments/NAME.py`` loaded as a fresh module (the scripts are no package), its ``main`` not run."""
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------------
# fresh interpreters

# Variables that would point a child's MLflow calls at another store, experiment or run than the test chose.
LEAKING_PREFIXES = ("MLFLOW_",)


def clean_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process gets: this one without ``MLFLOW_*``, TensorFlow's C++ logs quiet, ``env`` last.

    Args:
        env: variables to set (or replace) in the child, e.g. ``{"KERAS_BACKEND": "jax"}``.
    """
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(LEAKING_PREFIXES)}
    return {**inherited, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}


def run_python(
    *args: str,
    cwd: Path | str = REPO,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh interpreter with :func:`clean_environment`; stdout and stderr captured as text.

    The exit code is left to the caller to assert, so a failure shows the child's stderr in the test report.

    Args:
        args: the interpreter's arguments: ``"-c", CODE, ...``, ``"-m", MODULE, ...`` or a script path.
        cwd: the working directory; the repository root by default (where ``experiments/`` is).
        env: variables to add, see :func:`clean_environment`.
        timeout: seconds before :class:`subprocess.TimeoutExpired` is raised.
    """
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli(args: Sequence[str], cwd: Path | str, *, env=None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m lstm_influence ARGS`` in ``cwd``, as a user types it (see :func:`run_python`)."""
    return run_python("-m", "lstm_influence", *args, cwd=cwd, env=env, timeout=timeout)


def sweep(args: Sequence[str], cwd: Path | str, *, env=None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m lstm_influence -m ARGS`` (a Hydra multirun) in ``cwd`` (see :func:`run_python`)."""
    return cli(["-m", *args], cwd, env=env, timeout=timeout)


def start_together(
    code: str,
    target: str,
    folder: Path,
    workers: int,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``workers`` copies of ``python -c CODE`` and let them start their work at the same moment.

    Each copy is called with ``sys.argv[1:] == [target, GO, WORKER]``: it touches ``Path(GO).with_name(f"ready-
    {WORKER}")`` once its imports are done, then waits for the file ``GO`` to exist before starting the work under
    test. ``GO`` is created once every copy is ready (or one has already exited), so the race is real rather than
    staggered by import times.

    Args:
        code: the Python source each copy runs.
        target: the first argument of every copy (a store or storage URL).
        folder: an empty folder for the ``ready-*`` and ``go`` files.
        workers: how many copies.
        env: variables to add, see :func:`clean_environment`.
        timeout: seconds each copy may take after the start.

    Returns:
        One completed process per copy, in worker order.
    """
    go = folder / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, target, str(go), str(worker)],
            env=clean_environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(workers)
    ]
    try:
        while len(list(folder.glob("ready-*"))) < workers and all(process.poll() is None for process in processes):
            time.sleep(0.05)
        go.touch()
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [
        subprocess.CompletedProcess(process.args, process.returncode, out, err)
        for process, (out, err) in zip(processes, outputs, strict=True)
    ]


# ---------------------------------------------------------------------------------------------------------------
# MLflow stores


class Store(NamedTuple):
    """A throwaway SQLite MLflow store: ``root`` the folder it lives in (room for artifacts beside it), ``uri``."""

    root: Path
    uri: str


def store_uri(folder: Path) -> str:
    """The URI of a store ``mlflow.db`` in ``folder`` (created by the first client that opens it)."""
    from lstm_influence import tracking

    return tracking.sqlite_uri(Path(folder) / "mlflow.db")


def new_store(folder: Path) -> Store:
    """A :class:`Store` in ``folder`` (see :func:`store_uri`)."""
    return Store(Path(folder), store_uri(folder))


def experiment_runs(
    uri: str, experiment: str = EXPERIMENT, tags: Mapping[str, str] | None = None, *, deleted: bool = False
) -> list[Run]:
    """The runs of ``experiment`` in the store at ``uri`` whose tags equal ``tags``, newest first.

    A SQLite store that does not exist is not created, and an experiment that does not exist is not created
    either: both give ``[]``, so a test can assert that nothing was logged.

    Args:
        tags: tag key -> value to match; None: every run.
        deleted: include soft-deleted runs (a superseded run is one).
    """
    from mlflow.entities import ViewType

    from lstm_influence import tracking

    database = tracking.sqlite_path(uri)
    if database is not None and not database.exists():
        return []
    client = tracking.make_client(uri)
    experiment_id = tracking.find_experiment_id(client, experiment)
    if experiment_id is None:
        return []
    view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
    runs = tracking.search_all_runs(client, experiment_id, tracking.tag_filter(tags or {}), view=view)
    return sorted(runs, key=lambda run: run.info.start_time or 0, reverse=True)


def runs_of(uri: str, experiment: str = EXPERIMENT, *, deleted: bool = False):
    """``(sweep parents, training runs)`` of ``experiment`` in the store at ``uri``, each newest first."""
    from lstm_influence import names

    runs = experiment_runs(uri, experiment, deleted=deleted)
    parents = [run for run in runs if run.data.tags.get(names.RUN_TYPE) == names.RUN_SWEEP]
    children = [run for run in runs if run.data.tags.get(names.RUN_TYPE) == names.RUN_TRAIN]
    return parents, children


def child_runs(uri: str, parent_run_id: str, experiment: str = EXPERIMENT) -> list[Run]:
    """The runs whose parent is ``parent_run_id`` (a sweep's jobs, a study's trials), newest first."""
    from lstm_influence import names

    return experiment_runs(uri, experiment, {names.PARENT_RUN_ID: parent_run_id})


def metric_by_step(uri: str, run_id: str, key: str) -> dict[int, float]:
    """``{step: value}`` of metric ``key`` of a run (a sweep parent's ``sweep/...`` counts are by attempt)."""
    from lstm_influence import tracking

    return dict(tracking.metric_history(tracking.make_client(uri), run_id, key))


def artifact_json(uri: str, run_id: str, path: str) -> Any:
    """The JSON artifact ``path`` of a run (a sweep parent's ``jobs.json``, ``attempts/<n>-progress.json``)."""
    import json

    from lstm_influence import tracking

    local = tracking.make_client(uri).download_artifacts(run_id, path)
    return json.loads(Path(local).read_text())
