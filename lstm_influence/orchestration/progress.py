"""A sweep's progress as the user sees it: one line per finished job, then one summary table.

Hydra's joblib (and Ray) launchers run the jobs in worker processes, so no single job knows how many others are
done. The launching process does: while the launcher runs, :class:`SweepProgress` watches the sweep's store from a
background thread and prints a line for every child run of this attempt that has ended::

    [7/30] bias_init-synthetic-s1 FINISHED test/norm_loss 0.412, 12.3 s, elapsed 1:05, ETA 3:41

Jobs skipped because their config already has a FINISHED run count too; their line says SKIPPED and gives the
earlier run's value. The ETA is the mean time per job that ran so far (elapsed time ÷ jobs that ran: parallel
workers are in it) times the jobs still to come. In a terminal the status is coloured; otherwise the lines are
plain text, one per job.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import IO, Any

from lstm_influence.metrics import DIVERGED_METRIC, PRIMARY_METRIC
from lstm_influence.names import ARM, CONTROL_ARM, DATASET, ERROR, STRATEGY
from lstm_influence.tracking.runs import FINISHED, RUNNING, Run

POLL_S = 2.0  # how often the watcher asks the store; a query takes milliseconds
SKIPPED = "SKIPPED"
DIVERGED = "DIVERGED"
_COLOURS = {FINISHED: "32", SKIPPED: "36", DIVERGED: "33"}  # ANSI green, cyan, yellow; anything else red


@dataclass(frozen=True)
class JobResult:
    """One ended job as the progress line and the summary table need it.

    Attributes:
        run_id: the run holding the result (for a skip, the earlier FINISHED run).
        name: the run name, ``{arm}-{dataset}-s{seed}``.
        arm, dataset: the ``arm`` (else ``strategy``) and ``dataset`` tags.
        status: ``FINISHED``, ``DIVERGED`` (finished with ``stab/diverged`` = 1), ``FAILED``, ``KILLED`` or
            ``SKIPPED``.
        value: the primary metric, None when the run has none.
        seconds: the job's own wall time; None for a skip.
        error: the ``error`` tag of a run that did not finish.
    """

    run_id: str
    name: str
    arm: str
    dataset: str
    status: str
    value: float | None
    seconds: float | None
    error: str = ""

    @classmethod
    def from_run(cls, run: Run, *, skipped: bool = False, metric: str = PRIMARY_METRIC) -> JobResult:
        tags, metrics, info = run.data.tags, run.data.metrics, run.info
        status = info.status
        if status == FINISHED and metrics.get(DIVERGED_METRIC, 0.0) >= 1:
            status = DIVERGED
        seconds = (info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else None
        return cls(
            run_id=info.run_id,
            name=info.run_name or info.run_id,
            arm=tags.get(ARM) or tags.get(STRATEGY, "?"),
            dataset=tags.get(DATASET, "?"),
            status=SKIPPED if skipped else status,
            value=metrics.get(metric),
            seconds=None if skipped else seconds,
            error=tags.get(ERROR, ""),
        )


def progress_records(results: Iterable[JobResult]) -> list[dict[str, Any]]:
    """The reported jobs as data, each with its counter ``k`` (1..N in the order reported): what the sweep's parent
    run keeps as ``attempts/<n>-progress.json``, so the count can be checked without reading any printed line."""
    return [{"k": k, **asdict(job)} for k, job in enumerate(results, start=1)]


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(
    done: int, total: int | None, job: JobResult, *, elapsed: float, ran: int, metric: str = PRIMARY_METRIC
) -> str:
    """``[k/N] run-name STATUS metric value, job time, elapsed, ETA``.

    Args:
        done: k, the jobs ended so far, this one included (skips count).
        total: N, the jobs of the sweep; None when the sweeper decides them as it goes (no ETA then).
        elapsed: seconds since the sweep started.
        ran: the jobs that actually ran so far (not skipped): the ETA is ``elapsed / ran * (total - done)``.
    """
    value = "n/a" if job.value is None or not math.isfinite(job.value) else f"{job.value:.4g}"
    own = "skipped" if job.seconds is None else f"{job.seconds:.1f} s"
    if total is None or not ran:
        eta = "?"
    else:
        eta = clock(elapsed / ran * max(0, total - done))
    counter = f"[{done}/{total or '?'}]"
    line = f"{counter} {job.name} {job.status} {metric} {value}, {own}, elapsed {clock(elapsed)}, ETA {eta}"
    if job.error and job.status not in (FINISHED, DIVERGED, SKIPPED):
        line += f" ({job.error.splitlines()[0][:100]})"
    return line


def summary_table(results: Iterable[JobResult], *, metric: str = PRIMARY_METRIC, missing: int = 0) -> str:
    """One table of a sweep's jobs per arm (strategy) × dataset: how many finished, failed or diverged, and the
    median of ``metric`` over the runs that finished without diverging (skipped jobs count with their earlier run).

    Args:
        missing: jobs of the grid that have no result at all (never started); stated under the table.
    """
    groups: dict[tuple[str, str], list[JobResult]] = {}
    for job in results:
        groups.setdefault((job.arm, job.dataset), []).append(job)
    header = ["arm", "dataset", "jobs", "finished", "failed", "diverged", f"median {metric}"]
    rows = [header]
    # the control first, then the arms as they first reported (a user's arms as much as the built-ins)
    arms = list(dict.fromkeys(arm for arm, _ in groups))
    order = {name: rank for rank, name in enumerate(sorted(arms, key=lambda arm: arm != CONTROL_ARM))}
    for (arm, dataset), jobs in sorted(groups.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        finished = [job for job in jobs if job.status in (FINISHED, SKIPPED)]
        diverged = sum(job.status == DIVERGED for job in jobs)
        values = [job.value for job in finished if job.value is not None and math.isfinite(job.value)]
        median = f"{statistics.median(values):.4g}" if values else "n/a"
        failed = len(jobs) - len(finished) - diverged
        rows.append([arm, dataset, str(len(jobs)), str(len(finished)), str(failed), str(diverged), median])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if missing:
        lines.append(f"{missing} job(s) of the grid never started")
    return "\n".join(lines)


class SweepProgress:
    """Prints a line per ended job of one sweep attempt, watching the store from a thread of the launching process.

    Args:
        fetch_ended: returns this attempt's child runs that are no longer RUNNING (one store query).
        total: the jobs of the sweep (N); None when the sweeper decides them as it goes.
        skipped: the earlier FINISHED runs of the jobs planned as skips, reported first.
        stream: where the lines go (stderr: stdout is left to the jobs).
    """

    def __init__(
        self,
        fetch_ended: Callable[[], list[Run]],
        total: int | None,
        skipped: Iterable[Run] = (),
        *,
        stream: IO[str] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.fetch_ended = fetch_ended
        self.total = total
        self.stream = stream or sys.stderr
        self.poll_s = poll_s
        self.started = time.monotonic()
        self.results: list[JobResult] = []
        self._seen: set[str] = set()
        self._ran = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._colour = _wants_colour(self.stream)
        for run in skipped:
            self._report(JobResult.from_run(run, skipped=True))

    def start(self) -> None:
        """Start watching (a daemon thread: it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._watch, name="sweep-progress", daemon=True)
        self._thread.start()

    def stop(self) -> list[JobResult]:
        """Stop watching, report what ended since the last look, and return every job reported."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.poll()
        return list(self.results)

    def skip(self, run: Run) -> None:
        """Report a job skipped while the sweep ran (its config finished elsewhere meanwhile)."""
        self._report(JobResult.from_run(run, skipped=True))

    def poll(self) -> None:
        """Report every run of the attempt that ended since the last poll."""
        for run in sorted(self.fetch_ended(), key=lambda run: run.info.end_time or 0):
            if run.info.status != RUNNING:
                self._report(JobResult.from_run(run))

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as error:  # a busy store must not end the sweep: try again at the next poll
                print(f"(sweep progress: could not read the store: {error})", file=self.stream, flush=True)

    def _report(self, job: JobResult) -> None:
        with self._lock:
            if job.run_id in self._seen:
                return
            self._seen.add(job.run_id)
            self.results.append(job)
            if job.status != SKIPPED:
                self._ran += 1
            line = progress_line(
                len(self.results), self.total, job, elapsed=time.monotonic() - self.started, ran=self._ran
            )
            if self._colour:
                code = _COLOURS.get(job.status, "31")
                line = line.replace(f" {job.status} ", f" \x1b[{code}m{job.status}\x1b[0m ", 1)
            # One write per line, so that a worker writing to the same stream cannot split it.
            self.stream.write(line + "\n")
            self.stream.flush()


def _wants_colour(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
