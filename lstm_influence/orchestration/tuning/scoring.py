"""How a trial is scored and stopped: its objective from the per-epoch ``val/norm_loss``, and the pruning hook.

The hook is what the trial's :class:`~lstm_influence.training.context.RunContext` hands the runner as its epoch
hook; it sees only validation metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import optuna
from omegaconf import DictConfig
from optuna.trial import Trial

from lstm_influence.metrics import VAL_NORM_LOSS


def objective_value(norm_losses: Sequence[float], objective: str, *, diverged: bool, penalty: float) -> float:
    """A trial's score from its per-epoch ``val/norm_loss``: ``final`` (the last), ``best`` (the lowest) or
    ``aulc`` (the mean). A diverged trial, or one with no finite value, scores ``penalty``
    (``train.divergence_norm_loss``)."""
    values = [float(v) for v in norm_losses]
    if diverged or not values or not all(math.isfinite(v) for v in values):
        return float(penalty)
    if objective == "final":
        return values[-1]
    if objective == "best":
        return min(values)
    if objective == "aulc":
        return float(np.mean(values))
    raise ValueError(f"objective_value: objective={objective!r}, expected final, best or aulc")


class PruningHook:
    """The runner's epoch hook for one trial: reports ``val/norm_loss`` to Optuna and stops a trial it prunes.

    The last epoch is never pruned (stopping there saves nothing), nor is an unprunable trial (the default one,
    whose final value is the reference for the tuned-versus-default difference).
    """

    def __init__(self, trial: Trial, *, epochs: int, prunable: bool) -> None:
        self.trial = trial
        self.epochs = epochs
        self.prunable = prunable
        self.values: list[float] = []
        self.pruned_at: int | None = None

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        value = float(metrics.get(VAL_NORM_LOSS, math.nan))
        self.values.append(value)
        if not math.isfinite(value):
            return False
        self.trial.report(value, epoch)
        if self.prunable and epoch < self.epochs and self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False


def pruner(tune_cfg: DictConfig) -> optuna.pruners.BasePruner:
    """The study's pruner: ``tune.pruner=median`` (after its start-up trials and warm-up epochs) or none."""
    if tune_cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    # Epochs are steps 1..N; warmup w means epochs 1..w always run.
    return optuna.pruners.MedianPruner(
        n_startup_trials=int(tune_cfg.pruner_startup_trials), n_warmup_steps=int(tune_cfg.pruner_warmup_epochs) + 1
    )


__all__ = ["PruningHook", "objective_value", "pruner"]
