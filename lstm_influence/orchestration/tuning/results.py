"""What a study's trials add up to: the best trial, the default configuration's score, which samplers searched.

:func:`tally` reads the finished trials; :class:`Tally` says it as the parent run's tags and metrics, and the study
returns it as a :class:`TuneResult`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from lstm_influence.metrics import TUNE_BEST_VALUE, TUNE_DEFAULT_VALUE, TUNE_IMPROVEMENT, TUNE_RELATIVE_IMPROVEMENT
from lstm_influence.names import (
    BEST_IS_DEFAULT,
    BEST_PREFIX,
    BEST_TRIAL,
    SEARCH_TRIALS,
    STUDY_BUDGET,
    STUDY_SAMPLER,
    STUDY_SEARCHED,
    TRIALS_DONE,
    TRIALS_FAILED,
    TRIALS_PRUNED,
    TRIED_PREFIX,
)
from lstm_influence.orchestration.tuning import sampling
from lstm_influence.orchestration.tuning.space import Param

DEFAULT_ROLE = "default"
SEARCH_ROLE = "search"
MIN_SEARCH_TRIALS = 2
"""Finished search trials (besides the default one) a study needs before its best values count as searched: with
one, "tuned" would be a single draw compared with the default."""


@dataclass(frozen=True)
class Tally:
    """A study's finished (complete or pruned) and failed trials, summarised.

    Attributes:
        finished, pruned, failed, search: trial counts; ``search`` excludes the default trial.
        sampler: the samplers that chose the finished search trials (``sobol``, ``sobol+tpe``, ``tpe``, ``none``).
        searched: at least :data:`MIN_SEARCH_TRIALS` search trials finished.
        tried: per parameter, the distinct values the finished trials ran with.
        best: the complete trial with the lowest score (the earliest of equals); None before any completes.
        best_values: the best trial's values by parameter name.
        default_value: the default configuration's score, None before it completes.
    """

    finished: int
    pruned: int
    failed: int
    search: int
    sampler: str
    searched: bool
    tried: dict[str, int]
    best: FrozenTrial | None
    best_values: dict[str, Any]
    default_value: float | None

    def tags(self, budget: int) -> dict[str, Any]:
        """The parent run's tags: the budget, the counts, the samplers, and the best trial and its values."""
        tags: dict[str, Any] = {
            STUDY_BUDGET: budget,
            TRIALS_DONE: self.finished,
            TRIALS_PRUNED: self.pruned,
            TRIALS_FAILED: self.failed,
            SEARCH_TRIALS: self.search,
            STUDY_SAMPLER: self.sampler,
            STUDY_SEARCHED: self.searched,
        }
        tags |= {f"{TRIED_PREFIX}{name}": count for name, count in self.tried.items()}
        if self.best is not None:
            is_default = self.best.user_attrs.get("role") == DEFAULT_ROLE
            tags |= {BEST_TRIAL: self.best.number, BEST_IS_DEFAULT: is_default}
            tags |= {f"{BEST_PREFIX}{name}": json.dumps(value) for name, value in self.best_values.items()}
        return tags

    def metrics(self) -> dict[str, float]:
        """The parent run's metrics: the best and the default score, and the improvement of one over the other."""
        metrics: dict[str, float] = {}
        if self.best is not None:
            metrics[TUNE_BEST_VALUE] = self.best.value
        if self.default_value is not None:
            metrics[TUNE_DEFAULT_VALUE] = self.default_value
            if self.best is not None:
                metrics[TUNE_IMPROVEMENT] = self.default_value - self.best.value
                if self.default_value:
                    metrics[TUNE_RELATIVE_IMPROVEMENT] = (self.default_value - self.best.value) / self.default_value
        return metrics


def tally(
    complete: Sequence[FrozenTrial],
    pruned: Sequence[FrozenTrial],
    failed: Sequence[FrozenTrial],
    space: Sequence[Param],
) -> Tally:
    """Summarise a study's trials by state (Optuna's COMPLETE, PRUNED and FAIL)."""
    finished = [*complete, *pruned]
    search = [t for t in finished if t.user_attrs.get("role") != DEFAULT_ROLE]
    best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
    defaults = [t for t in complete if t.user_attrs.get("role") == DEFAULT_ROLE]
    return Tally(
        finished=len(finished),
        pruned=len(pruned),
        failed=len(failed),
        search=len(search),
        sampler=sampling.describe_samplers([t.user_attrs.get("sampler", sampling.TPE) for t in search]),
        searched=len(search) >= MIN_SEARCH_TRIALS,
        tried={p.name: len({json.dumps(t.user_attrs.get("values", {}).get(p.name)) for t in finished}) for p in space},
        best=best,
        best_values=dict(best.user_attrs.get("values", {})) if best else {},
        default_value=defaults[-1].value if defaults else None,
    )


@dataclass
class TuneResult:
    """What one tuning call leaves behind (also in MLflow's parent run and in Optuna's storage).

    Attributes:
        trials: finished trials (complete or pruned), the default one included; ``search_trials`` excludes it.
        sampler: the samplers that chose the finished search trials (``sobol``, ``sobol+tpe``, ``tpe``, ``none``).
        searched: at least :data:`MIN_SEARCH_TRIALS` search trials finished, so the best values are a search's.
        tried: per parameter, the distinct values the finished trials ran with.
    """

    study: str
    storage: str
    experiment_id: str
    parent_run_id: str
    budget: int
    trials: int
    pruned: int
    failed: int
    best_trial: int | None
    best_value: float | None
    best_values: dict[str, Any]
    default_value: float | None
    tuned_config: Path | None
    label: str
    search_trials: int = 0
    sampler: str = "none"
    searched: bool = False
    tried: dict[str, int] | None = None


__all__ = ["DEFAULT_ROLE", "MIN_SEARCH_TRIALS", "SEARCH_ROLE", "Tally", "TuneResult", "tally"]
