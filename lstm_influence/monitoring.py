"""What a run watches while it trains, and what it tells the user when it ends.

- :class:`StepRecorder`: the loss and global gradient norm of every training step, written inside the compiled
  train step into preallocated buffers and read once per epoch (one device-to-host copy an epoch, not one a step).
- :func:`gate_statistics` and :class:`GateProbe`: mean input/forget gate activations and the saturated-gate fraction
  of the LSTM on a fixed validation batch, replayed from the layer's current weights.
- :class:`EpochMonitor`: the Keras callback that, per epoch, reads the recorder, probes the gates, checks divergence
  and sends every per-epoch metric in one MLflow call; :func:`monitor_training` wires all three onto a model.
- :func:`describe_run`: the end-of-run summary in words a newcomer reads.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from lstm_influence import metrics as m
from lstm_influence.datasets.base import NATS_PER_BIT, Dataset
from lstm_influence.tracking import names

if TYPE_CHECKING:
    from lstm_influence.model import MonitoredModel
    from lstm_influence.tracking import RunLogger

# A gate activation outside (0.05, 0.95) is saturated: its gradient through the sigmoid is below 0.05 * 0.95.
SATURATION = (0.05, 0.95)


class StepRecorder:
    """Per-step loss and global gradient norm, written inside the compiled train step.

    Deliberately not a Keras variable: these are diagnostics, not model state, and must not be saved. Steps beyond
    ``capacity`` overwrite the last slot.

    Args:
        capacity: the number of training steps in one epoch.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"StepRecorder capacity must be a positive number of steps, got {capacity}")
        self.capacity = int(capacity)
        self.step = tf.Variable(0, dtype=tf.int32, trainable=False, name="monitor_step")
        self.loss = tf.Variable(tf.zeros(self.capacity), trainable=False, name="monitor_loss")
        self.grad_norm = tf.Variable(tf.zeros(self.capacity), trainable=False, name="monitor_grad_norm")

    def record(self, loss, grad_norm) -> None:
        """Store one step's loss and gradient norm (graph code: called inside the train step)."""
        index = tf.minimum(self.step, self.capacity - 1)[None, None]
        self.loss.scatter_nd_update(index, tf.cast(loss, tf.float32)[None])
        self.grad_norm.scatter_nd_update(index, tf.cast(grad_norm, tf.float32)[None])
        self.step.assign_add(1)

    def reset(self) -> None:
        self.step.assign(0)

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """The losses and gradient norms recorded since the last reset, as numpy arrays."""
        n = min(int(self.step.numpy()), self.capacity)
        return self.loss.numpy()[:n], self.grad_norm.numpy()[:n]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # exact, and free of exp overflow warnings for large |z|


def gate_statistics(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray,
    saturation: tuple[float, float] = SATURATION,
) -> dict[str, float]:
    """Replay an LSTM over ``x`` and summarise its gate activations.

    With Keras's gate layout i, f, c, o along the last axis of ``kernel`` (features, 4u), ``recurrent_kernel``
    (u, 4u) and ``bias`` (4u,), and h_0 = c_0 = 0, for t = 1..T::

        z_t = x_t W + h_{t-1} U + b = [z_i, z_f, z_c, z_o]
        i_t = σ(z_i),  f_t = σ(z_f),  o_t = σ(z_o),  c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(z_c),  h_t = o_t ⊙ tanh(c_t)

    Args:
        x: the LSTM's inputs, ``(batch, time, features)``.
        kernel, recurrent_kernel, bias: the layer's (effective) weights.
        saturation: ``(low, high)``: an activation below ``low`` or above ``high`` is saturated.

    Returns:
        ``gates/forget_mean`` and ``gates/input_mean`` (the mean of f and i over sequences, units and time steps)
        and ``gates/saturated_frac`` (the fraction of i, f and o activations outside ``saturation``).
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[1] == 0:
        raise ValueError(f"gate_statistics expects x of shape (batch, time >= 1, features), got {x.shape}")
    low, high = saturation
    units = recurrent_kernel.shape[0]
    projected = x @ kernel + bias  # (batch, time, 4u): the input part of every step at once
    h = np.zeros((x.shape[0], units), np.float32)
    c = np.zeros_like(h)
    forget_sum = input_sum = saturated_sum = 0.0
    for t in range(x.shape[1]):
        z = projected[:, t] + h @ recurrent_kernel
        i, f, o = _sigmoid(z[:, :units]), _sigmoid(z[:, units : 2 * units]), _sigmoid(z[:, 3 * units :])
        c = f * c + i * np.tanh(z[:, 2 * units : 3 * units])
        h = o * np.tanh(c)
        forget_sum += float(f.mean())
        input_sum += float(i.mean())
        gates = np.stack([i, f, o])
        saturated_sum += float(np.mean((gates < low) | (gates > high)))
    steps = x.shape[1]
    return {
        names.GATES_FORGET_MEAN: forget_sum / steps,
        names.GATES_INPUT_MEAN: input_sum / steps,
        names.GATES_SATURATED_FRAC: saturated_sum / steps,
    }


class GateProbe:
    """:func:`gate_statistics` of a model's layer ``lstm`` on a fixed batch, with the layer's current weights.

    The LSTM's inputs are recomputed at every call (a learned input transform moves). The replay runs in numpy on
    one BLAS thread: its products (probe batch × units by units × 4·units) are far too small for more to pay, and
    idle BLAS threads spinning beside TensorFlow's made one probe take 1.1 to 1.7 s instead of 0.05 s on a loaded
    2-core machine. On a 64-sequence batch it costs milliseconds and nothing to compile.
    """

    def __init__(self, model: keras.Model, x_batch: np.ndarray) -> None:
        lstm = model.get_layer("lstm")
        self.cell = lstm.cell
        self.lstm_inputs = keras.Model(model.input, lstm.input)
        self.x_batch = x_batch

    def __call__(self) -> dict[str, float]:
        x = keras.ops.convert_to_numpy(self.lstm_inputs(self.x_batch, training=False))
        cell = self.cell
        weights = (cell.kernel, cell.recurrent_kernel, cell.bias)
        with threadpool_limits(limits=1, user_api="blas"):
            return gate_statistics(x, *(keras.ops.convert_to_numpy(w) for w in weights))


@dataclasses.dataclass
class TrainingRecord:
    """What the epoch monitor recorded; the inputs of :func:`lstm_influence.metrics.summary_metrics`."""

    train_loss: list[float] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    val_norm_loss: list[float] = dataclasses.field(default_factory=list)
    step_loss: list[np.ndarray] = dataclasses.field(default_factory=list)
    step_grad_norm: list[np.ndarray] = dataclasses.field(default_factory=list)
    diverged: bool = False
    divergence_reason: str = ""
    stopped_by_hook: bool = False


# Called after each epoch's metrics are logged, with (epoch, metrics); returning True stops training
# (a tuner's pruner uses it). It never sees the test split.
EpochHook = Callable[[int, dict[str, float]], bool | None]


class EpochMonitor(keras.callbacks.Callback):
    """Per epoch: read the step buffers, probe the gates, check divergence, log everything in one MLflow call."""

    def __init__(
        self,
        cfg: DictConfig,
        data: Dataset,
        recorder: StepRecorder,
        probe: GateProbe | None,
        logger: RunLogger,
        epoch_hook: EpochHook | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.data = data
        self.recorder = recorder
        self.probe = probe
        self.logger = logger
        self.epoch_hook = epoch_hook
        self.record = TrainingRecord()
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.recorder.reset()
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        step_loss, step_grad = self.recorder.read()
        train_loss = float(logs.get("loss", math.nan))
        val_loss = float(logs.get("val_loss", math.nan))
        val_norm = self.data.norm_loss(val_loss, "val")
        grad_mean, grad_max = m.gradient_summary(step_grad)
        record = self.record
        record.train_loss.append(train_loss)
        record.val_loss.append(val_loss)
        record.val_norm_loss.append(val_norm)
        record.step_loss.append(step_loss)
        record.step_grad_norm.append(step_grad)

        epoch_metrics = {
            names.TRAIN_LOSS: train_loss,
            names.VAL_LOSS: val_loss,
            names.VAL_NORM_LOSS: val_norm,
            names.GRAD_GLOBAL_NORM: grad_mean,
            names.GRAD_MAX_NORM: grad_max,
        }
        if self.data.is_classification:
            epoch_metrics[names.VAL_BPC] = val_loss / NATS_PER_BIT
        reason = self._divergence(train_loss, step_loss)
        if reason:
            record.diverged, record.divergence_reason = True, reason
            self.model.stop_training = True
        elif self.probe is not None:
            epoch_metrics.update(self.probe())
        epoch_metrics[names.EPOCH_TIME] = time.perf_counter() - self._started
        self.logger.log_metrics(epoch_metrics, step=epoch + 1)
        if self.epoch_hook is not None and not record.diverged and self.epoch_hook(epoch + 1, epoch_metrics):
            record.stopped_by_hook = True
            self.model.stop_training = True

    def _divergence(self, train_loss: float, step_loss: np.ndarray) -> str:
        baseline = self.data.baseline_loss.get("train", self.data.baseline_loss["val"])
        limit = self.cfg.train.divergence_norm_loss
        if not np.all(np.isfinite(step_loss)):
            return "non-finite training loss"
        if m.loss_diverged(train_loss, baseline, limit):
            return f"training loss {train_loss:.4g} above {limit:g} x the trivial baseline {baseline:.4g}"
        if not m.weights_finite([keras.ops.convert_to_numpy(w) for w in self.model.weights]):
            return "non-finite weights"
        return ""

    def summary(self) -> dict[str, float]:
        """The convergence and stability summary of the record (:func:`lstm_influence.metrics.summary_metrics`)."""
        record, train_cfg = self.record, self.cfg.train
        summary = m.summary_metrics(
            record.val_loss,
            record.val_norm_loss,
            np.concatenate(record.step_loss) if record.step_loss else np.array([]),
            np.concatenate(record.step_grad_norm) if record.step_grad_norm else np.array([]),
            target=float(train_cfg.target_norm_loss),
            spike_factor=float(train_cfg.spike_factor),
            spike_window=int(train_cfg.spike_window),
            diverged=record.diverged,
        )
        summary[names.FINAL_VAL_LOSS] = record.val_loss[-1] if record.val_loss else math.nan
        summary[names.FINAL_EPOCH] = float(len(record.val_loss))
        return summary


def monitor_training(
    model: MonitoredModel,
    cfg: DictConfig,
    data: Dataset,
    logger: RunLogger,
    epoch_hook: EpochHook | None = None,
) -> EpochMonitor:
    """Attach a step recorder to ``model``'s train step and return the epoch monitor to pass to ``fit``.

    The gate probe uses the first ``train.gate_probe_batch`` validation sequences (none when that is 0).
    """
    steps_per_epoch = math.ceil(len(data.train[0]) / int(cfg.train.batch_size))
    recorder = StepRecorder(steps_per_epoch)
    model.attach_recorder(recorder, clip_norm=cfg.train.clip_norm)
    probe_size = min(int(cfg.train.gate_probe_batch), len(data.val[0]))
    probe = GateProbe(model, data.val[0][:probe_size]) if probe_size > 0 else None
    return EpochMonitor(cfg, data, recorder, probe, logger, epoch_hook)


def describe_run(
    summary: Mapping[str, Any],
    data: Dataset,
    *,
    target: float,
    epochs: int,
    seconds: float,
    divergence_reason: str = "",
) -> str:
    """The run's key numbers in words: losses against the trivial predictor, the target, divergence, retention.

    Args:
        summary: the run's summary metrics (names as in :mod:`lstm_influence.tracking.names`).
        data: the run's dataset (its trivial predictor's description and reference predictors).
        target: ``train.target_norm_loss``.
        epochs: the epochs the run was given.
        seconds: the run's wall time.
        divergence_reason: why the run diverged, if it did.
    """
    trivial = data.metadata.get("baseline", "the dataset's memoryless predictor")
    ran = int(summary.get(names.FINAL_EPOCH, 0))
    lines = [
        f"{ran} of {epochs} epochs in {seconds:.1f} s.",
        f"Loss ÷ the trivial predictor's loss ({trivial}); 1 = no better than it, 0 = perfect:",
    ]
    final_val = float(summary.get(names.FINAL_VAL_LOSS, math.nan))
    losses = f"  validation {_number(data.norm_loss(final_val, 'val'))} (loss {_number(final_val)})"
    if names.TEST_NORM_LOSS in summary:
        losses += f", test {_number(summary[names.TEST_NORM_LOSS])} (loss {_number(summary[names.TEST_LOSS])})"
    lines.append(losses)
    split = "test" if names.TEST_NORM_LOSS in summary else "val"
    references = [
        f"{predictor} reference: {_number(data.norm_loss(by_split[split], split))}"
        for predictor, by_split in sorted(getattr(data, "reference_losses", {}).items())
        if split in by_split
    ]
    if references:
        lines.append(f"  {'; '.join(references)} ({split})")
    reached = summary.get(names.EPOCHS_TO_TARGET)
    if reached is not None:
        outcome = f"Target (validation ≤ {target:g}) reached at epoch {int(reached)}."
    else:
        outcome = f"Target (validation ≤ {target:g}) not reached in {ran} epochs."
    if summary.get(names.DIVERGED_METRIC):
        outcome += f" Diverged ({divergence_reason or 'see the diverged tag'}): training stopped after epoch {ran}."
    else:
        outcome += " No divergence."
    lines.append(outcome)
    if names.RETENTION in summary:
        lines.append(
            f"Influence retention: {_number(summary[names.RETENTION])} "
            "(1 = the injected deviation is intact, 0 = training erased it)."
        )
    if names.EXTRA_NORM_RATIO in summary:
        lines.append(f"Extra variable's size relative to the kernel: {_number(summary[names.EXTRA_NORM_RATIO])}.")
    return "\n".join(lines)


def _number(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a" if value is None else str(float(value))
    return f"{float(value):.3g}"
