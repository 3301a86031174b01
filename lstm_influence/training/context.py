"""Where a run sits among others: what an orchestrator (a sweep, a tuning study) adds to one config's run.

A plain run needs none of it: ``run(cfg)`` trains alone (:data:`STANDALONE`). A sweep job or a tuning trial passes
a :class:`RunContext` as the runner's second argument, so :func:`lstm_influence.training.runner.run` keeps one
signature for every caller. What belongs to the experiment itself (sizes, seeds, the store) stays in the config;
the context holds only what the orchestrator knows and the config cannot say: the parent run, the tags that tie the
run to it, the machine's share, and for tuning the epoch hook and the promise never to read the test split.

This module imports neither Keras nor TensorFlow: the launching process of a sweep builds contexts before any
job imports them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lstm_influence.training.threads import ALONE, JobShare

if TYPE_CHECKING:
    from lstm_influence.training.monitoring import EpochHook


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a run's orchestrator adds to its config.

    Attributes:
        parent_run_id: make the run a child of this MLflow run (a sweep's or a tuning study's parent).
        tags: more tags for the run, e.g. ``sweep_id`` or a trial's ``trial_number``.
        share: the run's part of the machine when other runs train beside it; ``train.threads=auto`` chooses
            within it (:func:`lstm_influence.training.threads.resolve_threads`).
        evaluate_test: false never touches the test split (tuning must not see it).
        epoch_hook: called after each epoch (see :data:`lstm_influence.training.monitoring.EpochHook`); a tuner's
            pruner stops a trial through it.
    """

    parent_run_id: str | None = None
    tags: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    share: JobShare = ALONE
    evaluate_test: bool = True
    epoch_hook: EpochHook | None = None

    @property
    def is_child(self) -> bool:
        """True when a parent counts this run (so a run that cannot start is still recorded, FAILED)."""
        return self.parent_run_id is not None


STANDALONE = RunContext()
"""A run on its own: no parent, the whole machine, tested on the test split."""
