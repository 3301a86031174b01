"""How a recurrent layer reports its gate activations: the interface the framework's gate metrics read.

A recurrent cell reports its gates with one method::

    def gate_activations(self, inputs, states) -> dict[str, tensor]

the gate activations the cell applies at one step, each ``(batch, units)`` with values in [0, 1], given that step's
inputs ``(batch, features)`` and the states before it, exactly as the cell's ``call(inputs, states)`` receives them.
The keys name the gates: ``input``, ``forget`` and ``output`` are the ones the framework summarises (a cell reports
those it has: a forget-gate-only cell returns ``{"forget": f}``); other keys are kept but not summarised.

The layer keeps its own maths and gate layout: :func:`read_gates` runs the layer's own cell over a batch, one step
at a time from the layer's initial state, and asks the cell for its gates before each step. Provided here:

- :class:`~lstm_influence.layers.ExtraVariableLSTMCell` has the method (on its effective kernel).
- A stock ``keras.layers.LSTMCell`` is read by :func:`lstm_cell_gate_activations`, the same method written from
  outside: ``σ(x W + h U + b)`` on the cell's own weights and ``recurrent_activation``, in Keras's i, f, c, o column
  layout (:mod:`lstm_influence.gates`).

Any other cell (a GRU's, a user's without the method) has no gate reading: :func:`gate_reader` raises
:class:`GatesUnavailable` with the reason, which a run records instead of its gate metrics.

>>> import keras, numpy as np
>>> layer = keras.layers.LSTM(4)
>>> x = np.zeros((2, 3, 5), "float32")
>>> _ = layer(x)
>>> sorted(read_gates(layer, x)), read_gates(layer, x)["forget"].shape
(['forget', 'input', 'output'], (2, 3, 4))
>>> gate_reader(keras.layers.GRU(4))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
lstm_influence.layers.gate_reading.GatesUnavailable: the recurrent layer GRU (cell GRUCell) does not report ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from lstm_influence import gates

METHOD = "gate_activations"
"""The name of a cell's gate-reporting method."""


class GatesUnavailable(ValueError):
    """The layer does not report its gates; the message says why."""


def lstm_cell_gate_activations(cell: keras.layers.LSTMCell, inputs: Any, states: Any) -> dict[str, Any]:
    """A Keras ``LSTMCell``'s input, forget and output gates at one step (see the module doc).

    Args:
        cell: a built ``LSTMCell`` (or subclass whose ``kernel`` and ``recurrent_kernel`` are the effective ones).
        inputs: the step's inputs, ``(batch, features)``.
        states: ``[h, c]`` before the step.
    """
    h = states[0]
    z = ops.add(ops.matmul(inputs, cell.kernel), ops.matmul(h, cell.recurrent_kernel))
    if cell.use_bias:
        z = ops.add(z, cell.bias)
    units = int(cell.units)
    return {
        gate: cell.recurrent_activation(z[:, gates.gate_slice(gate, units)]) for gate in ("input", "forget", "output")
    }


def gate_reader(layer: keras.layers.Layer) -> Callable[[Any, Any], dict[str, Any]]:
    """The function that gives ``layer``'s cell's gates at one step, ``(inputs, states) -> {gate: activations}``.

    Raises:
        GatesUnavailable: the layer has no cell, or its cell neither has :data:`METHOD` nor is a stock
            ``keras.layers.LSTMCell``.
    """
    cell = getattr(layer, "cell", None)
    if cell is None:
        raise GatesUnavailable(
            f"the recurrent layer {type(layer).__name__} has no cell whose gates could be read (expected a Keras "
            f"recurrent layer with a .cell that has a {METHOD}(inputs, states) method)"
        )
    method = getattr(cell, METHOD, None)
    if callable(method):
        return method
    if type(cell) is keras.layers.LSTMCell:
        return lambda inputs, states: lstm_cell_gate_activations(cell, inputs, states)
    raise GatesUnavailable(
        f"the recurrent layer {type(layer).__name__} (cell {type(cell).__name__}) does not report its gates: its "
        f"cell has no {METHOD}(inputs, states) method (see lstm_influence.layers.gate_reading)"
    )


class GateRecordingCell(keras.layers.Layer):
    """A cell that steps another cell and outputs the gates it reports at each step, concatenated.

    Wrapped in ``keras.layers.RNN(..., return_sequences=True)`` it runs the recurrence in the backend's own loop
    (compiled where the caller compiles), on the wrapped cell's current weights; it creates no weights of its own.

    Args:
        layer: the built recurrent layer whose cell is stepped (its gates are read by :func:`gate_reader`).
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reader = gate_reader(layer)
        self.inner = layer.cell
        self.state_size = self.inner.state_size
        # The gates' names and widths, from one step on zeros: the reader is the only place that knows them.
        features = int(layer.input.shape[-1]) if _has_input(layer) else int(self.inner.kernel.shape[0])
        probe = self.reader(ops.zeros((1, features)), layer.get_initial_state(1))
        self.gate_names = tuple(probe)
        self.widths = tuple(int(probe[name].shape[-1]) for name in self.gate_names)
        self.output_size = sum(self.widths)

    def build(self, input_shape: Any) -> None:
        self.built = True

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        reported = self.reader(inputs, states)
        _, new_states = self.inner(inputs, states, training=False)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        return ops.concatenate([ops.cast(reported[name], "float32") for name in self.gate_names], axis=-1), new_states

    def split(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """Concatenated outputs ``(batch, time, Σ widths)`` back to ``{gate: (batch, time, width)}``."""
        bounds = np.cumsum((0, *self.widths))
        return {name: outputs[..., bounds[k] : bounds[k + 1]] for k, name in enumerate(self.gate_names)}


def _has_input(layer: keras.layers.Layer) -> bool:
    try:
        return layer.input is not None
    except (AttributeError, ValueError):  # a layer called eagerly has no symbolic input
        return False


def read_gates(layer: keras.layers.Layer, x: Any) -> dict[str, np.ndarray]:
    """Run ``layer``'s own cell over ``x`` and collect the gate activations it reports at every step.

    Args:
        layer: a built Keras recurrent layer (``layer.cell``, ``layer.get_initial_state``).
        x: the layer's inputs, ``(batch, time, features)``.

    Returns:
        ``{gate: activations}``, each a float32 array ``(batch, time, units)``.

    Raises:
        GatesUnavailable: see :func:`gate_reader`.
        ValueError: ``x`` is not ``(batch, time >= 1, features)``.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] == 0:
        raise ValueError(f"read_gates expects x of shape (batch, time >= 1, features), got {x.shape}")
    cell = GateRecordingCell(layer)
    outputs = keras.layers.RNN(cell, return_sequences=True)(x)
    return cell.split(ops.convert_to_numpy(outputs))


__all__ = [
    "METHOD",
    "GateRecordingCell",
    "GatesUnavailable",
    "gate_reader",
    "lstm_cell_gate_activations",
    "read_gates",
]
