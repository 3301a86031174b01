"""How a study chooses its trials: the default configuration, a space-filling start, then TPE.

TPE (Optuna's Tree-structured Parzen Estimator) draws its first ``startup_trials`` trials at random. A budget that
never leaves that phase would then be a handful of independent random draws, and with the sampler seeded the same
way in every study, every strategy would draw the same few points: a "tuned" value would be one draw, not a search.
So the start-up phase is a scrambled Sobol' design instead (Owen-scrambled, seeded by ``tune.seed``): its first
``2^m`` points put exactly one point in each ``1/2^m`` stratum of every parameter's quantile range, so even a small
budget covers every parameter's range evenly.

* Trial 0 is the default configuration.
* Search trials while fewer than ``tune.startup_trials`` trials have finished take the next Sobol' point (point i
  for the i-th finished search trial, so a failed trial's point is tried again and a resumed study continues the
  same sequence). The design has one coordinate per parameter of the whole ``tune.space``, in its order, whatever
  applies to the strategy at hand, and the same seed for every study, so every strategy × dataset draws the same
  values for the keys they share (common random numbers: the comparison between arms stays paired).
* After that, TPE models the finished trials; its sampler is seeded from ``tune.seed`` and the trial number, so a
  resumed study samples what an uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import optuna
from scipy.stats import qmc

from lstm_influence.orchestration.tuning.space import Param

SOBOL = "sobol"
TPE = "tpe"
DEFAULT = "default"
SAMPLING_PLAN = "default+sobol+tpe/1"
"""Part of every study's name: a study is only ever resumed with the plan it started with."""


def uses_design(finished_trials: int, startup_trials: int) -> bool:
    """Whether the next search trial takes a Sobol' point: while fewer than ``startup_trials`` trials have finished
    (the default one included), exactly when TPE would still be drawing at random."""
    return finished_trials < startup_trials


def design_point(index: int, dimensions: int, seed: int) -> np.ndarray:
    """Point ``index`` (0-based) of the scrambled Sobol' sequence in ``[0, 1)^dimensions`` seeded with ``seed``.

    The sequence does not depend on how many points are drawn: point i is the same for every budget.
    """
    if index < 0 or dimensions < 1:
        raise ValueError(f"design_point: index={index}, dimensions={dimensions}: expected index >= 0, dimensions >= 1")
    sampler = qmc.Sobol(d=dimensions, scramble=True, seed=np.random.default_rng(seed))
    # Whole powers of two keep the sequence's balance (scipy warns otherwise); the prefix is the same either way.
    points = sampler.random_base2(max(0, int(np.ceil(np.log2(index + 1)))))
    return points[index]


def design_values(space: Sequence[Param], index: int, dimensions: int, seed: int) -> dict[str, object]:
    """The values of search point ``index`` for the parameters in ``space`` (each reads its own coordinate)."""
    point = design_point(index, dimensions, seed)
    return {param.name: param.from_unit(point[param.dimension]) for param in space}


def tpe_sampler(seed: int, trial_number: int, startup_trials: int) -> optuna.samplers.TPESampler:
    """The TPE sampler of trial ``trial_number``, seeded from ``(seed, trial_number)``."""
    trial_seed = int(np.random.SeedSequence([int(seed), trial_number]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=trial_seed, n_startup_trials=int(startup_trials))


def describe_samplers(samplers: Sequence[str]) -> str:
    """``"sobol"``, ``"sobol+tpe"``, ``"tpe"`` or ``"none"``: which samplers chose the given search trials."""
    used = [name for name in (SOBOL, TPE) if name in samplers]
    return "+".join(used) or "none"
