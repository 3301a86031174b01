"""The network every strategy shares: inputs -> [encoding] -> [strategy's input layers] -> LSTM "lstm" -> Dense.

The model is a functional :class:`MonitoredModel`, whose training step also records, per step and without
leaving the graph, the loss and the global gradient norm (before clipping). The runner reads those buffers once
per epoch, so monitoring costs one device-to-host copy an epoch rather than one a step.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from omegaconf import DictConfig

from lstm_influence.config import ConfigError
from lstm_influence.datasets.base import Dataset
from lstm_influence.strategies import Strategy, make_strategy

OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}


@keras.saving.register_keras_serializable(package="lstm_influence")
class OneHot(keras.layers.Layer):
    """Token ids ``(batch, time)`` -> one-hot float vectors ``(batch, time, depth)``.

    One-hot inputs keep the LSTM kernel's rows meaning "this symbol", so kernel targets and input transforms
    address symbols directly (an embedding layer would hide them).
    """

    def __init__(self, depth: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if depth < 1:
            raise ValueError(f"OneHot depth must be a positive integer, got {depth}")
        self.depth = int(depth)

    def call(self, inputs):
        return keras.ops.one_hot(keras.ops.cast(inputs, "int32"), self.depth)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "depth": self.depth}


class StepRecorder:
    """Per-step loss and global gradient norm, written inside the compiled train step.

    Deliberately not a Keras variable: these are diagnostics, not model state, and must not be saved.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.step = tf.Variable(0, dtype=tf.int32, trainable=False, name="monitor_step")
        self.loss = tf.Variable(tf.zeros(self.capacity), trainable=False, name="monitor_loss")
        self.grad_norm = tf.Variable(tf.zeros(self.capacity), trainable=False, name="monitor_grad_norm")

    def record(self, loss, grad_norm) -> None:
        index = tf.minimum(self.step, self.capacity - 1)[None, None]
        self.loss.scatter_nd_update(index, tf.cast(loss, tf.float32)[None])
        self.grad_norm.scatter_nd_update(index, tf.cast(grad_norm, tf.float32)[None])
        self.step.assign_add(1)

    def reset(self) -> None:
        self.step.assign(0)

    def read(self) -> tuple[Any, Any]:
        """The losses and gradient norms recorded since the last reset, as numpy arrays."""
        n = min(int(self.step.numpy()), self.capacity)
        return self.loss.numpy()[:n], self.grad_norm.numpy()[:n]


@keras.saving.register_keras_serializable(package="lstm_influence")
class MonitoredModel(keras.Model):
    """A functional model whose train step clips gradients (optionally) and records step diagnostics.

    ``attach_recorder`` enables recording; without it the train step is Keras's own maths with optional clipping.
    """

    def attach_recorder(self, recorder: StepRecorder | None, clip_norm: float | None = None) -> None:
        # Stored through object.__setattr__ so Keras does not track the recorder's variables as model state.
        object.__setattr__(self, "_step_recorder", recorder)
        object.__setattr__(self, "_clip_norm", clip_norm)
        self.make_train_function(force=True)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        variables = self.trainable_variables
        gradients = tape.gradient(loss, variables)
        clip_norm = getattr(self, "_clip_norm", None)
        if clip_norm:
            gradients, grad_norm = tf.clip_by_global_norm(gradients, clip_norm)
        else:
            grad_norm = tf.linalg.global_norm(gradients)
        self.optimizer.apply(gradients, variables)
        recorder = getattr(self, "_step_recorder", None)
        if recorder is not None:
            recorder.record(loss, grad_norm)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        return {metric.name: metric.result() for metric in self.metrics}


def resolve_jit_compile(setting: Any) -> bool:
    """``auto`` -> XLA on CPU (measured faster there), off on GPU (the fused cuDNN kernel is not XLA-compatible)."""
    if isinstance(setting, bool):
        return setting
    if str(setting).lower() in {"true", "1"}:
        return True
    if str(setting).lower() in {"false", "0"}:
        return False
    if str(setting).lower() != "auto":
        raise ConfigError(f"train.jit_compile={setting!r}: expected auto, true or false")
    return not tf.config.list_physical_devices("GPU")


def make_loss(data: Dataset) -> keras.losses.Loss:
    if data.loss == "mse":
        return keras.losses.MeanSquaredError()
    if data.loss == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    raise ConfigError(f"dataset loss {data.loss!r}: expected mse or sparse_categorical_crossentropy")


def make_optimizer(train_cfg: DictConfig) -> keras.optimizers.Optimizer:
    name = str(train_cfg.optimizer).lower()
    if name not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer={train_cfg.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    if not train_cfg.learning_rate > 0:
        raise ConfigError(f"train.learning_rate={train_cfg.learning_rate}: expected a positive number")
    return OPTIMIZERS[name](learning_rate=train_cfg.learning_rate)


def strategy_for(cfg: DictConfig, data: Dataset) -> Strategy:
    """The run's strategy, validated against this dataset's input size and sequence length."""
    if cfg.model.units < 1:
        raise ConfigError(f"model.units={cfg.model.units}: expected a positive integer")
    return make_strategy(cfg, input_dim=data.n_features, units=cfg.model.units, seq_len=data.seq_len)


def build_model(cfg: DictConfig, data: Dataset, strategy: Strategy | None = None) -> MonitoredModel:
    """Build and compile the model for ``cfg`` and ``data``, with ``cfg.seed`` fixing every initial weight."""
    strategy = strategy or strategy_for(cfg, data)
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise ConfigError(f"model.dropout={cfg.model.dropout}: expected a value in [0, 1)")
    keras.utils.set_random_seed(int(cfg.seed))
    if data.input_vocab is not None:
        inputs = keras.Input(shape=(data.seq_len,), dtype="int32", name="tokens")
        x = OneHot(data.input_vocab, name="one_hot")(inputs)
    else:
        inputs = keras.Input(shape=(data.seq_len, data.n_features), name="features")
        x = inputs
    x = strategy.transform_inputs(x)
    lstm = strategy.make_lstm(
        units=int(cfg.model.units),
        return_sequences=data.sequence_output,
        dropout=float(cfg.model.dropout),
        name="lstm",
    )
    x = lstm(x)
    outputs = keras.layers.Dense(data.output_dim, name="head")(x)
    model = MonitoredModel(inputs, outputs, name=f"{strategy.name}_lstm")
    model.compile(
        optimizer=make_optimizer(cfg.train),
        loss=make_loss(data),
        jit_compile=resolve_jit_compile(cfg.train.jit_compile),
    )
    return model
