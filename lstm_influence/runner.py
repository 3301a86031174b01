"""The training runner: one config in, one MLflow run out.

``run(cfg)`` opens the MLflow run first, so that anything that goes wrong afterwards (bad data, a bad strategy
configuration, an influence that did not land, a crash in training) is recorded as a FAILED run with an ``error``
tag rather than lost. It then loads the data, builds the model with the strategy applied, proves the influence
landed, trains with per-epoch monitoring, and logs the summary metrics named in the contract.

A run that diverges is not an error: it stops early, logs ``stab/diverged = 1`` and ends FINISHED.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from lstm_influence import metrics as m
from lstm_influence import tracking
from lstm_influence.config import ConfigError, check_keys, flatten
from lstm_influence.datasets import load_dataset
from lstm_influence.datasets.base import NATS_PER_BIT, Dataset
from lstm_influence.model import MonitoredModel, StepRecorder, build_model, strategy_for


class InfluenceError(RuntimeError):
    """The strategy's influence is not in the built weights: training would test nothing."""


class GateProbe:
    """Mean input/forget gate activations and the saturated-gate fraction on a fixed validation batch.

    The LSTM's inputs are recomputed every epoch (a learned input transform moves), then the cell's gate maths
    is replayed with the layer's current (effective) weights. Assumes the i, f, c, o gate layout of Keras.
    """

    SATURATION = (0.05, 0.95)

    def __init__(self, model: keras.Model, x_batch: np.ndarray) -> None:
        lstm = model.get_layer("lstm")
        self.cell = lstm.cell
        self.lstm_inputs = keras.Model(model.input, lstm.input)
        self.x_batch = x_batch

    def __call__(self) -> dict[str, float]:
        x = self.lstm_inputs(self.x_batch, training=False)
        cell = self.cell
        forget, inputs, saturated = _gate_statistics(
            tf.convert_to_tensor(x),
            tf.convert_to_tensor(cell.kernel),
            tf.convert_to_tensor(cell.recurrent_kernel),
            tf.convert_to_tensor(cell.bias),
        )
        return {
            "gates/forget_mean": float(forget),
            "gates/input_mean": float(inputs),
            "gates/saturated_frac": float(saturated),
        }


# XLA fuses the time loop's small per-step ops: about 1.5x cheaper than the plain graph loop on CPU.
@tf.function(reduce_retracing=True, jit_compile=True)
def _gate_statistics(x, kernel, recurrent_kernel, bias):
    low, high = GateProbe.SATURATION
    x_proj = tf.einsum("btf,fg->btg", x, kernel) + bias
    batch = tf.shape(x)[0]
    units = tf.shape(recurrent_kernel)[0]
    h = tf.zeros((batch, units), x.dtype)
    c = tf.zeros((batch, units), x.dtype)
    forget_sum = tf.constant(0.0, x.dtype)
    input_sum = tf.constant(0.0, x.dtype)
    saturated_sum = tf.constant(0.0, x.dtype)
    steps = tf.shape(x)[1]
    for t in tf.range(steps):
        z = x_proj[:, t] + tf.matmul(h, recurrent_kernel)
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
        i, f, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o)
        c = f * c + i * tf.tanh(z_c)
        h = o * tf.tanh(c)
        forget_sum += tf.reduce_mean(f)
        input_sum += tf.reduce_mean(i)
        gates = tf.stack([i, f, o])
        saturated_sum += tf.reduce_mean(tf.cast((gates < low) | (gates > high), x.dtype))
    n = tf.cast(steps, x.dtype)
    return forget_sum / n, input_sum / n, saturated_sum / n


@dataclasses.dataclass
class History:
    """What the epoch monitor recorded; the inputs of :func:`lstm_influence.metrics.summarize`."""

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
        logger: tracking.RunLogger,
        epoch_hook: EpochHook | None = None,
    ) -> None:
        super().__init__()
        self.epoch_hook = epoch_hook
        self.cfg = cfg
        self.data = data
        self.recorder = recorder
        self.probe = probe
        self.logger = logger
        self.history = History()
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
        record = self.history
        record.train_loss.append(train_loss)
        record.val_loss.append(val_loss)
        record.val_norm_loss.append(val_norm)
        record.step_loss.append(step_loss)
        record.step_grad_norm.append(step_grad)

        epoch_metrics = {
            "train/loss": train_loss,
            "val/loss": val_loss,
            "val/norm_loss": val_norm,
            "grad/global_norm": grad_mean,
            "grad/max_norm": grad_max,
        }
        if self.data.is_classification:
            epoch_metrics["val/bpc"] = val_loss / NATS_PER_BIT
        reason = self._divergence(train_loss, step_loss)
        if reason:
            record.diverged, record.divergence_reason = True, reason
            self.model.stop_training = True
        elif self.probe is not None:
            epoch_metrics.update(self.probe())
        epoch_metrics["time/epoch_s"] = time.perf_counter() - self._started
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
        if not m.weights_finite([w.numpy() for w in self.model.weights]):
            return "non-finite weights"
        return ""


def _evaluate(model: keras.Model, split: tuple[np.ndarray, np.ndarray], batch_size: int) -> float:
    loss = model.evaluate(*split, batch_size=batch_size, verbose=0, return_dict=True)["loss"]
    return float(loss)


def train(
    cfg: DictConfig,
    logger: tracking.RunLogger,
    *,
    epoch_hook: EpochHook | None = None,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train ``cfg`` into the open run of ``logger``; return the summary metrics.

    Args:
        cfg: the run's config.
        logger: the open MLflow run.
        epoch_hook: see :data:`EpochHook`.
        evaluate_test: false never touches the test split (tuning must not see it).
    """
    _check_train(cfg)
    data = load_dataset(cfg)
    logger.log_params({f"data.{k}": v for k, v in flatten(data.metadata).items()})
    logger.log_json(data.metadata, "dataset.json")

    strategy = strategy_for(cfg, data)
    model: MonitoredModel = build_model(cfg, data, strategy)
    before = strategy.verify(model)
    logger.log_json({"before": before}, "influence_report.json")
    if not before.get("passed", False):
        failed = [check.get("name", "?") for check in before.get("checks", []) if not check.get("passed", False)]
        raise InfluenceError(
            f"strategy {cfg.strategy.name!r}: the influence did not land in the weights (failed checks: "
            f"{', '.join(failed) or 'unknown'}); see influence_report.json"
        )

    batch_size = int(cfg.train.batch_size)
    init_val = _evaluate(model, data.val, batch_size)
    reference = {
        "init/val_loss": init_val,
        "init/val_norm_loss": data.norm_loss(init_val, "val"),
        "baseline/val_loss": data.baseline_loss["val"],
    }
    if evaluate_test:  # a tuning trial must not even see a number derived from the test split
        reference["baseline/test_loss"] = data.baseline_loss["test"]
        reference.update({f"baseline/{name}": value for name, value in data.extra_baselines.items()})
    logger.log_metrics(reference)

    steps_per_epoch = math.ceil(len(data.train[0]) / batch_size)
    recorder = StepRecorder(steps_per_epoch)
    model.attach_recorder(recorder, clip_norm=cfg.train.clip_norm)
    probe_size = min(int(cfg.train.gate_probe_batch), len(data.val[0]))
    probe = GateProbe(model, data.val[0][:probe_size]) if probe_size > 0 else None
    monitor = EpochMonitor(cfg, data, recorder, probe, logger, epoch_hook)

    model.fit(
        *data.train,
        validation_data=data.val,
        epochs=int(cfg.train.epochs),
        batch_size=batch_size,
        shuffle=True,
        verbose=int(cfg.train.verbose),
        callbacks=[monitor],
    )
    record = monitor.history
    steps = np.concatenate(record.step_loss) if record.step_loss else np.array([])
    grads = np.concatenate(record.step_grad_norm) if record.step_grad_norm else np.array([])
    summary = m.summarize(
        record.val_loss,
        record.val_norm_loss,
        steps,
        grads,
        target=float(cfg.train.target_norm_loss),
        spike_factor=float(cfg.train.spike_factor),
        spike_window=int(cfg.train.spike_window),
        diverged=record.diverged,
    )
    summary["final/val_loss"] = record.val_loss[-1] if record.val_loss else math.nan
    summary["final/epoch"] = float(len(record.val_loss))
    if evaluate_test:
        test_loss = _evaluate(model, data.test, batch_size)
        summary["test/loss"] = test_loss
        summary["test/norm_loss"] = data.norm_loss(test_loss, "test")
        if data.is_classification:
            summary["test/bpc"] = test_loss / NATS_PER_BIT

    report, influence_metrics = strategy.after_training(model, before)
    summary.update(influence_metrics)
    logger.log_json({"before": before, "after": report}, "influence_report.json")
    if record.diverged:
        logger.set_tags({"diverged": record.divergence_reason})
    if record.stopped_by_hook:
        logger.set_tags({"stopped_early": "epoch hook"})
        summary["stopped_early"] = 1.0
    logger.log_metrics(summary)
    return summary


def _check_train(cfg: DictConfig) -> None:
    check_keys(cfg)
    train_cfg = cfg.train
    positive = {"train.epochs": train_cfg.epochs, "train.batch_size": train_cfg.batch_size}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}={value}: expected a positive integer")
    if train_cfg.clip_norm is not None and not train_cfg.clip_norm > 0:
        raise ConfigError(f"train.clip_norm={train_cfg.clip_norm}: expected a positive number or null (off)")
    if train_cfg.spike_window < 1 or not train_cfg.spike_factor > 1:
        raise ConfigError(
            f"train.spike_window={train_cfg.spike_window}, train.spike_factor={train_cfg.spike_factor}: "
            "expected a window of at least 1 step and a factor above 1"
        )


def run(
    cfg: DictConfig,
    *,
    parent_run_id: str | None = None,
    extra_tags: dict[str, Any] | None = None,
    epoch_hook: EpochHook | None = None,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train one run of ``cfg`` and log it to MLflow.

    Args:
        cfg: the run's config.
        parent_run_id: make the run a child of this MLflow run (a sweep's or a tuning study's parent).
        extra_tags: more tags for the run (e.g. ``sweep_id``).
        epoch_hook: see :data:`EpochHook`.
        evaluate_test: false never touches the test split.

    Returns:
        The summary metrics plus ``run_id``, ``experiment_id`` and ``status``.

    Raises:
        Whatever went wrong, after the run was recorded as FAILED with an ``error`` tag.
    """
    with tracking.training_run(cfg, parent_run_id=parent_run_id, extra_tags=extra_tags) as logger:
        try:
            summary = train(cfg, logger, epoch_hook=epoch_hook, evaluate_test=evaluate_test)
        finally:
            keras.backend.clear_session(free_memory=True)
    tracking.announce(tracking.ui_hint(cfg.tracking.uri, logger.experiment_id, logger.run_id))
    return {**summary, "run_id": logger.run_id, "experiment_id": logger.experiment_id, "status": "FINISHED"}
