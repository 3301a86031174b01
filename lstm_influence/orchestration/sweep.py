"""Hydra multirun sweeps as MLflow sees them: one parent run per sweep, a child run per job, resume without duplicates.

:class:`SweepCallback` is the training app's ``hydra/callbacks`` option ``sweep`` (``conf/hydra/callbacks/sweep.yaml``,
selected by ``conf/config.yaml``; the tuning app does not select it). A sweep goes:

1. ``on_multirun_start``, in the launching process before any job: plan the grid (:mod:`~.orchestration.plan`:
   every job's ``config_hash`` and the ``sweep_id``), then create the sweep's parent run (``run_type=sweep``,
   ``sweep_id``) once, so that no two workers race to create it, or reopen it on a resume, marking KILLED the
   children an earlier attempt left RUNNING (:class:`~.orchestration.jobs.ParentRun`). Jobs whose config already
   has a FINISHED run will be skipped, each saying so in the log, unless ``sweep.force``
   (:class:`~.orchestration.jobs.Resume`).
2. The callback hands each job what it needs through the job's own Hydra config: it adds
   ``hydra.callbacks.sweep.job`` (the parent run, each job's share of the machine, the planned config hashes) to
   the overrides every job is composed with, so basic, joblib and Ray launchers carry it alike and each job's
   ``.hydra/hydra.yaml`` records which sweep it belonged to. The task function (``__main__.main``) reads it with
   :func:`sweep_job` and :meth:`SweepJob.run` trains the job as a child run (``mlflow.parentRunId``,
   ``sweep_id``, ``sweep_attempt``), or skips it when its config is done or repeats an earlier job's. A job that
   raises is recorded FAILED by the runner; the error is logged and the other jobs go on. Meanwhile the launching
   process prints a ``[k/N]`` line per ended job (:mod:`~.orchestration.progress`).
3. ``on_multirun_end``, back in the launching process: count this attempt's children (``sweep/finished``,
   ``sweep/failed``, ``sweep/diverged``, ``sweep/skipped``, logged at step = attempt), write ``jobs.json`` (every
   job's config hash and the run that holds its result) and ``attempts/<n>-progress.json`` (each ``[k/N]`` with
   its run), end the parent FINISHED only when every config of the grid has a FINISHED run, else FAILED, print
   the summary table and the MLflow link, and exit non-zero if a job failed. If the process ends before that
   (Ctrl-C, a worker killed), an exit handler still closes the parent (KILLED or FAILED) and the attempt's children
   left RUNNING (KILLED); running the same command again resumes the sweep.

Never run two processes of one sweep at the same time: each would mark the other's running children KILLED.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import logging
import os
import socket
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, read_write

from lstm_influence import tracking
from lstm_influence.config.errors import ConfigError
from lstm_influence.config.identity import config_hash, run_name
from lstm_influence.metrics import BEST_VAL_LOSS
from lstm_influence.names import SWEEP_ATTEMPT, SWEEP_ID
from lstm_influence.orchestration import jobs
from lstm_influence.orchestration.plan import (
    Job,
    check_store_reaches_jobs,
    job_share,
    plan_jobs,
    sweep_description,
    sweep_id_for,
)
from lstm_influence.orchestration.sweep_attempt import SweepAttempt
from lstm_influence.training.context import RunContext
from lstm_influence.training.threads import JobShare

log = logging.getLogger(__name__)

CALLBACK_KEY = "sweep"  # the callback's key under hydra.callbacks (conf/hydra/callbacks/sweep.yaml)
JOB_KEY = "job"  # what the callback hands every job, at hydra.callbacks.sweep.job


# ---------------------------------------------------------------------------------------------------------------
# the launching process


class SweepCallback(Callback):
    """Hydra callback that gives every ``-m`` sweep one MLflow parent run and makes re-running it a resume.

    It works in the launching process only; Hydra also pickles it to the launcher's workers, where it arrives
    blank and does nothing (a job learns about its sweep from its own Hydra config: :func:`sweep_job`).
    """

    def __init__(self) -> None:
        self.attempt: SweepAttempt | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"attempt": None}

    # Hydra turns an exception in a callback into a warning and goes on; a sweep that cannot record its
    # runs must not start, so setup errors leave as SystemExit.
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except Exception as error:
            log.debug("sweep setup failed", exc_info=True)
            raise SystemExit(f"Cannot start the sweep: {type(error).__name__}: {error}") from error

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.attempt is None or not self.attempt.open:
            return
        if not self.attempt.finish():
            raise SystemExit(1)

    def _start(self, config: DictConfig) -> None:
        check_store_reaches_jobs(config)
        planned = plan_jobs(config)
        if planned == []:  # e.g. a glob(*) over a group with no options yet
            raise ConfigError(f"the sweep has no jobs: {' '.join(sweep_description(config)['overrides'])}")
        n_jobs = len(planned) if planned is not None else None
        share = job_share(config, n_jobs)
        self.attempt = SweepAttempt.open_for(config, sweep_id_for(config, planned), planned, share)
        hand_to_jobs(config, self.attempt.parent.run_id, share, planned)
        self.attempt.watch()


def hand_to_jobs(config: DictConfig, parent_run_id: str, share: JobShare, planned: list[Job] | None) -> None:
    """Add ``hydra.callbacks.sweep.job`` to the overrides Hydra composes every job's config with.

    A launcher composes each job from the sweep's Hydra overrides plus the job's own, in the launching process,
    for the basic, joblib and Ray launchers alike; the job then reads it back with :func:`sweep_job`. The values
    are hex ids, numbers and null only, so the override needs no escaping.
    """
    handed = {
        "parent_run_id": parent_run_id,
        "share": dataclasses.asdict(share),
        "plan": [job.config_hash for job in planned] if planned is not None else None,
    }
    override = f"++hydra.callbacks.{CALLBACK_KEY}.{JOB_KEY}={_override_value(handed)}"
    with read_write(config.hydra.overrides.hydra):
        config.hydra.overrides.hydra.append(override)


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"{value!r}: only ids and hashes are handed to a sweep's jobs")
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ",".join(_override_value(item) for item in value) + "]"
    return "{" + ",".join(f"{key}:{_override_value(item)}" for key, item in value.items()) + "}"


# ---------------------------------------------------------------------------------------------------------------
# a job's process


def sweep_job() -> SweepJob | None:
    """The sweep job this process runs, read from its Hydra config; None for a plain run (no ``-m``), a tuning
    sweep, or a sweep without the callback."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    handed = OmegaConf.select(hydra_cfg, f"callbacks.{CALLBACK_KEY}.{JOB_KEY}")
    if hydra_cfg.mode != RunMode.MULTIRUN or handed is None:
        return None
    return SweepJob(
        num=int(hydra_cfg.job.num),
        parent_run_id=str(handed.parent_run_id),
        share=JobShare(**OmegaConf.to_container(handed.share)),
        plan=tuple(handed.plan) if handed.plan is not None else None,
        cwd=str(hydra_cfg.runtime.cwd),
    )


@dataclasses.dataclass(frozen=True)
class SweepJob:
    """One job of a sweep attempt, in the process that runs it.

    Attributes:
        num: Hydra's job number.
        parent_run_id: the sweep's parent run; its tags give the ``sweep_id`` and the attempt.
        share: the job's part of the machine.
        plan: the planned config hash of every job, by number; None when the sweeper decides its jobs as it goes.
        cwd: the launching process's working directory, which a relative SQLite store is relative to.
    """

    num: int
    parent_run_id: str
    share: JobShare
    plan: tuple[str, ...] | None
    cwd: str

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
        if self.plan is not None and digest not in self.plan:
            log.warning(
                "%s: this config is not the one planned when the sweep started (were conf/ files edited since?); "
                "it runs, but the sweep will count its planned config as missing",
                label,
            )
        uri = tracking.absolute_uri(str(cfg.tracking.uri), self.cwd)
        client = tracking.make_client(uri)
        parent = client.get_run(self.parent_run_id)
        resume = jobs.Resume(client, parent.info.experiment_id, force=bool(cfg.sweep.force))
        if not resume.force:
            owner = self.plan.index(digest) if self.plan is not None and digest in self.plan else self.num
            if owner != self.num:
                log.info("skip %s: the same config as job #%d of this sweep", label, owner)
                return None
            done = resume.done(digest)
            if done is not None:
                log.info("skip %s: already FINISHED as run %s", label, done.info.run_id)
                return jobs.result_of(done)
        tags = {
            SWEEP_ID: parent.data.tags[SWEEP_ID],
            SWEEP_ATTEMPT: parent.data.tags[SWEEP_ATTEMPT],
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        job_cfg = copy.deepcopy(cfg)  # the same structured config, with the store every process of the sweep uses
        with read_write(job_cfg):
            job_cfg.tracking.uri = uri
        summary = jobs.train(job_cfg, RunContext(parent_run_id=self.parent_run_id, tags=tags, share=self.share))
        resume.keep_only(digest, summary["run_id"])
        return summary.get(BEST_VAL_LOSS)


__all__ = ["CALLBACK_KEY", "JOB_KEY", "SweepCallback", "SweepJob", "hand_to_jobs", "sweep_job"]
