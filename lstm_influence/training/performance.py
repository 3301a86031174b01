"""Choices that change how fast a run trains, never what it computes: XLA on or off, the evaluation batch size.

- :func:`resolve_jit_compile`: ``train.jit_compile=auto`` turns XLA on where it repays its compilation
  (:func:`xla_pays`, from the run's :func:`training_batch_steps`); true or false are taken as given.
- :func:`evaluation_batch_size`: each split evaluated in one batch where it fits, so that every evaluation of a run
  shares one compiled function.

``tests/test_runner.py`` checks that XLA on and off train the same run within float tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lstm_influence.config.validation import jit_choice
from lstm_influence.training import backend

# LSTM time steps of training batches (epochs × batches an epoch × seq_len) from which XLA repays its compilation on
# CPU. Measured with benchmarks/throughput.py --jit-scan (README "Performance"), 64 units, T = 100: XLA's extra
# fixed cost (compiling the train step for the full and the last partial batch, and the evaluation step) over its
# saving per epoch gave a break-even of 1.6 M training sequence-steps at batch 64 and 3.1 M at batch 128, the same
# 25,000 batch time steps: the saving is per batch step (fewer, fused kernel launches), not per sequence. Figures from
# a quiet machine (3 s of compiling, 95 µs saved per batch step at batch 128) give 31,000; the rule uses a round
# number between the two measurements.
XLA_BREAK_EVEN_BATCH_STEPS = 30_000

# Up to this many gate activations (sequences × steps × 4·units) an evaluation runs as one batch: about 128 MB.
EVALUATION_BATCH_ACTIVATIONS = 32_000_000


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
    choice = jit_choice(setting)
    if choice is not None:
        return choice
    if not backend.xla_optional():
        return True
    if gpu is None:
        gpu = backend.gpu_available()
    return xla_pays(batch_steps, gpu=gpu)


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
