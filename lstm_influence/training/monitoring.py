"""What a run watches while it trains, and what it tells the user when it ends.

- :class:`StepRecorder`: the loss and global gradient norm of every training step, written inside the compiled
  train step into preallocated buffers and read once per epoch (one device-to-host copy an epoch, not one a step).
- :func:`gate_statistics` and :class:`GateProbe`: mean input/forget gate activations and the saturated-gate fraction
  of the recurrent layer on a fixed validation batch, as the layer's own cell reports them
  (:mod:`lstm_influence.layers.gate_reading`); a layer that reports none trains without them.
- :class:`EpochMonitor`: the Keras callback that, per epoch, reads the recorder, probes the gates, checks divergence
  and sends every per-epoch metric in one MLflow call; :func:`monitor_training` wires all three onto a model.
- :func:`describe_run`: the end-of-run summary in words a newcomer reads.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from lstm_influence.datasets.base import NATS_PER_BIT, Dataset
from lstm_influence.layers.gate_reading import GateRecordingCell, GatesUnavailable
from lstm_influence.metrics import (
    DIVERGED_METRIC,
    EPOCH_TIME,
    EPOCHS_TO_TARGET,
    EXTRA_NORM_RATIO,
    FINAL_EPOCH,
    FINAL_VAL_LOSS,
    GATES_FORGET_MEAN,
    GATES_INPUT_MEAN,
    GATES_SATURATED_FRAC,
    GRAD_GLOBAL_NORM,
    GRAD_MAX_NORM,
    RETENTION,
    TEST_LOSS,
    TEST_NORM_LOSS,
    TRAIN_LOSS,
    VAL_BPC,
    VAL_LOSS,
    VAL_NORM_LOSS,
)
from lstm_influence.training import backend
from lstm_influence.training import curves as m

if TYPE_CHECKING:
    from lstm_influence.tracking import RunLogger
    from lstm_influence.training.trainable import MonitoredModel

# A gate activation outside (0.05, 0.95) is saturated: its gradient through the sigmoid is below 0.05 * 0.95.
SATURATION = (0.05, 0.95)


class StepRecorder:
    """Per-step loss and global gradient norm, written inside the compiled train step on either backend.

    The model carries it among its metrics (:attr:`~lstm_influence.training.trainable.MonitoredModel.metrics`),
    which is how its variables reach the compiled step on JAX, where every variable is passed in and out; its
    ``result`` is empty and Keras's metric resets leave it alone, since a validation between the last step and the
    epoch's end resets the metrics. Deliberately no Keras layer or metric: these are diagnostics, not model state,
    and are never saved. Steps beyond ``capacity`` overwrite the last slot.

    Args:
        capacity: the number of training steps in one epoch.
    """

    name = "step_recorder"

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"StepRecorder capacity must be a positive number of steps, got {capacity}")
        self.capacity = int(capacity)
        self.step = keras.Variable(0, dtype="int32", trainable=False, name="monitor_step")
        self.loss = keras.Variable(np.zeros(self.capacity, "float32"), trainable=False, name="monitor_loss")
        self.grad_norm = keras.Variable(np.zeros(self.capacity, "float32"), trainable=False, name="monitor_grad_norm")

    @property
    def variables(self) -> list:
        return [self.step, self.loss, self.grad_norm]

    def record(self, loss, grad_norm) -> None:
        """Store one step's loss and gradient norm (called inside the compiled train step)."""
        ops = keras.ops
        step = self.step.value
        here = ops.arange(self.capacity) == ops.minimum(step, self.capacity - 1)
        self.loss.assign(ops.where(here, ops.cast(loss, "float32"), self.loss.value))
        self.grad_norm.assign(ops.where(here, ops.cast(grad_norm, "float32"), self.grad_norm.value))
        self.step.assign(step + 1)

    def reset_state(self) -> None:
        """Left alone by Keras's resets (see the class); :meth:`reset` starts an epoch."""

    def result(self) -> dict:
        return {}

    def reset(self) -> None:
        self.step.assign(0)

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """The losses and gradient norms recorded since the last reset, as numpy arrays."""
        n = min(int(keras.ops.convert_to_numpy(self.step)), self.capacity)
        return keras.ops.convert_to_numpy(self.loss)[:n], keras.ops.convert_to_numpy(self.grad_norm)[:n]


SUMMARISED_GATES = ("input", "forget", "output")
"""The gates the gate metrics summarise, where the layer reports them."""
GATE_MEANS = {"forget": GATES_FORGET_MEAN, "input": GATES_INPUT_MEAN}
"""The gates whose mean activation is a metric of its own, and that metric."""


def gate_statistics(
    activations: Mapping[str, np.ndarray], saturation: tuple[float, float] = SATURATION
) -> dict[str, float]:
    """Summarise gate activations, as a layer reports them (:mod:`lstm_influence.layers.gate_reading`).

    Args:
        activations: ``{gate: (batch, time, units)}`` values in [0, 1]; ``input``, ``forget`` and ``output`` are
            read where present.
        saturation: ``(low, high)``: an activation below ``low`` or above ``high`` is saturated.

    Returns:
        ``gates/forget_mean`` and ``gates/input_mean`` (the mean of f and i over sequences, units and time steps),
        each where the layer reports that gate, and ``gates/saturated_frac`` (the fraction of the reported input,
        forget and output activations outside ``saturation``), where it reports any of them.
    """
    low, high = saturation
    present = {gate: np.asarray(activations[gate], np.float64) for gate in SUMMARISED_GATES if gate in activations}
    stats: dict[str, float] = {}
    if "forget" in present:
        stats[GATES_FORGET_MEAN] = float(present["forget"].mean())
    if "input" in present:
        stats[GATES_INPUT_MEAN] = float(present["input"].mean())
    if present:
        # per gate then averaged, so each reported gate weighs the same whatever its width
        stats[GATES_SATURATED_FRAC] = float(
            np.mean([np.mean((values < low) | (values > high)) for values in present.values()])
        )
    return stats


def gate_note(reported: Sequence[str]) -> str:
    """Why some gate metrics are absent, given the gates a layer reports ("" when all are there)."""
    missing = [metric for gate, metric in GATE_MEANS.items() if gate not in reported]
    if not missing:
        return ""
    absent = ", ".join(missing)
    return f"partial: the recurrent layer reports the gates {', '.join(reported) or 'none'}, so {absent} is not logged"


class GateProbe:
    """:func:`gate_statistics` of a model's recurrent layer ``lstm`` on a fixed batch, with its current weights.

    The layer's own cell runs over the batch inside a compiled Keras function (one trace per run), reporting its
    gates at every step (:class:`~lstm_influence.layers.gate_reading.GateRecordingCell`); the inputs are recomputed
    at every call (a learned input transform moves). On a 64-sequence batch of 100 steps it costs tens of
    milliseconds.

    Raises:
        GatesUnavailable: from the constructor, when the layer does not report its gates.
    """

    def __init__(self, model: keras.Model, x_batch: np.ndarray) -> None:
        lstm = model.get_layer("lstm")
        self.cell = GateRecordingCell(lstm)
        outputs = keras.layers.RNN(self.cell, return_sequences=True, name="gate_probe")(lstm.input)
        self.gates = keras.Model(model.input, outputs)
        # A few steps of one small batch an epoch: compiling XLA would not repay on TensorFlow. JAX has no fast path
        # without it (lstm_influence.training.backend.xla_optional).
        self.gates.jit_compile = not backend.xla_optional()
        self.x_batch = x_batch
        self.note = gate_note(self.cell.gate_names)

    def __call__(self) -> dict[str, float]:
        activations = self.cell.split(np.asarray(self.gates.predict_on_batch(self.x_batch)))
        with threadpool_limits(limits=1, user_api="blas"):
            return gate_statistics(activations)


@dataclasses.dataclass
class TrainingRecord:
    """What the epoch monitor recorded; the inputs of :func:`lstm_influence.training.curves.summary_metrics`."""

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
        self.gate_note = ""
        """Why the gate metrics are absent or partial ("" when all are logged); the run records it."""
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
            TRAIN_LOSS: train_loss,
            VAL_LOSS: val_loss,
            VAL_NORM_LOSS: val_norm,
            GRAD_GLOBAL_NORM: grad_mean,
            GRAD_MAX_NORM: grad_max,
        }
        if self.data.is_classification:
            epoch_metrics[VAL_BPC] = val_loss / NATS_PER_BIT
        reason = self._divergence(train_loss, step_loss)
        if reason:
            record.diverged, record.divergence_reason = True, reason
            self.model.stop_training = True
        elif self.probe is not None:
            epoch_metrics.update(self.probe())
        epoch_metrics[EPOCH_TIME] = time.perf_counter() - self._started
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
        """The convergence and stability summary of the record (:func:`~.curves.summary_metrics`)."""
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
        summary[FINAL_VAL_LOSS] = record.val_loss[-1] if record.val_loss else math.nan
        summary[FINAL_EPOCH] = float(len(record.val_loss))
        return summary


def monitor_training(
    model: MonitoredModel,
    cfg: DictConfig,
    data: Dataset,
    logger: RunLogger,
    epoch_hook: EpochHook | None = None,
) -> EpochMonitor:
    """Attach a step recorder to ``model``'s train step and return the epoch monitor to pass to ``fit``.

    The gate probe uses the first ``train.gate_probe_batch`` validation sequences (none when that is 0). A recurrent
    layer that does not report its gates trains without them: the monitor's ``gate_note`` says why (as it says
    which are missing when the layer reports only some), for the run to record.
    """
    steps_per_epoch = math.ceil(len(data.train[0]) / int(cfg.train.batch_size))
    recorder = StepRecorder(steps_per_epoch)
    model.attach_recorder(recorder, clip_norm=cfg.train.clip_norm)
    probe_size = min(int(cfg.train.gate_probe_batch), len(data.val[0]))
    probe, note = None, "off: train.gate_probe_batch=0"
    if probe_size > 0:
        try:
            probe = GateProbe(model, data.val[0][:probe_size])
            note = probe.note
        except GatesUnavailable as reason:
            note = f"absent: {reason}"
    monitor = EpochMonitor(cfg, data, recorder, probe, logger, epoch_hook)
    monitor.gate_note = note
    return monitor


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
        summary: the run's summary metrics (names as in :mod:`lstm_influence.metrics`).
        data: the run's dataset (its trivial predictor's description and reference predictors).
        target: ``train.target_norm_loss``.
        epochs: the epochs the run was given.
        seconds: the run's wall time.
        divergence_reason: why the run diverged, if it did.
    """
    trivial = data.metadata.get("baseline", "the dataset's memoryless predictor")
    ran = int(summary.get(FINAL_EPOCH, 0))
    lines = [
        f"{ran} of {epochs} epochs in {seconds:.1f} s.",
        f"Loss ÷ the trivial predictor's loss ({trivial}); 1 = no better than it, 0 = perfect:",
    ]
    final_val = float(summary.get(FINAL_VAL_LOSS, math.nan))
    losses = f"  validation {_number(data.norm_loss(final_val, 'val'))} (loss {_number(final_val)})"
    if TEST_NORM_LOSS in summary:
        losses += f", test {_number(summary[TEST_NORM_LOSS])} (loss {_number(summary[TEST_LOSS])})"
    lines.append(losses)
    split = "test" if TEST_NORM_LOSS in summary else "val"
    references = [
        f"{predictor} reference: {_number(data.norm_loss(by_split[split], split))}"
        for predictor, by_split in sorted(getattr(data, "reference_losses", {}).items())
        if split in by_split
    ]
    if references:
        lines.append(f"  {'; '.join(references)} ({split})")
    reached = summary.get(EPOCHS_TO_TARGET)
    if reached is not None:
        outcome = f"Target (validation ≤ {target:g}) reached at epoch {int(reached)}."
    else:
        outcome = f"Target (validation ≤ {target:g}) not reached in {ran} epochs."
    if summary.get(DIVERGED_METRIC):
        outcome += f" Diverged ({divergence_reason or 'see the diverged tag'}): training stopped after epoch {ran}."
    else:
        outcome += " No divergence."
    lines.append(outcome)
    if RETENTION in summary:
        lines.append(
            f"Influence retention: {_number(summary[RETENTION])} "
            "(1 = the injected deviation is intact, 0 = training erased it)."
        )
    if EXTRA_NORM_RATIO in summary:
        lines.append(f"Extra variable's size relative to the kernel: {_number(summary[EXTRA_NORM_RATIO])}.")
    return "\n".join(lines)


def _number(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a" if value is None else str(float(value))
    return f"{float(value):.3g}"
