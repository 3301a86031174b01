"""Every metric a run, a sweep or a tuning study logs, each declared once: its name, meaning, direction, bounds, kind.

The names are the exact MLflow metric keys. Users' scripts, the MLflow UI's filters, shipped ``history.csv`` files and
the analysis all rely on these strings, so each is written here and nowhere else in the package: the runner and
the monitoring log under these constants, and the analysis reads from the declarations which way is better
(:func:`lower_is_better`) and what values are possible (:func:`bounds`). This module imports nothing from the
package (and nothing outside the standard library), so the command line's help, the configs and the analysis can
use it without pulling in MLflow, Keras or TensorFlow.

A constant is the plain ``str`` MLflow stores (``VAL_NORM_LOSS == "val/norm_loss"``), so it goes into
``log_metric``, a dict key or a pandas column as it is; its declaration is ``CATALOG[VAL_NORM_LOSS]``:

>>> CATALOG[VAL_NORM_LOSS].direction, CATALOG[VAL_NORM_LOSS].kind, CATALOG[VAL_NORM_LOSS].bounds
(<Direction.LOWER: 'lower'>, <Kind.PER_EPOCH: 'per-epoch'>, (0.0, inf))

**Direction.** ``lower`` or ``higher`` is better where one is (losses, spike counts, divergence; reaching the
target); ``none`` where "better" does not apply: epoch numbers, gradient norms, gate activations and the influence
measures describe a run without ranking it. The analysis must still orient every metric it is asked to rank, and
ranks a ``none`` metric as lower-is-better, the convention for losses (see :func:`lower_is_better`).

**Names this module does not declare.** A plug-in strategy's ``extra_metrics`` may log any name. Such a name has no
declaration (:func:`declaration` returns None): the analysis ranks it lower-is-better unless the caller names it
higher-is-better, and assumes no bounds (:func:`bounds` is (-inf, inf), so no interval is clipped). The reference
predictors' metrics, ``baseline/<predictor>/<split>_loss`` and ``..._norm_loss``, are one declared family: the
predictors are the datasets' own (:func:`reference_metric`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Direction(StrEnum):
    """Which values of a metric are better."""

    LOWER = "lower"  # lower is better
    HIGHER = "higher"  # higher is better
    NONE = "none"  # a measurement or count where "better" does not apply


class Kind(StrEnum):
    """When and where a metric is logged."""

    PER_EPOCH = "per-epoch"  # on a training run, at step = epoch 1..N
    BEFORE_TRAINING = "before training"  # on a training run, once, before training: its start and the references
    SUMMARY = "summary"  # on a training run, once, after training
    TUNING = "tuning"  # on a trial's run or on a study's parent run


Bounds = tuple[float, float]
#: The values a metric can take, ``(low, high)``, both included.
UNBOUNDED: Bounds = (-math.inf, math.inf)
NON_NEGATIVE: Bounds = (0.0, math.inf)
UNIT_INTERVAL: Bounds = (0.0, 1.0)  # rates, fractions, gate activations and 0/1 flags


@dataclass(frozen=True)
class Metric:
    """One metric's declaration."""

    name: str  # the MLflow metric key, e.g. ``val/norm_loss``
    meaning: str  # what it measures, in one line
    direction: Direction
    bounds: Bounds
    kind: Kind

    def __post_init__(self) -> None:
        low, high = self.bounds
        if not low <= high:
            raise ValueError(f"metric {self.name}: bounds {self.bounds} are not (low, high)")

    @property
    def non_negative(self) -> bool:
        """Whether the metric cannot be negative by definition."""
        return self.bounds[0] >= 0.0


_CATALOG: dict[str, Metric] = {}


def _declare(name: str, direction: Direction, bounds: Bounds, kind: Kind, meaning: str) -> str:
    """Record one declaration in :data:`CATALOG` and return its name (a name may be declared once)."""
    if name in _CATALOG:
        raise ValueError(f"metric {name} is declared twice")
    _CATALOG[name] = Metric(name, meaning, direction, bounds, kind)
    return name


_LOWER, _HIGHER, _NONE = Direction.LOWER, Direction.HIGHER, Direction.NONE
_EPOCH, _BEFORE, _SUMMARY, _TUNING = Kind.PER_EPOCH, Kind.BEFORE_TRAINING, Kind.SUMMARY, Kind.TUNING
_NN, _UNIT = NON_NEGATIVE, UNIT_INTERVAL

# Each line: name, direction, bounds, kind, meaning.
# --- per-epoch metrics (step = epoch 1..N) ------------------------------------------------------------------------
TRAIN_LOSS = _declare("train/loss", _LOWER, _NN, _EPOCH, "the epoch's mean training loss")
VAL_LOSS = _declare("val/loss", _LOWER, _NN, _EPOCH, "the validation loss after the epoch")
VAL_NORM_LOSS = _declare("val/norm_loss", _LOWER, _NN, _EPOCH, "val/loss ÷ the trivial predictor's loss on val")
VAL_BPC = _declare("val/bpc", _LOWER, _NN, _EPOCH, "text datasets: val/loss in bits per character (loss / ln 2)")
GRAD_GLOBAL_NORM = _declare("grad/global_norm", _NONE, _NN, _EPOCH, "the epoch's mean global gradient norm, unclipped")
GRAD_MAX_NORM = _declare("grad/max_norm", _NONE, _NN, _EPOCH, "the epoch's largest global gradient norm, unclipped")
EPOCH_TIME = _declare("time/epoch_s", _LOWER, _NN, _EPOCH, "the epoch's wall-clock seconds (training and validation)")
GATES_FORGET_MEAN = _declare("gates/forget_mean", _NONE, _UNIT, _EPOCH, "the mean forget-gate activation, fixed batch")
GATES_INPUT_MEAN = _declare("gates/input_mean", _NONE, _UNIT, _EPOCH, "the mean input-gate activation, fixed batch")
GATES_SATURATED_FRAC = _declare(
    "gates/saturated_frac", _NONE, _UNIT, _EPOCH, "the share of gate activations near 0 or 1"
)

# --- before training ----------------------------------------------------------------------------------------------
INIT_VAL_LOSS = _declare("init/val_loss", _LOWER, _NN, _BEFORE, "the built, untrained model's validation loss")
INIT_VAL_NORM_LOSS = _declare("init/val_norm_loss", _LOWER, _NN, _BEFORE, "init/val_loss ÷ the trivial one's on val")
BASELINE_VAL_LOSS = _declare("baseline/val_loss", _LOWER, _NN, _BEFORE, "the trivial (memoryless) predictor's val loss")
BASELINE_TEST_LOSS = _declare("baseline/test_loss", _LOWER, _NN, _BEFORE, "the trivial predictor's test loss")

#: The reference predictors' metrics (:func:`reference_metric`), with the parts named.
REFERENCE_PATTERN = r"^baseline/(?P<predictor>[^/]+)/(?P<split>[^/_]+)_(?P<loss>loss|norm_loss)$"
#: Only the normalised ones: ``baseline/<predictor>/<split>_norm_loss``.
REFERENCE_NORM_PATTERN = r"^baseline/(?P<predictor>[^/]+)/(?P<split>[^/_]+)_norm_loss$"


def reference_metric(predictor: str, split: str, normalised: bool = False) -> str:
    """The metric holding a reference predictor's loss, e.g. ``baseline/ridge/test_norm_loss``.

    Args:
        predictor: the reference predictor's name (``persistence``, ``ridge``, ``ngram``, ...).
        split: ``val`` or ``test``.
        normalised: the loss divided by the trivial predictor's loss on the same split.

    >>> reference_metric("ridge", "test", normalised=True)
    'baseline/ridge/test_norm_loss'
    """
    return f"baseline/{predictor}/{split}_{'norm_loss' if normalised else 'loss'}"


# --- summary metrics ----------------------------------------------------------------------------------------------
FINAL_VAL_LOSS = _declare("final/val_loss", _LOWER, _NN, _SUMMARY, "the last epoch's validation loss")
FINAL_EPOCH = _declare("final/epoch", _NONE, _NN, _SUMMARY, "the number of epochs run")
BEST_VAL_LOSS = _declare("best/val_loss", _LOWER, _NN, _SUMMARY, "the smallest finite validation loss")
BEST_EPOCH = _declare("best/epoch", _NONE, _NN, _SUMMARY, "the first epoch reaching best/val_loss")
TEST_LOSS = _declare("test/loss", _LOWER, _NN, _SUMMARY, "the test loss after the last epoch")
TEST_NORM_LOSS = _declare("test/norm_loss", _LOWER, _NN, _SUMMARY, "test/loss ÷ the trivial predictor's loss on test")
TEST_BPC = _declare("test/bpc", _LOWER, _NN, _SUMMARY, "text datasets: test/loss in bits per character")
EPOCHS_TO_TARGET = _declare(
    "conv/epochs_to_target",
    _LOWER,
    _NN,
    _SUMMARY,
    "the first epoch with val/norm_loss <= the target; absent when missed",
)
REACHED_TARGET = _declare("conv/reached_target", _HIGHER, _UNIT, _SUMMARY, "1 when the target was reached, else 0")
AULC = _declare("conv/aulc", _LOWER, _NN, _SUMMARY, "the mean val/norm_loss over the epochs run (area under the curve)")
LOSS_SPIKES = _declare(
    "stab/loss_spikes", _LOWER, _NN, _SUMMARY, "training steps whose loss exceeded spike_factor × the recent median"
)
GRAD_SPIKES = _declare(
    "stab/grad_spikes",
    _LOWER,
    _NN,
    _SUMMARY,
    "training steps whose gradient norm exceeded spike_factor × the recent median",
)
DIVERGED_METRIC = _declare("stab/diverged", _LOWER, _UNIT, _SUMMARY, "1 when the run diverged, else 0")
RETENTION = _declare(
    "influence/retention",
    _NONE,
    UNBOUNDED,
    _SUMMARY,
    "the share of the injected deviation left after training: 1 intact, 0 erased",
)
EXTRA_NORM_RATIO = _declare("influence/extra_norm_ratio", _NONE, _NN, _SUMMARY, "extra variable: ‖Δ_T‖ / ‖W_T‖")

# --- tuning metrics: a score is val/norm_loss after the objective (final, best or aulc), or the divergence penalty --
TRIAL_OBJECTIVE = _declare("tune/objective", _LOWER, _NN, _TUNING, "on a trial's run: its score")
TRIAL_PRUNED = _declare("tune/pruned", _NONE, _UNIT, _TUNING, "on a trial's run: 1 when the pruner stopped it early")
TUNE_BEST_VALUE = _declare("tune/best_value", _LOWER, _NN, _TUNING, "on a study's parent: the best score")
TUNE_DEFAULT_VALUE = _declare("tune/default_value", _LOWER, _NN, _TUNING, "on a study's parent: the default's score")
TUNE_IMPROVEMENT = _declare("tune/improvement", _HIGHER, UNBOUNDED, _TUNING, "on a study's parent: default - best")
TUNE_RELATIVE_IMPROVEMENT = _declare(
    "tune/relative_improvement", _HIGHER, UNBOUNDED, _TUNING, "on a study's parent: tune/improvement ÷ the default's"
)
STUDY_TRIAL_VALUE = _declare("trial/value", _LOWER, _NN, _TUNING, "on a study's parent, step = trial: its score")
STUDY_BEST_SO_FAR = _declare(
    "trial/best_value", _LOWER, _NN, _TUNING, "on a study's parent, step = trial: the best yet"
)

#: The confirmatory metric of a comparison unless the user declares another.
PRIMARY_METRIC = TEST_NORM_LOSS

#: Every declared metric by name, in the order declared (read-only).
CATALOG: MappingProxyType[str, Metric] = MappingProxyType(_CATALOG)


def of_kind(kind: Kind) -> tuple[str, ...]:
    """The declared metrics of one kind, in the order declared.

    >>> of_kind(Kind.TUNING)[:2]
    ('tune/objective', 'tune/pruned')
    """
    return tuple(name for name, metric in CATALOG.items() if metric.kind is kind)


#: What the runner logs once per epoch (step = epoch): what the analysis's ``history`` holds.
PER_EPOCH_METRICS = of_kind(Kind.PER_EPOCH)
#: The declared metrics where a larger value is better.
HIGHER_IS_BETTER = frozenset(name for name, metric in CATALOG.items() if metric.direction is Direction.HIGHER)


def declaration(name: str) -> Metric | None:
    """The declaration of ``name``: a catalogue entry, a reference predictor's metric, or None for a name this module
    does not declare (a plug-in strategy's own metric).

    >>> declaration("baseline/ridge/test_norm_loss").kind, declaration("influence/my_plugin") is None
    (<Kind.BEFORE_TRAINING: 'before training'>, True)
    """
    if name in CATALOG:
        return CATALOG[name]
    match = re.match(REFERENCE_PATTERN, name)
    if match is None:
        return None
    normalised = " ÷ the trivial predictor's loss on that split" if match["loss"] == "norm_loss" else ""
    meaning = f"the reference predictor {match['predictor']}'s {match['split']} loss{normalised}"
    return Metric(name, meaning, Direction.LOWER, NON_NEGATIVE, Kind.BEFORE_TRAINING)


def direction(name: str) -> Direction | None:
    """The declared direction of ``name``; None for a name this module does not declare."""
    metric = declaration(name)
    return metric.direction if metric else None


def lower_is_better(name: str, higher_is_better: Sequence[str] = ()) -> bool:
    """How the analysis orients ``name`` when it ranks runs: higher-is-better for a metric declared so or named in
    ``higher_is_better`` (the caller's word for a plug-in metric), lower-is-better for every other, including a
    metric with no direction and a name this module does not declare.

    >>> lower_is_better(TEST_NORM_LOSS), lower_is_better(REACHED_TARGET), lower_is_better("my/score", ["my/score"])
    (True, False, False)
    """
    return direction(name) is not Direction.HIGHER and name not in set(higher_is_better)


def bounds(name: str) -> Bounds:
    """The values ``name`` can take, ``(low, high)``; :data:`UNBOUNDED` for a name this module does not declare.

    >>> bounds(REACHED_TARGET), bounds(RETENTION) == bounds("my/score") == UNBOUNDED
    ((0.0, 1.0), True)
    """
    metric = declaration(name)
    return metric.bounds if metric else UNBOUNDED


def non_negative(name: str) -> bool:
    """Whether ``name`` cannot be negative by definition (False for a name this module does not declare)."""
    return bounds(name)[0] >= 0.0
