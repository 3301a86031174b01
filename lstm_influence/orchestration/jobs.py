"""What sweeps and tuning studies share: one parent run each, configs found done by their hash, one way to train.

* :class:`ParentRun`: the MLflow run that holds a sweep's jobs or a study's trials as children. Opening it reopens
  the parent an earlier attempt left (a resume) or creates and describes a new one; closing it records how the
  attempt ended.
* :class:`Resume`: a config that already has a FINISHED training run in the experiment (found by its
  ``config_hash`` tag) is done; ``force`` runs it again and then keeps only the new run.
* :func:`train`: every job and trial is ``run(cfg, context)``, the runner's one entry point; the context
  (:class:`~lstm_influence.training.context.RunContext`) carries the parent run, the tags and what tuning needs
  besides (its epoch hook, no test split).

A tuning study resumes by its trials' states in Optuna rather than by config hash: a trial is a point of the
study's sampling plan, and two studies may try the same config and must each count it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from lstm_influence import tracking
from lstm_influence.metrics import BEST_VAL_LOSS
from lstm_influence.tracking import Run
from lstm_influence.training.context import RunContext


@dataclasses.dataclass
class ParentRun:
    """A sweep's or a study's parent run, open while its children train.

    Attributes:
        logger: logs to the parent (params, tags, metrics, artifacts).
        created: True when this attempt created the parent, False when it reopened an earlier attempt's.
    """

    logger: tracking.RunLogger
    created: bool

    @property
    def run_id(self) -> str:
        return self.logger.run_id

    @classmethod
    def open(
        cls,
        client: MlflowClient,
        uri: str,
        experiment_id: str,
        *,
        existing: str | None,
        name: str,
        tags: Mapping[str, Any],
        describe: Callable[[tracking.RunLogger], None],
    ) -> ParentRun:
        """Reopen ``existing`` (RUNNING again), or, when there is none or it is gone, create a run named ``name``
        with ``tags`` and let ``describe`` log what the new parent records once (its params, its config)."""
        if existing and tracking.reopen_run(client, existing, experiment_id):
            return cls(tracking.RunLogger(client, existing, experiment_id, uri), created=False)
        run_id = tracking.create_run(client, experiment_id, name, tags)
        parent = cls(tracking.RunLogger(client, run_id, experiment_id, uri), created=True)
        describe(parent.logger)
        return parent

    def mark(self, tags: Mapping[str, Any]) -> None:
        """Set tags on the parent (the attempt, a study's summary)."""
        self.logger.set_tags(tags)

    def close(self, status: str, error: str | None = None) -> None:
        """End the parent with ``status``; ``error`` says what is missing or went wrong."""
        tracking.close_run(self.logger.client, self.run_id, status, error)


@dataclasses.dataclass(frozen=True)
class Resume:
    """Resume by config hash within one experiment: a config with a FINISHED training run is done.

    Attributes:
        force: treat no config as done (``sweep.force``); :meth:`keep_only` then retires the older runs.
    """

    client: MlflowClient
    experiment_id: str
    force: bool = False

    def finished(self) -> dict[str, Run]:
        """Every config of the experiment with a FINISHED run: its hash -> that run (the earliest)."""
        return tracking.finished_runs_by_hash(self.client, self.experiment_id)

    def done(self, digest: str) -> Run | None:
        """The FINISHED run that makes config ``digest`` done, None when it must run (always None when forced)."""
        if self.force:
            return None
        return tracking.finished_runs_by_hash(self.client, self.experiment_id, digest).get(digest)

    def keep_only(self, digest: str, run_id: str) -> None:
        """After a forced re-run: ``run_id`` stays the config's one FINISHED run (the others are soft-deleted)."""
        if self.force:
            tracking.supersede(self.client, self.experiment_id, digest, run_id)


def result_of(run: Run) -> float | None:
    """What a job returns to Hydra: its run's ``best/val_loss``."""
    return run.data.metrics.get(BEST_VAL_LOSS)


def train(cfg: DictConfig, context: RunContext) -> dict[str, Any]:
    """Train one job or trial: the runner's :func:`~lstm_influence.training.runner.run` with its context."""
    # TensorFlow is imported here, not at module import, so --help and the launching process stay light.
    from lstm_influence.training.runner import run

    return run(cfg, context)


__all__ = ["ParentRun", "Resume", "result_of", "train"]
