"""One attempt of a sweep, in the launching process: its parent run opened, watched while the jobs run, and closed.

A sweep's first attempt creates the parent run; running the same command again is the next attempt, which reopens
it (:class:`~.orchestration.jobs.ParentRun`). The attempt records what it was given (``attempts/<n>.json``),
reports each ended job as a ``[k/N]`` line (:class:`~.orchestration.progress.SweepProgress`), and in the end counts
its children, records ``jobs.json`` and ``attempts/<n>-progress.json`` and closes the parent FINISHED only when
every config of the grid has a FINISHED run. A Ctrl-C or a lost worker still closes it, from an exit handler.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import signal
import threading
from collections import Counter
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lstm_influence import tracking
from lstm_influence.metrics import DIVERGED_METRIC
from lstm_influence.names import CONFIG_HASH, RUN_SWEEP, RUN_TYPE, SWEEP_ATTEMPT, SWEEP_ID
from lstm_influence.orchestration.jobs import ParentRun, Resume
from lstm_influence.orchestration.plan import Job, grid_values, sweep_description, without_hydra
from lstm_influence.orchestration.progress import SweepProgress, progress_records, summary_table
from lstm_influence.tracking import FAILED, FINISHED, KILLED, RUNNING, Run
from lstm_influence.training.threads import JobShare

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SweepAttempt:
    """A sweep attempt's parent run and what the launching process knows of its jobs.

    Attributes:
        sweep_id: the ``sweep_id`` tag of the parent and its children.
        number: 1 for a new sweep, +1 for each resume (the ``sweep_attempt`` tag).
        planned: the grid's jobs; None when the sweeper decides its jobs as it goes.
        done: config hash -> the FINISHED run that makes a planned job a skip (empty when forced).
        open: the parent is still RUNNING, to be closed by :meth:`finish`.
    """

    sweep_id: str
    number: int
    parent: ParentRun
    resume: Resume
    planned: list[Job] | None
    done: dict[str, Run]
    open: bool = True
    interrupted: bool = False
    progress: SweepProgress | None = None
    previous_sigint: Any = None

    @classmethod
    def open_for(cls, config: DictConfig, sweep_id: str, planned: list[Job] | None, share: JobShare) -> SweepAttempt:
        """Create the sweep's parent run, or reopen it (the next attempt), and find the planned jobs already done."""
        uri = tracking.absolute_uri(str(config.tracking.uri))
        client = tracking.make_client(uri)
        experiment_id = tracking.get_or_create_experiment(client, str(config.tracking.experiment))
        found = tracking.find_sweep_parent(client, experiment_id, sweep_id)
        parent = ParentRun.open(
            client,
            uri,
            experiment_id,
            existing=found.info.run_id if found else None,
            name=sweep_id,
            tags={RUN_TYPE: RUN_SWEEP, SWEEP_ID: sweep_id, SWEEP_ATTEMPT: 1},
            describe=functools.partial(_describe_sweep, config, sweep_id, planned),
        )
        number = 1
        if not parent.created:
            number = int(found.data.tags.get(SWEEP_ATTEMPT, "1")) + 1
            tracking.close_stale_children(client, experiment_id, parent.run_id, number)
            parent.mark({SWEEP_ATTEMPT: number})
        resume = Resume(client, experiment_id, force=bool(config.sweep.force))
        done: dict[str, Run] = {}
        if planned is not None and not resume.force:
            finished = resume.finished()
            done = {job.config_hash: finished[job.config_hash] for job in planned if job.config_hash in finished}
        given = {
            **sweep_description(config),
            "launcher": OmegaConf.to_container(config.hydra.launcher, resolve=True),
            "job_share": dataclasses.asdict(share),
            "force": config.sweep.force,
        }
        parent.logger.log_json(given, f"attempts/{number}.json")
        attempt = cls(sweep_id, number, parent, resume, planned, done)
        what = "resumes" if number > 1 else "starts"
        counts = f"{len(planned)} jobs" if planned is not None else "jobs decided by the sweeper"
        log.info("sweep %s %s (attempt %d): %s, parent run %s", sweep_id, what, number, counts, parent.run_id)
        if planned is not None:
            skips = attempt.planned_skips()
            log.info(
                "sweep %s: %d to run, %d to skip (already FINISHED or repeated)", sweep_id, len(planned) - skips, skips
            )
        return attempt

    def planned_skips(self) -> int:
        """Planned jobs that will not run: their config is done, or an earlier job of the grid has it."""
        if self.planned is None or self.resume.force:
            return 0
        first: dict[str, int] = {}
        for job in self.planned:
            first.setdefault(job.config_hash, job.num)
        return sum(1 for job in self.planned if job.config_hash in self.done or first[job.config_hash] != job.num)

    def children(self) -> list[Run]:
        """This attempt's child runs, newest first."""
        client, parent = self.parent.logger.client, self.parent.logger
        return tracking.sweep_children(client, parent.experiment_id, parent.run_id, attempt=self.number)

    # -- while the jobs run --------------------------------------------------------------------------------------

    def watch(self) -> None:
        """Report each ended job, and close the parent even if the process ends before the launcher returns."""
        atexit.register(self._close_on_exit)
        self.previous_sigint = signal.getsignal(signal.SIGINT)
        if self.previous_sigint is signal.default_int_handler and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_sigint)
        n_jobs = len(self.planned) if self.planned is not None else None
        self.progress = SweepProgress(self._ended_children, n_jobs, self.done.values())
        self.progress.start()

    def _ended_children(self) -> list[Run]:
        return [run for run in self.children() if run.info.status != RUNNING]

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        signal.default_int_handler(signum, frame)

    def _close_on_exit(self) -> None:
        if self.open:
            self.finish(stopped="interrupted (Ctrl-C)" if self.interrupted else "stopped before every job returned")

    def _unwatch(self) -> None:
        atexit.unregister(self._close_on_exit)
        if signal.getsignal(signal.SIGINT) == self._on_sigint and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self.previous_sigint)

    # -- the end -------------------------------------------------------------------------------------------------

    def finish(self, stopped: str | None = None) -> bool:
        """Count this attempt's children, log them on the parent and close it; True when the sweep is complete.

        Args:
            stopped: why the launcher stopped before every job returned; its jobs still RUNNING are marked KILLED.
        """
        self.open = False
        self._unwatch()
        children = self.children()
        if stopped:  # the launcher is gone, and with it the processes of the jobs still running
            for run in children:
                if run.info.status == RUNNING:
                    reason = f"its sweep stopped before it finished: {stopped}"
                    tracking.kill_run(self.parent.logger.client, run.info.run_id, reason)
            children = self.children()
        # the jobs killed just now are reported too
        reported = self.progress.stop() if self.progress is not None else []
        self.progress = None
        self.parent.logger.log_json(progress_records(reported), f"attempts/{self.number}-progress.json")
        counts, missing = self._count(children, stopped)
        failed = counts["sweep/failed"]
        problems = [stopped] if stopped else []
        if failed:
            statuses = Counter(run.info.status for run in children)
            problems.append(f"{failed} job(s) did not finish ({dict(statuses)})")
        if missing:
            problems.append(f"{missing} of {counts['sweep/jobs']} jobs have no FINISHED run")
        ok = not problems
        if ok:
            self.parent.close(FINISHED)
        else:
            self.parent.close(KILLED if self.interrupted else FAILED, "; ".join(problems))
        self._announce_end(reported, counts, problems)
        return ok

    def _count(self, children: list[Run], stopped: str | None) -> tuple[dict[str, int], int]:
        """The attempt's metrics (logged at step = attempt) and how many planned configs have no FINISHED run."""
        finished = [run for run in children if run.info.status == FINISHED]
        n_jobs = len(self.planned) if self.planned is not None else len(children)
        counts = {
            "sweep/jobs": n_jobs,
            "sweep/finished": len(finished),
            "sweep/failed": len(children) - len(finished),
            "sweep/diverged": sum(1 for run in finished if run.data.metrics.get(DIVERGED_METRIC, 0.0) >= 1),
            # a sweep that stopped early did not get to run every job: count only those it knew were done
            "sweep/skipped": self.planned_skips() if stopped else max(0, n_jobs - len(children)),
        }
        missing = 0
        if self.planned is not None:
            results = self.resume.finished()
            table = [_job_row(job, results.get(job.config_hash), children) for job in self.planned]
            missing = sum(1 for job in self.planned if job.config_hash not in results)
            counts["sweep/complete"] = n_jobs - missing
            self.parent.logger.log_json(table, "jobs.json")
        self.parent.logger.log_metrics(counts, step=self.number)
        return counts, missing

    def _announce_end(self, reported: list, counts: dict[str, int], problems: list[str]) -> None:
        n_jobs = counts["sweep/jobs"]
        summary = ", ".join(f"{value} {key.split('/')[1]}" for key, value in counts.items() if key != "sweep/jobs")
        verdict = "INCOMPLETE: " + "; ".join(problems) + "; run the same command again to resume" if problems else ""
        if reported:
            tracking.announce(summary_table(reported, missing=max(0, n_jobs - len(reported))))
        tracking.announce(
            f"Sweep {self.sweep_id} (attempt {self.number}, {n_jobs} jobs: {summary}): {verdict or 'complete'}. "
            f"Parent run {self.parent.run_id}."
        )
        tracking.announce(tracking.ui_hint(self.parent.logger.uri, self.parent.logger.experiment_id))


def _describe_sweep(config: DictConfig, sweep_id: str, planned: list[Job] | None, logger: tracking.RunLogger) -> None:
    """What a new sweep's parent records once: what it was given, as params, and its resolved config."""
    description = sweep_description(config)
    params = {
        "sweep.id": sweep_id,
        "sweep.preset": description["preset"],
        "sweep.jobs": len(planned) if planned is not None else None,
        "sweep.overrides": " ".join(description["overrides"]),
        **{f"sweep.params.{key}": value for key, value in description["sweeper_params"].items()},
        **{f"sweep.grid.{key}": value for key, value in grid_values(planned or []).items()},
    }
    logger.log_params(params)
    logger.log_text(OmegaConf.to_yaml(without_hydra(config), resolve=True), "config.yaml")


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


__all__ = ["SweepAttempt"]
