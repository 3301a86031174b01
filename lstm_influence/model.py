"""The network every strategy shares: inputs -> [encoding] -> [strategy's input layers] -> LSTM "lstm" -> Dense.

The model is a functional :class:`MonitoredModel`, whose training step can also record, per step and without
leaving the compiled function, the loss and the global gradient norm (before clipping) into a
:class:`~lstm_influence.training.monitoring.StepRecorder`. The
step itself, which differs between Keras's TensorFlow and JAX
trainers, is :func:`lstm_influence.training.backend.train_step`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
from omegaconf import DictConfig

from lstm_influence.config.schema import ConfigError
from lstm_influence.datasets.base import Dataset
from lstm_influence.strategies import Strategy, make_strategy
from lstm_influence.training import backend

if TYPE_CHECKING:
    from lstm_influence.training.monitoring import StepRecorder

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


@keras.saving.register_keras_serializable(package="lstm_influence")
class MonitoredModel(keras.Model):
    """A functional model whose train step clips gradients (optionally) and records step diagnostics.

    ``attach_recorder`` enables recording; without it the train step is Keras's own maths with optional clipping.
    """

    def attach_recorder(self, recorder: StepRecorder | None, clip_norm: float | None = None) -> None:
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


JIT_SETTINGS = {"auto": None, "true": True, "1": True, "false": False, "0": False}

# LSTM time steps of training batches (epochs × batches an epoch × seq_len) from which XLA repays its compilation on
# CPU. Measured with benchmarks/throughput.py --jit-scan (README "Performance"), 64 units, T = 100: XLA's extra
# fixed cost (compiling the train step for the full and the last partial batch, and the evaluation step) over its
# saving per epoch gave a break-even of 1.6 M training sequence-steps at batch 64 and 3.1 M at batch 128, the same
# 25,000 batch time steps: the saving is per batch step (fewer, fused kernel launches), not per sequence. Figures from
# a quiet machine (3 s of compiling, 95 µs saved per batch step at batch 128) give 31,000: the rule rounds to 30,000.
XLA_BREAK_EVEN_BATCH_STEPS = 30_000


def training_batch_steps(epochs: int, n_train: int, batch_size: int, seq_len: int) -> int:
    """The LSTM time steps a run trains, counted per batch: ``epochs × ⌈n_train / batch_size⌉ × seq_len``.

    >>> training_batch_steps(4, 5_000, 128, 100)  # 40 batches an epoch, the last one partial
    16000
    """
    return int(epochs) * math.ceil(int(n_train) / int(batch_size)) * int(seq_len)


def xla_pays(batch_steps: int, *, gpu: bool) -> bool:
    """Whether ``train.jit_compile=auto`` turns XLA on for a run of ``batch_steps`` training batch time steps.

    On a GPU never: the fused cuDNN LSTM kernel is not XLA-compatible and is faster. On CPU when the run trains
    at least :data:`XLA_BREAK_EVEN_BATCH_STEPS` batch time steps (:func:`training_batch_steps`), where the time XLA
    saves per step exceeds its compilation.

    >>> short, long = training_batch_steps(4, 5_000, 128, 100), training_batch_steps(30, 10_000, 64, 50)
    >>> xla_pays(short, gpu=False), xla_pays(long, gpu=False), xla_pays(long, gpu=True)
    (False, True, False)
    """
    return not gpu and batch_steps >= XLA_BREAK_EVEN_BATCH_STEPS


def resolve_jit_compile(setting: Any, *, batch_steps: int, gpu: bool | None = None) -> bool:
    """``train.jit_compile`` as a boolean: true or false as given, ``auto`` by :func:`xla_pays` (always on JAX).

    On JAX ``auto`` is always XLA: Keras runs a JAX function without it eagerly, op by op
    (:func:`lstm_influence.training.backend.xla_optional`).

    Args:
        setting: ``auto``, true or false (booleans, or their strings).
        batch_steps: the run's :func:`training_batch_steps`.
        gpu: whether the backend sees a GPU; None asks it.

    Raises:
        ConfigError: ``setting`` is none of those.
    """
    choice = _jit_choice(setting)
    if choice is not None:
        return choice
    if not backend.xla_optional():
        return True
    if gpu is None:
        gpu = backend.gpu_available()
    return xla_pays(batch_steps, gpu=gpu)


def _jit_choice(setting: Any) -> bool | None:
    # A tri-state (auto or a boolean) rather than a closed set of strings: YAML and the command line give booleans.
    if isinstance(setting, bool):
        return setting
    key = str(setting).lower()
    if key not in JIT_SETTINGS:
        raise ConfigError(f"train.jit_compile={setting!r}: expected auto, true or false")
    return JIT_SETTINGS[key]


def make_loss(data: Dataset) -> keras.losses.Loss:
    if data.loss == "mse":
        return keras.losses.MeanSquaredError()
    if data.loss == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    raise ConfigError(f"dataset loss {data.loss!r}: expected mse or sparse_categorical_crossentropy")


def make_optimizer(train_cfg: DictConfig) -> keras.optimizers.Optimizer:
    """``train.optimizer`` (a :class:`~lstm_influence.config.schema.Optimizer`, checked when the config is composed)."""
    return OPTIMIZERS[str(train_cfg.optimizer)](learning_rate=train_cfg.learning_rate)


def check_run_values(cfg: DictConfig) -> None:
    """Reject values of the right type that cannot work (the schema has already checked types and choices).

    Raises:
        ConfigError: naming the key, the bad value and what would be valid.
    """
    train_cfg = cfg.train
    for key, value in {
        "train.epochs": train_cfg.epochs,
        "train.batch_size": train_cfg.batch_size,
        "model.units": cfg.model.units,
    }.items():
        if value < 1:
            raise ConfigError(f"{key}={value}: expected a positive integer")
    if not train_cfg.learning_rate > 0:
        raise ConfigError(f"train.learning_rate={train_cfg.learning_rate}: expected a positive number")
    if train_cfg.clip_norm is not None and not train_cfg.clip_norm > 0:
        raise ConfigError(f"train.clip_norm={train_cfg.clip_norm}: expected a positive number or null (off)")
    if train_cfg.spike_window < 1 or not train_cfg.spike_factor > 1:
        raise ConfigError(
            f"train.spike_window={train_cfg.spike_window}, train.spike_factor={train_cfg.spike_factor}: "
            "expected a window of at least 1 step and a factor above 1"
        )
    if train_cfg.gate_probe_batch < 0:
        raise ConfigError(f"train.gate_probe_batch={train_cfg.gate_probe_batch}: expected 0 (off) or more sequences")
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise ConfigError(f"model.dropout={cfg.model.dropout}: expected a value in [0, 1)")
    _jit_choice(train_cfg.jit_compile)


def build_model(cfg: DictConfig, data: Dataset, strategy: Strategy | None = None) -> MonitoredModel:
    """Build and compile the model for ``cfg`` and ``data``, with ``cfg.seed`` fixing every initial weight.

    Args:
        cfg: the run's config.
        data: the dataset, which sizes the inputs and the head.
        strategy: the strategy to apply; None makes the one ``cfg.strategy`` names.

    Raises:
        ConfigError: a value that cannot work (:func:`check_run_values`) or a strategy that does not fit the data.
    """
    check_run_values(cfg)
    if strategy is None:
        strategy = make_strategy(cfg, input_dim=data.n_features, units=int(cfg.model.units), seq_len=data.seq_len)
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
        jit_compile=resolve_jit_compile(
            cfg.train.jit_compile,
            batch_steps=training_batch_steps(cfg.train.epochs, len(data.train[0]), cfg.train.batch_size, data.seq_len),
        ),
    )
    return model


# Up to this many gate activations (sequences × steps × 4·units) an evaluation runs as one batch: about 128 MB.
EVALUATION_BATCH_ACTIVATIONS = 32_000_000


def evaluation_batch_size(split_sizes: Sequence[int], seq_len: int, units: int, batch_size: int) -> int:
    """The batch size for every evaluation of a run: the largest evaluated split in one batch, when it fits.

    Each new batch shape costs a compilation (about a second under XLA), and a split evaluated in batches of
    ``batch_size`` usually ends in a partial batch of another shape. One batch per split lets the evaluation before
    training, the validation after every epoch and the test share one compiled function (one shape when val and
    test have the same size). Splits above :data:`EVALUATION_BATCH_ACTIVATIONS` gate activations fall back to
    ``batch_size``.

    Args:
        split_sizes: the sequences in each split the run evaluates (val, and test unless a tuning trial).
        seq_len, units: the sequence length and the LSTM's units.
        batch_size: the training batch size.

    >>> evaluation_batch_size([1000, 1000], 100, 64, 128), evaluation_batch_size([100_000], 100, 64, 128)
    (1000, 128)
    """
    largest = max(split_sizes)
    if largest * seq_len * 4 * units <= EVALUATION_BATCH_ACTIVATIONS:
        return largest
    return batch_size
