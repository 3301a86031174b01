"""Convergence and stability metrics: pure functions over recorded histories.

Every run computes its summary metrics here, from the same per-epoch and per-step series it logs, so two runs are
always measured the same way. Epochs are numbered from 1 (the MLflow step of the per-epoch metrics).

Definitions (also in README):

- ``best/val_loss``, ``best/epoch``: the smallest finite validation loss and the first epoch reaching it.
- ``conv/epochs_to_target``: the first epoch e with ``val_norm_loss[e] <= target``; undefined when never reached.
- ``conv/aulc``: the mean of ``val/norm_loss`` over the epochs run (area under the learning curve per epoch;
  lower means faster and better).
- spikes: step t is a spike when ``value[t] > factor * median(value[t-window : t])``; the first ``window`` steps
  have no full window and are never spikes; a non-finite value is always a spike.
- divergence: a non-finite loss or weight, or a training loss above ``divergence_norm_loss`` × the trivial-baseline
  loss.
- reference predictors: each one's loss on a split, and it ÷ the trivial predictor's loss on that split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from lstm_influence.metrics import (
    AULC,
    BASELINE_TEST_LOSS,
    BASELINE_VAL_LOSS,
    BEST_EPOCH,
    BEST_VAL_LOSS,
    DIVERGED_METRIC,
    EPOCHS_TO_TARGET,
    GRAD_SPIKES,
    LOSS_SPIKES,
    REACHED_TARGET,
    reference_metric,
)

ArrayLike = Sequence[float] | np.ndarray


def best_epoch(val_losses: ArrayLike) -> tuple[float, int] | None:
    """``(best loss, 1-based epoch)`` over the finite losses; None when there is none.

    >>> best_epoch([0.5, 0.2, 0.3, 0.2])
    (0.2, 2)
    """
    values = np.asarray(val_losses, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    masked = np.where(finite, values, np.inf)
    index = int(np.argmin(masked))
    return float(values[index]), index + 1


def epochs_to_target(val_norm_losses: ArrayLike, target: float) -> int | None:
    """The first 1-based epoch whose normalised validation loss is ``<= target``; None when never reached.

    >>> epochs_to_target([0.9, 0.4, 0.05], target=0.1)
    3
    """
    values = np.asarray(val_norm_losses, dtype=np.float64)
    hits = np.flatnonzero(np.isfinite(values) & (values <= target))
    return int(hits[0]) + 1 if hits.size else None


def aulc(val_norm_losses: ArrayLike) -> float:
    """Area under the learning curve per epoch: ``mean(val_norm_losses)``; non-finite when any epoch was.

    >>> aulc([1.0, 0.5, 0.0])
    0.5
    """
    values = np.asarray(val_norm_losses, dtype=np.float64)
    if values.size == 0:
        return math.nan
    return float(np.mean(values))


def spike_mask(values: ArrayLike, factor: float = 3.0, window: int = 20) -> np.ndarray:
    """Boolean mask of spikes: ``values[t] > factor * median(values[t-window:t])``, or non-finite.

    Steps ``t < window`` lack a full window and are spikes only when non-finite. Non-finite values inside a
    window are left out of its median.
    """
    if window < 1:
        raise ValueError(f"spike window must be a positive integer, got {window}")
    x = np.asarray(values, dtype=np.float64)
    mask = ~np.isfinite(x)
    if x.size <= window:
        return mask
    windows = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # windows[k] = x[k : k+window]
    with np.errstate(all="ignore"):
        medians = np.nanmedian(np.where(np.isfinite(windows), windows, np.nan), axis=1)
    later = x[window:]
    mask[window:] |= np.isfinite(later) & np.isfinite(medians) & (later > factor * medians)
    return mask


def count_spikes(values: ArrayLike, factor: float = 3.0, window: int = 20) -> int:
    """The number of spikes in ``values`` (see :func:`spike_mask`).

    >>> count_spikes([1.0] * 20 + [3.5, 1.0, 2.9], factor=3.0, window=20)
    1
    """
    return int(spike_mask(values, factor, window).sum())


def loss_diverged(train_loss: float, baseline_loss: float, divergence_norm_loss: float) -> bool:
    """True for a non-finite training loss or one above ``divergence_norm_loss`` × the baseline loss.

    >>> loss_diverged(0.5, 0.1, 100.0), loss_diverged(11.0, 0.1, 100.0), loss_diverged(float("nan"), 0.1, 100.0)
    (False, True, True)
    """
    return not math.isfinite(train_loss) or train_loss > divergence_norm_loss * baseline_loss


def weights_finite(weights: Sequence[np.ndarray]) -> bool:
    """True when every entry of every weight array is finite."""
    return all(bool(np.all(np.isfinite(w))) for w in weights)


def gradient_summary(step_grad_norms: ArrayLike) -> tuple[float, float]:
    """``(mean, max)`` of one epoch's per-step global gradient norms (NaN when there are none)."""
    values = np.asarray(step_grad_norms, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.max(values))


def summary_metrics(
    val_losses: ArrayLike,
    val_norm_losses: ArrayLike,
    step_losses: ArrayLike,
    step_grad_norms: ArrayLike,
    *,
    target: float,
    spike_factor: float,
    spike_window: int,
    diverged: bool,
) -> dict[str, float]:
    """The convergence and stability summary of one run, named as the MLflow contract says.

    ``final/val_loss`` and ``test/*`` are not computed here: they need the model.
    """
    summary: dict[str, float] = {}
    best = best_epoch(val_losses)
    if best is not None:
        summary[BEST_VAL_LOSS], summary[BEST_EPOCH] = best[0], float(best[1])
    reached = epochs_to_target(val_norm_losses, target)
    summary[REACHED_TARGET] = float(reached is not None)
    if reached is not None:
        summary[EPOCHS_TO_TARGET] = float(reached)
    if len(val_norm_losses):
        summary[AULC] = aulc(val_norm_losses)
    summary[LOSS_SPIKES] = float(count_spikes(step_losses, spike_factor, spike_window))
    summary[GRAD_SPIKES] = float(count_spikes(step_grad_norms, spike_factor, spike_window))
    summary[DIVERGED_METRIC] = float(diverged)
    return summary


def reference_metrics(
    baseline_loss: Mapping[str, float],
    reference_losses: Mapping[str, Mapping[str, float]],
    splits: Sequence[str] = ("val", "test"),
) -> dict[str, float]:
    """The trivial predictor's and every reference predictor's loss on ``splits``, the references also normalised.

    Args:
        baseline_loss: the trivial predictor's loss per split.
        reference_losses: predictor name -> split -> loss (the dataset's ``reference_losses``; may be empty).
        splits: the splits to report (a tuning trial leaves out ``test``).

    >>> reference_metrics({"val": 0.5, "test": 0.25}, {"ridge": {"val": 0.1, "test": 0.2}}, ["test"])
    {'baseline/test_loss': 0.25, 'baseline/ridge/test_loss': 0.2, 'baseline/ridge/test_norm_loss': 0.8}
    """
    trivial = {"val": BASELINE_VAL_LOSS, "test": BASELINE_TEST_LOSS}
    found = {trivial[split]: float(baseline_loss[split]) for split in splits}
    for predictor, losses in reference_losses.items():
        for split in splits:
            if split in losses:
                loss = float(losses[split])
                found[reference_metric(predictor, split)] = loss
                found[reference_metric(predictor, split, normalised=True)] = loss / baseline_loss[split]
    return found
