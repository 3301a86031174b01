"""How many CPU threads the Keras backend gets for a run: a rule measured on this project's machine class.

An LSTM step is a chain of small matrix products, one per time step, each waiting for the last. Below a certain
size, splitting one product across cores costs more in synchronisation than it gains, so one intra-op thread is
faster; above it, more threads pay. The size that matters is the work of one time step of one batch,
``batch_size × 4·units × (units + input_dim)`` multiply-adds (the gate pre-activations). Measured here (README,
"Performance"): at T = 100 and batch 128 with 2 input features, 16 and 64 units (0.15 M and 2.2 M multiply-adds a
step) train 1.39× and 1.07× faster on one thread than on two; at 256 units (34 M) one and two threads tie
(398 sequences/s each), so from there on a run takes its share of the cores.

A sweep job shares the machine with the jobs running beside it: its :class:`JobShare`, decided by the sweep's
launching process, makes :func:`resolve_threads` apply the same rule within cores ÷ parallel jobs. The rule is the
same on TensorFlow and JAX; :func:`~.backend.apply_threads` hands the number to the backend.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from lstm_influence.config.errors import ConfigError

AUTO = "auto"
# Multiply-adds of one time step's gate pre-activations above which more than one intra-op thread pays.
MULTI_THREAD_STEP_MACS = 32_000_000


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def step_macs(units: int, input_dim: int, batch_size: int) -> int:
    """Multiply-adds of one LSTM time step over a batch: ``batch_size · 4·units · (units + input_dim)``."""
    return int(batch_size) * 4 * int(units) * (int(units) + int(input_dim))


def threads_for(
    units: int, input_dim: int, batch_size: int, *, parallel_jobs: int = 1, cores: int | None = None
) -> int:
    """CPU threads for one run when ``parallel_jobs`` runs share the machine.

    Each run gets at most its share of the cores (cores ÷ parallel jobs, at least 1), and one thread when its time
    step is too small for several to pay (below :data:`MULTI_THREAD_STEP_MACS` multiply-adds).

    Args:
        units: LSTM units.
        input_dim: the LSTM's input features.
        batch_size: the training batch size.
        parallel_jobs: runs training at the same time on this machine (a sweep's parallel workers).
        cores: the cores to share; None: :func:`available_cores`.

    >>> threads_for(64, 2, 128, cores=2), threads_for(256, 2, 128, cores=2), threads_for(256, 2, 128, cores=8,
    ...     parallel_jobs=2)
    (1, 2, 4)
    """
    if parallel_jobs < 1:
        raise ValueError(f"parallel_jobs={parallel_jobs}: expected a positive number of jobs")
    share = max(1, (cores or available_cores()) // parallel_jobs)
    if step_macs(units, input_dim, batch_size) < MULTI_THREAD_STEP_MACS:
        return 1
    return share


@dataclasses.dataclass(frozen=True)
class JobShare:
    """A run's part of the machine: ``cores`` shared by ``parallel_jobs`` runs training at once.

    Attributes:
        parallel_jobs: runs training at the same time on ``cores`` (a joblib sweep's workers; 1 alone).
        cores: the cores they share; None: this process's (:func:`available_cores`). A Ray job's reserved CPUs.
        threads: a thread count fixed for every job (``sweep.threads``), in place of ``train.threads``.
    """

    parallel_jobs: int = 1
    cores: int | None = None
    threads: int | None = None


ALONE = JobShare()


def resolve_threads(setting: Any, *, units: int, input_dim: int, batch_size: int, share: JobShare = ALONE) -> int:
    """The CPU threads of a run: ``share.threads`` if fixed, else ``train.threads`` (``setting``) as a number.

    ``auto`` applies :func:`threads_for` within the run's share of the cores; a number is taken as given.

    Raises:
        ConfigError: ``setting`` is neither ``auto`` nor a positive integer, or ``share.threads`` is not positive.
    """
    if share.threads is not None:
        if share.threads < 1:
            raise ConfigError(f"sweep.threads={share.threads}: expected a positive integer or null (auto)")
        return int(share.threads)
    if str(setting).lower() == AUTO:
        return threads_for(units, input_dim, batch_size, parallel_jobs=share.parallel_jobs, cores=share.cores)
    if isinstance(setting, bool) or not str(setting).isdigit() or int(setting) < 1:
        raise ConfigError(f"train.threads={setting!r}: expected auto or a positive integer")
    return int(setting)
