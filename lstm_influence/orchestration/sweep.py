"""Hydra multirun sweeps as MLflow sees them: one parent run per sweep, a child run per job, resume without duplicates.

:class:`SweepCallback` is registered in ``conf/config.yaml`` (``hydra.callbacks.sweep``). A sweep goes:

1. ``on_multirun_start``, in the launching process before any job: expand the grid exactly as Hydra's basic sweeper
   will (its ``params``, then the command line) and compose every job's config to get its ``config_hash``. The
   ``sweep_id`` is ``sweep.id`` or ``<preset>-<hash of the jobs' hashes>``, so the same grid is the same sweep.
   The MLflow experiment and the parent run (``run_type=sweep``, ``sweep_id``) are created here, once, so that no
   two workers race to create them; a sweep that already has a parent (a resume) reuses it, and its children left
   RUNNING by a process that died are marked KILLED. One query finds the configs that already have a FINISHED run
   in the experiment: those jobs will be skipped, each saying so in the log, unless ``sweep.force``.
2. The plan travels to the jobs inside this callback: Hydra pickles it with the launcher's context, for the local,
   joblib and Ray launchers alike. ``on_job_start`` runs in the job's process and makes the job current;
   the task function (``__main__.main``) then calls :func:`current_job` and :meth:`SweepJob.run`, which skips a
   job that is done (checking MLflow once more, in case another process finished it meanwhile), and trains it as a
   child run (``mlflow.parentRunId``, ``sweep_id``, ``sweep_attempt``), telling the runner the job's share of the
   machine (:class:`~.threads.JobShare`): the runner's thread rule picks the job's TensorFlow threads
   within it once the data gives the model's size.
   A job that raises is recorded FAILED by the runner; the error is logged and the other jobs go on.
   Meanwhile the launching process prints a ``[k/N]`` line per ended job (:mod:`lstm_influence.orchestration.progress`).
3. ``on_multirun_end``, back in the launching process: count this attempt's children (``sweep/finished``,
   ``sweep/failed``, ``sweep/diverged``, ``sweep/skipped``, logged at step = attempt), write ``jobs.json`` (every
   job's config hash and the run that holds its result) and ``attempts/<n>-progress.json`` (each ``[k/N]`` with
   its run), end the parent FINISHED only when every config of the
   grid has a FINISHED run, else FAILED, print the summary table and the MLflow link, and exit non-zero if a job
   failed.
   If the process ends before that (Ctrl-C, a worker killed), an exit handler still closes the parent (KILLED or
   FAILED) and the attempt's children left RUNNING (KILLED); running the same command again resumes the sweep.

Never run two processes of one sweep at the same time: each would mark the other's running children KILLED.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import gc
import hashlib
import itertools
import json
import logging
import os
import signal
import socket
import threading
from collections import Counter
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lstm_influence import tracking
from lstm_influence.config.schema import ConfigError, check_keys, config_hash, run_name
from lstm_influence.metrics import BEST_VAL_LOSS, DIVERGED_METRIC
from lstm_influence.names import CONFIG_HASH, RUN_SWEEP, RUN_TYPE, SWEEP_ATTEMPT, SWEEP_ID
from lstm_influence.orchestration.progress import SweepProgress, progress_records, summary_table
from lstm_influence.tracking import FAILED, FINISHED, KILLED, RUNNING, Run
from lstm_influence.training.threads import JobShare, available_cores

log = logging.getLogger(__name__)

# The basic sweeper is recognised by the name Hydra configures it with; its grid is expanded by expand_grid.
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


@dataclasses.dataclass(frozen=True)
class Job:
    """One job of the grid: Hydra's job number, its overrides and the hash of its composed config."""

    num: int
    overrides: tuple[str, ...]
    config_hash: str


@dataclasses.dataclass
class SweepState:
    """What every job of one sweep attempt needs; built in the launching process, pickled to the workers.

    Attributes:
        sweep_id: the ``sweep_id`` tag of the parent and its children.
        parent_run_id: the parent MLflow run.
        experiment_id: the MLflow experiment of the parent and its children.
        tracking_uri: the tracking URI, a SQLite path made absolute.
        attempt: 1 for a new sweep, +1 for each resume.
        force: re-run jobs that already have a FINISHED run.
        share: each job's part of the machine, within which the runner chooses its TensorFlow threads.
        done: config hash -> (run id, best/val_loss) of the FINISHED run that makes the job a skip.
        owner: config hash -> the first job number with that config (later duplicates in the grid are skipped).
    """

    sweep_id: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    attempt: int
    force: bool
    share: JobShare
    done: dict[str, tuple[str, float | None]]
    owner: dict[str, int]


# ---------------------------------------------------------------------------------------------------------------
# planning: the grid, its configs and the sweep's identity


def expand_grid(overrides: list[Override]) -> list[tuple[str, ...]]:
    """Every job's overrides, in the order Hydra's basic sweeper launches them.

    Each key keeps the place of its first mention and the value of its last (a preset's ``params`` come first, so
    the command line overrides them), a sweep (``a,b``, ``range(3)``, ``glob(*)``) contributes each of its values,
    and the jobs are the Cartesian product with the last key varying fastest. Written with Hydra's public override
    API, so a Hydra release that reorganises its internals does not change it; a test holds it equal to the
    sweeper's order.

    Raises:
        ConfigError: an interval sweep (``interval(0,1)``), which only a search sweeper (e.g. Optuna) can use.
    """
    choices: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ConfigError(f"{override.input_line}: the basic sweeper takes lists, ranges and globs, not intervals")
    return list(itertools.product(*choices.values()))


def plan_jobs(config: DictConfig) -> list[Job] | None:
    """The sweep's jobs in Hydra's order, each with its ``config_hash``; None for a sweeper other than the basic one.

    Args:
        config: the multirun config Hydra gives ``on_multirun_start`` (with its ``hydra`` node).

    Raises:
        ConfigError: a job's config has keys no schema declares, a strategy or dataset setting its plug-in's
            signature refuses (:func:`check_plugins`), or the jobs do not share one tracking store.
    """
    if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    loader = GlobalHydra.instance().config_loader()
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.params or {}).items()]
    arguments = [*params, *OmegaConf.to_container(config.hydra.overrides.task, resolve=False)]
    grid = expand_grid(OverridesParser.create(config_loader=loader).parse_overrides(arguments))
    store = (config.tracking.uri, config.tracking.experiment)
    jobs = []
    for num, job_overrides in enumerate(grid):
        job_config = loader.load_sweep_config(config, list(job_overrides))
        with open_dict(job_config):
            del job_config["hydra"]
        check_keys(job_config)
        check_plugins(job_config)
        if (job_config.tracking.uri, job_config.tracking.experiment) != store:
            raise ConfigError(
                f"job #{num} ({' '.join(job_overrides)}) logs to {job_config.tracking.uri} / "
                f"{job_config.tracking.experiment}, the sweep to {store[0]} / {store[1]}: a sweep has one store"
            )
        jobs.append(Job(num, tuple(job_overrides), config_hash(job_config)))
    return jobs


def check_plugins(job_config: DictConfig) -> None:
    """Check a job's strategy and dataset settings against their plug-ins' signatures, so that a misspelt key or a
    value outside a plug-in's choices stops the sweep before any run exists (the launching process imports the
    plug-ins for this, TensorFlow included, once). What only the data can tell (a strategy that does not fit the
    sequence length) is still found by each job.

    Raises:
        ConfigError: naming the key, the bad value and the valid keys or choices.
    """
    from lstm_influence.datasets import dataset_settings
    from lstm_influence.strategies import strategy_settings

    strategy_settings(job_config.strategy)
    dataset_settings(job_config.dataset)


def sweep_id_for(config: DictConfig, jobs: list[Job] | None) -> str:
    """``sweep.id``, else ``<preset>-<8 hex>`` from the set of the jobs' config hashes (the same grid, the same id)."""
    if config.sweep.id:
        return str(config.sweep.id)
    preset = config.hydra.runtime.choices.get("experiment") or "sweep"
    if jobs is not None:
        identity: Any = sorted({job.config_hash for job in jobs})
    else:  # another sweeper decides its jobs as it goes: identify the sweep by what it was given
        identity = [config_hash(_without_hydra(config)), _sweep_description(config)]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{preset}-{digest}"


def job_share(config: DictConfig, n_jobs: int | None) -> JobShare:
    """Each job's part of the machine, so that parallel jobs do not oversubscribe the cores.

    ``sweep.threads``, if set, fixes every job's threads. Otherwise the runner's ``train.threads=auto`` rule
    (:func:`lstm_influence.training.threads.threads_for`) chooses within the share: for joblib, the cores divided by the
    workers that run at once (no more workers than jobs); for Ray, the CPUs a task reserves
    (``hydra.launcher.ray.remote.num_cpus``, Ray's default 1); for the sequential launcher, every core.

    Raises:
        ConfigError: ``sweep.threads`` is not a positive integer.
    """
    if config.sweep.threads is not None:
        if config.sweep.threads < 1:
            raise ConfigError(f"sweep.threads={config.sweep.threads}: expected a positive integer or null (auto)")
        return JobShare(threads=int(config.sweep.threads))
    launcher = config.hydra.launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        workers = launcher.get("n_jobs")
        if workers is None:
            workers = 1
        elif workers < 0:  # joblib: -1 is every core, -2 all but one, ...
            workers = max(1, available_cores() + 1 + workers)
        if n_jobs:
            workers = min(workers, n_jobs)
        return JobShare(parallel_jobs=workers)
    if "ray" in target:
        remote = launcher.get("ray", {}).get("remote") or {}
        return JobShare(cores=max(1, int(remote.get("num_cpus", 1))))
    return JobShare()


def check_store_reaches_jobs(config: DictConfig) -> None:
    """Refuse a Ray cluster with a local store: jobs on other machines would each write to a file of their own.

    Raises:
        ConfigError: ``hydra.launcher.ray.init.address`` names a cluster and ``tracking.uri`` is a local file.
    """
    launcher = config.hydra.launcher
    if "ray" not in str(launcher.get("_target_", "")):
        return
    address = (launcher.get("ray", {}).get("init") or {}).get("address")
    uri = str(config.tracking.uri)
    local_file = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    if address in (None, "local") or not local_file:
        return
    raise ConfigError(
        f"hydra.launcher.ray.init.address={address} with tracking.uri={uri}: the jobs of a Ray cluster run on "
        "other machines, which cannot write to this machine's file; use tracking=server "
        "tracking.uri=http://HOST:PORT (an MLflow server that every node reaches)"
    )


def _without_hydra(config: DictConfig) -> DictConfig:
    config = OmegaConf.create(OmegaConf.to_container(config, resolve=False))
    config.pop("hydra", None)
    return config


def _sweep_description(config: DictConfig) -> dict[str, Any]:
    return {
        "preset": config.hydra.runtime.choices.get("experiment"),
        "overrides": list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False)),
        "sweeper_params": dict(config.hydra.sweeper.get("params") or {}),
    }


def _grid(jobs: list[Job]) -> dict[str, str]:
    """Each swept key and its values in order, e.g. ``{"seed": "0,1"}``; keys with one value are left out."""
    values: dict[str, list[str]] = {}
    for job in jobs:
        for override in job.overrides:
            key, _, value = override.partition("=")
            if value not in values.setdefault(key, []):
                values[key].append(value)
    return {key: ",".join(vals) for key, vals in values.items() if len(vals) > 1}


# ---------------------------------------------------------------------------------------------------------------
# the jobs


_current: SweepJob | None = None


def current_job() -> SweepJob | None:
    """The sweep job this process is running, or None outside a sweep (a plain run)."""
    return _current


@dataclasses.dataclass
class SweepJob:
    """One job of a sweep attempt, in the process that runs it."""

    state: SweepState
    num: int

    def run(self, cfg: DictConfig) -> float | None:
        """Train ``cfg`` as a child of the sweep's parent, or skip it when its config already has a FINISHED run.

        Never raises an ``Exception``: a failed job is logged (the runner has recorded its run FAILED) and the
        sweep goes on; ``on_multirun_end`` counts it.

        Returns:
            ``best/val_loss`` of the job's run (of the earlier run when skipped), None when the job failed.
        """
        digest = config_hash(cfg)
        label = f"job #{self.num} {run_name(cfg)} [{digest}]"
        try:
            return self._run(cfg, digest, label)
        except Exception as error:
            log.error("%s failed; the other jobs go on: %s", label, error, exc_info=True)
            return None
        finally:
            tracking.end_fluent_runs()
            gc.collect()

    def _run(self, cfg: DictConfig, digest: str, label: str) -> float | None:
        state = self.state
        if state.owner and digest not in state.owner:
            log.warning(
                "%s: this config is not the one planned when the sweep started (were conf/ files edited since?); "
                "it runs, but the sweep will count its planned config as missing",
                label,
            )
        if not state.force:
            owner = state.owner.get(digest, self.num)
            if owner != self.num:
                log.info("skip %s: the same config as job #%d of this sweep", label, owner)
                return None
            done = state.done.get(digest) or self._finished_meanwhile(digest)
            if done is not None:
                log.info("skip %s: already FINISHED as run %s", label, done[0])
                return done[1]
        tags = {SWEEP_ID: state.sweep_id, SWEEP_ATTEMPT: state.attempt}
        tags.update(host=socket.gethostname(), pid=os.getpid())
        from lstm_influence.training.runner import run

        job_cfg = copy.deepcopy(cfg)  # the same structured config, with the store every process of the sweep uses
        with read_write(job_cfg):
            job_cfg.tracking.uri = state.tracking_uri
        summary = run(job_cfg, parent_run_id=state.parent_run_id, extra_tags=tags, share=state.share)
        if state.force:
            client = tracking.make_client(state.tracking_uri)
            tracking.supersede(client, state.experiment_id, digest, summary["run_id"])
        return summary.get(BEST_VAL_LOSS)

    def _finished_meanwhile(self, digest: str) -> tuple[str, float | None] | None:
        client = tracking.make_client(self.state.tracking_uri)
        found = tracking.finished_runs_by_hash(client, self.state.experiment_id, digest).get(digest)
        return None if found is None else (found.info.run_id, found.data.metrics.get(BEST_VAL_LOSS))


# ---------------------------------------------------------------------------------------------------------------
# the callback: the parent run's life


class SweepCallback(Callback):
    """Hydra callback that gives every ``-m`` sweep one MLflow parent run and makes re-running it a resume."""

    def __init__(self) -> None:
        self.state: SweepState | None = None
        self.jobs: list[Job] | None = None
        self._open = False
        self._interrupted = False
        self._previous_sigint: Any = None
        self._progress: SweepProgress | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Hydra pickles the callback to the launcher's workers; the progress watcher (a thread) stays here.
        return {**self.__dict__, "_progress": None}

    # Hydra turns an exception in a callback into a warning and goes on; a sweep that cannot record its
    # runs must not start, so setup errors leave as SystemExit.
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except Exception as error:
            log.debug("sweep setup failed", exc_info=True)
            raise SystemExit(f"Cannot start the sweep: {type(error).__name__}: {error}") from error

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        multirun = config.hydra.get("mode") == RunMode.MULTIRUN
        _current = SweepJob(self.state, int(config.hydra.job.num)) if self.state and multirun else None

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        _current = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.state is None or not self._open:
            return
        ok = self._finish()
        if not ok:
            raise SystemExit(1)

    # -- start ---------------------------------------------------------------------------------------------------

    def _start(self, config: DictConfig) -> None:
        check_store_reaches_jobs(config)
        jobs = plan_jobs(config)
        if jobs == []:  # e.g. a glob(*) over a group with no options yet
            raise ConfigError(f"the sweep has no jobs: {' '.join(_sweep_description(config)['overrides'])}")
        n_jobs = len(jobs) if jobs is not None else None
        sweep_id = sweep_id_for(config, jobs)
        uri = tracking.absolute_uri(str(config.tracking.uri))
        client = tracking.make_client(uri)
        experiment_id = tracking.get_or_create_experiment(client, str(config.tracking.experiment))
        description = _sweep_description(config)
        parent = tracking.find_sweep_parent(client, experiment_id, sweep_id)
        if parent is None:
            attempt = 1
            parent_run_id = tracking.create_run(
                client, experiment_id, sweep_id, {RUN_TYPE: RUN_SWEEP, SWEEP_ID: sweep_id, SWEEP_ATTEMPT: attempt}
            )
            logger = tracking.RunLogger(client, parent_run_id, experiment_id, uri)
            params = {
                "sweep.id": sweep_id,
                "sweep.preset": description["preset"],
                "sweep.jobs": n_jobs,
                "sweep.overrides": " ".join(description["overrides"]),
                **{f"sweep.params.{key}": value for key, value in description["sweeper_params"].items()},
                **{f"sweep.grid.{key}": value for key, value in _grid(jobs or []).items()},
            }
            logger.log_params(params)
            logger.log_text(OmegaConf.to_yaml(_without_hydra(config), resolve=True), "config.yaml")
        else:
            attempt = int(parent.data.tags.get(SWEEP_ATTEMPT, "1")) + 1
            parent_run_id = parent.info.run_id
            logger = tracking.RunLogger(client, parent_run_id, experiment_id, uri)
            tracking.close_stale_children(client, experiment_id, parent_run_id, attempt)
            tracking.reopen_run(client, parent_run_id, experiment_id)
            logger.set_tags({SWEEP_ATTEMPT: attempt})

        share = job_share(config, n_jobs)
        done: dict[str, tuple[str, float | None]] = {}
        owner: dict[str, int] = {}
        skipped_runs: list[Run] = []
        if jobs is not None:
            for job in jobs:
                owner.setdefault(job.config_hash, job.num)
            if not config.sweep.force:
                finished = tracking.finished_runs_by_hash(client, experiment_id)
                for digest in owner:
                    if digest in finished:
                        run = finished[digest]
                        done[digest] = (run.info.run_id, run.data.metrics.get(BEST_VAL_LOSS))
                        skipped_runs.append(run)
        launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
        attempt_info = {
            **description,
            "launcher": launcher,
            "job_share": dataclasses.asdict(share),
            "force": config.sweep.force,
        }
        logger.log_json(attempt_info, f"attempts/{attempt}.json")
        self.jobs = jobs
        self.state = SweepState(
            sweep_id=sweep_id,
            parent_run_id=parent_run_id,
            experiment_id=experiment_id,
            tracking_uri=uri,
            attempt=attempt,
            force=bool(config.sweep.force),
            share=share,
            done=done,
            owner=owner,
        )
        self._open = True
        atexit.register(self._close_on_exit)
        self._previous_sigint = signal.getsignal(signal.SIGINT)
        if (
            self._previous_sigint is signal.default_int_handler
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGINT, self._on_sigint)

        what = "resumes" if attempt > 1 else "starts"
        counts = f"{n_jobs} jobs" if n_jobs is not None else "jobs decided by the sweeper"
        log.info("sweep %s %s (attempt %d): %s, parent run %s", sweep_id, what, attempt, counts, parent_run_id)
        if jobs is not None:
            to_skip = self._planned_skips()
            log.info(
                "sweep %s: %d to run, %d to skip (already FINISHED or repeated)", sweep_id, len(jobs) - to_skip, to_skip
            )
        self._progress = SweepProgress(self._ended_children, n_jobs, skipped_runs)
        self._progress.start()

    def _ended_children(self) -> list[Run]:
        """This attempt's child runs that are no longer RUNNING (what the progress watcher reports)."""
        state = self.state
        assert state is not None
        client = tracking.make_client(state.tracking_uri)
        children = tracking.sweep_children(client, state.experiment_id, state.parent_run_id, attempt=state.attempt)
        return [run for run in children if run.info.status != RUNNING]

    # -- end -----------------------------------------------------------------------------------------------------

    def _planned_skips(self) -> int:
        state = self.state
        if self.jobs is None or state is None or state.force:
            return 0
        return sum(1 for job in self.jobs if job.config_hash in state.done or state.owner[job.config_hash] != job.num)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self._interrupted = True
        signal.default_int_handler(signum, frame)

    def _close_on_exit(self) -> None:
        if self._open:
            self._finish(stopped="interrupted (Ctrl-C)" if self._interrupted else "stopped before every job returned")

    def _finish(self, stopped: str | None = None) -> bool:
        """Count this attempt's children, log them on the parent and close it; True when the sweep is complete."""
        state = self.state
        assert state is not None
        self._open = False
        atexit.unregister(self._close_on_exit)
        if signal.getsignal(signal.SIGINT) == self._on_sigint and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
        client = tracking.make_client(state.tracking_uri)
        logger = tracking.RunLogger(client, state.parent_run_id, state.experiment_id, state.tracking_uri)
        children = tracking.sweep_children(client, state.experiment_id, state.parent_run_id, attempt=state.attempt)
        if stopped:  # the launcher is gone, and with it the processes of the jobs still running
            for run in children:
                if run.info.status == RUNNING:
                    tracking.kill_run(client, run.info.run_id, f"its sweep stopped before it finished: {stopped}")
            children = tracking.sweep_children(client, state.experiment_id, state.parent_run_id, attempt=state.attempt)
        reported = self._progress.stop() if self._progress is not None else []
        self._progress = None
        logger.log_json(progress_records(reported), f"attempts/{state.attempt}-progress.json")
        statuses = Counter(run.info.status for run in children)
        finished = [run for run in children if run.info.status == FINISHED]
        diverged = sum(1 for run in finished if run.data.metrics.get(DIVERGED_METRIC, 0.0) >= 1)
        failed = len(children) - len(finished)
        n_jobs = len(self.jobs) if self.jobs is not None else len(children)
        counts = {
            "sweep/jobs": n_jobs,
            "sweep/finished": len(finished),
            "sweep/failed": failed,
            "sweep/diverged": diverged,
            # a sweep that stopped early did not get to run every job: count only those it knew were done
            "sweep/skipped": self._planned_skips() if stopped else max(0, n_jobs - len(children)),
        }
        missing: list[Job] = []
        if self.jobs is not None:
            results = tracking.finished_runs_by_hash(client, state.experiment_id)
            table = [_job_row(job, results.get(job.config_hash), children) for job in self.jobs]
            missing = [job for job in self.jobs if job.config_hash not in results]
            counts["sweep/complete"] = n_jobs - len(missing)
            logger.log_json(table, "jobs.json")
        logger.log_metrics(counts, step=state.attempt)

        ok = stopped is None and failed == 0 and not missing
        problems = []
        if stopped:
            problems.append(stopped)
        if failed:
            problems.append(f"{failed} job(s) did not finish ({dict(statuses)})")
        if missing:
            problems.append(f"{len(missing)} of {n_jobs} jobs have no FINISHED run")
        if ok:
            tracking.close_run(client, state.parent_run_id, FINISHED)
        else:
            tracking.close_run(
                client, state.parent_run_id, KILLED if self._interrupted else FAILED, "; ".join(problems)
            )

        summary = ", ".join(f"{value} {key.split('/')[1]}" for key, value in counts.items() if key != "sweep/jobs")
        verdict = "complete" if ok else "INCOMPLETE: " + "; ".join(problems) + "; run the same command again to resume"
        if reported:
            tracking.announce(summary_table(reported, missing=max(0, n_jobs - len(reported))))
        tracking.announce(
            f"Sweep {state.sweep_id} (attempt {state.attempt}, {n_jobs} jobs: {summary}): {verdict}. "
            f"Parent run {state.parent_run_id}."
        )
        tracking.announce(tracking.ui_hint(state.tracking_uri, state.experiment_id))
        return ok


def _job_row(job: Job, result: Run | None, children: list[Run]) -> dict[str, Any]:
    attempts = [run for run in children if run.data.tags.get(CONFIG_HASH) == job.config_hash]
    return {
        "num": job.num,
        "overrides": list(job.overrides),
        "config_hash": job.config_hash,
        "run_id": result.info.run_id if result else None,
        "status": FINISHED if result else (attempts[-1].info.status if attempts else "NOT RUN"),
        "ran_now": bool(attempts),
        **({"diverged": result.data.metrics.get(DIVERGED_METRIC, 0.0) >= 1} if result else {}),
    }


__all__ = [
    "Job",
    "SweepCallback",
    "SweepJob",
    "SweepState",
    "check_plugins",
    "check_store_reaches_jobs",
    "current_job",
    "expand_grid",
    "job_share",
    "plan_jobs",
    "sweep_id_for",
]
