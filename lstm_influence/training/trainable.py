"""The model a run trains: the shared network (:mod:`lstm_influence.model`) as a compiled :class:`MonitoredModel`.

:class:`MonitoredModel` is a functional Keras model whose training step can also record, per step and without
leaving the compiled function, the loss and the global gradient norm (before clipping) into a step recorder
(:class:`~lstm_influence.training.monitoring.StepRecorder`). The step itself, which differs between Keras's
TensorFlow and JAX trainers, is :func:`lstm_influence.training.backend.train_step`. :func:`build_model` compiles it
with the run's optimiser, loss and XLA choice (:mod:`~lstm_influence.training.performance`).
"""

from __future__ import annotations

from typing import Any, Protocol

import keras
from omegaconf import DictConfig

from lstm_influence.config.errors import ConfigError
from lstm_influence.datasets.base import Dataset
from lstm_influence.model import network
from lstm_influence.strategies import Strategy
from lstm_influence.training import backend
from lstm_influence.training.performance import resolve_jit_compile, training_batch_steps

OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}


class Recorder(Protocol):
    """What the train step writes each step to (:class:`~lstm_influence.training.monitoring.StepRecorder`)."""

    def record(self, loss: Any, grad_norm: Any) -> None: ...


@keras.saving.register_keras_serializable(package="lstm_influence")
class MonitoredModel(keras.Model):
    """A functional model whose train step clips gradients (optionally) and records step diagnostics.

    ``attach_recorder`` enables recording; without it the train step is Keras's own maths with optional clipping.
    """

    def attach_recorder(self, recorder: Recorder | None, clip_norm: float | None = None) -> None:
        # Stored through object.__setattr__ so Keras neither tracks nor saves the recorder as model state.
        object.__setattr__(self, "_step_recorder", recorder)
        object.__setattr__(self, "_clip_norm", clip_norm)
        self.make_train_function(force=True)

    @property
    def clip_norm(self) -> float | None:
        """The global gradient norm the train step clips to; None: no clipping."""
        return getattr(self, "_clip_norm", None)

    @property
    def metrics(self) -> list:
        # The recorder rides with the metrics: on JAX the trainer passes metric variables in and out of the compiled
        # step, which is how the recorder's buffers change there. Its result is empty, so it adds no log entry.
        metrics = super().metrics
        recorder = getattr(self, "_step_recorder", None)
        return metrics if recorder is None else [*metrics, recorder]

    def train_step(self, *args):
        return backend.train_step(self, *args)

    def update_step_metrics(self, loss, grad_norm, x, y, y_pred, sample_weight) -> dict:
        """Record the step (when a recorder is attached), update the metrics, return their results as logs."""
        recorder = getattr(self, "_step_recorder", None)
        if recorder is not None:
            recorder.record(loss, grad_norm)
        logs = {}
        for metric in self.metrics:
            if metric is recorder:
                continue
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
            logs[metric.name] = metric.result()
        return logs


def make_loss(data: Dataset) -> keras.losses.Loss:
    """The loss ``data.loss`` names: ``mse``, or ``sparse_categorical_crossentropy`` on logits."""
    if data.loss == "mse":
        return keras.losses.MeanSquaredError()
    if data.loss == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    raise ConfigError(f"dataset loss {data.loss!r}: expected mse or sparse_categorical_crossentropy")


def make_optimizer(train_cfg: DictConfig) -> keras.optimizers.Optimizer:
    """``train.optimizer`` (a :class:`~lstm_influence.config.schema.Optimizer`, checked when the config is composed)."""
    return OPTIMIZERS[str(train_cfg.optimizer)](learning_rate=train_cfg.learning_rate)


def build_model(cfg: DictConfig, data: Dataset, strategy: Strategy) -> MonitoredModel:
    """The network for ``cfg``, ``data`` and ``strategy``, compiled; ``cfg.seed`` fixes every initial weight.

    Trusts ``cfg``: :func:`lstm_influence.config.validate` has checked it, and ``strategy`` was made from the
    :class:`~lstm_influence.config.ValidConfig` it returned (:func:`lstm_influence.strategies.strategy_for_data`);
    ``li.build_model`` does both for a direct call.
    """
    inputs, outputs = network(cfg, data, strategy)
    model = MonitoredModel(inputs, outputs, name=f"{strategy.name}_lstm")
    model.compile(
        optimizer=make_optimizer(cfg.train),
        loss=make_loss(data),
        jit_compile=resolve_jit_compile(
            cfg.train.jit_compile,
            batch_steps=training_batch_steps(cfg.train.epochs, len(data.train[0]), cfg.train.batch_size, data.seq_len),
        ),
    )
    return model


__all__ = ["MonitoredModel", "Recorder", "build_model", "make_loss", "make_optimizer"]
