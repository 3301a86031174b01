"""The Keras LSTM gate layout, owned in one place, and the index arithmetic every strategy shares.

Keras's ``LSTMCell`` (``keras/src/layers/rnn/lstm.py``) stacks its four gates side by side along the last axis of
each weight, always in the order **i, f, c, o** (input, forget, cell candidate, output)::

    kernel            (input_dim, 4u)   columns [0:u] i, [u:2u] f, [2u:3u] c, [3u:4u] o
    recurrent_kernel  (u, 4u)           same columns; rows are the previous hidden state's units
    bias              (4u,)             same layout

and computes, per step, ``z = x_t W + h_{t-1} U + b`` split into ``z_i, z_f, z_c, z_o``::

    i = σ(z_i),  f = σ(z_f),  c_t = f ⊙ c_{t-1} + i ⊙ tanh(z_c),  o = σ(z_o),  h_t = o ⊙ tanh(c_t).

A *target* names entries of one matrix: a gate block (or ``all`` four), optionally a subset of the units inside
each block (columns) and, for ``kernel`` only, a subset of input features (rows). Everything here is numpy and
pure: it imports numpy alone (not TensorFlow, Hydra or the config schema), so configs can be validated before any
model exists and :mod:`lstm_influence.layers` can use it without the framework. Its errors are :class:`TargetError`
(a ``ValueError``); the strategies report them as configuration errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

GATES: tuple[str, ...] = ("input", "forget", "cell", "output")
"""Gate names in Keras's column order."""

ALL = "all"
"""The gate name that selects all four blocks."""

MATRICES: tuple[str, ...] = ("kernel", "recurrent_kernel", "bias")
"""The LSTM weights a target can address, by their Keras names."""


class TargetError(ValueError):
    """A target that does not fit the layer; the message names the offending field, value and valid choices."""


def gate_index(gate: str) -> int:
    """Position of ``gate`` in Keras's i, f, c, o order.

    Raises:
        TargetError: ``gate`` is not one of :data:`GATES`.
    """
    if gate not in GATES:
        raise TargetError(f"gate={gate!r}: expected one of {', '.join(GATES)}")
    return GATES.index(gate)


def expand_gates(gate: str | Sequence[str]) -> tuple[str, ...]:
    """``all`` -> the four gates; a name -> that gate; a list -> its gates in i, f, c, o order, no repeats.

    Raises:
        TargetError: an unknown name, a repeated name or an empty list.
    """
    names = [gate] if isinstance(gate, str) else list(gate)
    if not names:
        raise TargetError(f"gate={list(names)}: expected at least one of {', '.join((*GATES, ALL))}")
    if ALL in names:
        return GATES
    for name in names:
        if name not in GATES:
            raise TargetError(f"gate={name!r}: expected one of {', '.join((*GATES, ALL))}")
    if len(set(names)) != len(names):
        raise TargetError(f"gate={list(names)}: a gate is listed twice")
    return tuple(g for g in GATES if g in names)


def gate_slice(gate: str, units: int) -> slice:
    """Columns of ``gate``'s block: ``[k·u, (k+1)·u)`` with k its position in i, f, c, o."""
    k = gate_index(gate)
    return slice(k * units, (k + 1) * units)


def split_gates(array: np.ndarray, units: int) -> dict[str, np.ndarray]:
    """The four gate blocks of a kernel, recurrent kernel or bias (views along the last axis)."""
    array = np.asarray(array)
    if array.shape[-1] != 4 * units:
        raise TargetError(f"last axis {array.shape[-1]} is not 4 × units = {4 * units}")
    return {gate: array[..., gate_slice(gate, units)] for gate in GATES}


def matrix_shape(matrix: str, input_dim: int, units: int) -> tuple[int, ...]:
    """Shape of ``matrix`` in a Keras LSTM with ``input_dim`` features and ``units`` units."""
    if matrix == "kernel":
        return (input_dim, 4 * units)
    if matrix == "recurrent_kernel":
        return (units, 4 * units)
    if matrix == "bias":
        return (4 * units,)
    raise TargetError(f"matrix={matrix!r}: expected one of {', '.join(MATRICES)}")


def _check_indices(field: str, indices: Iterable[int], size: int, what: str) -> np.ndarray:
    values = list(indices)
    if not values:
        raise TargetError(f"{field}=[]: expected null (all) or at least one index in 0..{size - 1}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TargetError(f"{field}={values}: {v!r} is not an integer index")
        if not 0 <= v < size:
            raise TargetError(f"{field}={values}: index {v} is outside the layer's {size} {what} (valid 0..{size - 1})")
    if len(set(values)) != len(values):
        raise TargetError(f"{field}={values}: an index is listed twice")
    return np.asarray(values, dtype=np.int64)


@dataclass(frozen=True)
class Target:
    """Resolved entries of one LSTM matrix: ``rows`` × ``cols`` (``rows`` is None for the 1-D bias).

    Attributes:
        matrix: ``kernel``, ``recurrent_kernel`` or ``bias``.
        gates: the gate blocks, in i, f, c, o order.
        rows: row indices (input features for ``kernel``, previous-state units for ``recurrent_kernel``).
        cols: absolute column indices: for each gate in ``gates``, its block offset plus each selected unit.
        shape: the full matrix shape.
    """

    matrix: str
    gates: tuple[str, ...]
    rows: np.ndarray | None
    cols: np.ndarray
    shape: tuple[int, ...]

    @property
    def block_shape(self) -> tuple[int, ...]:
        """Shape of the selected block: ``(len(rows), len(cols))``, or ``(len(cols),)`` for the bias."""
        return (len(self.cols),) if self.rows is None else (len(self.rows), len(self.cols))

    @property
    def index(self) -> tuple[np.ndarray, ...]:
        """A numpy index selecting the block: ``array[target.index]`` has :attr:`block_shape`."""
        return (self.cols,) if self.rows is None else np.ix_(self.rows, self.cols)

    def mask(self) -> np.ndarray:
        """A boolean array of :attr:`shape`, true on the targeted entries."""
        mask = np.zeros(self.shape, dtype=bool)
        mask[self.index] = True
        return mask


def resolve_target(
    matrix: str,
    gate: str | Sequence[str],
    *,
    input_dim: int,
    units: int,
    unit_indices: Sequence[int] | None = None,
    features: Sequence[int] | None = None,
    field: str = "target",
) -> Target:
    """Resolve a target against an actual layer, checking every index against its real size.

    Args:
        matrix: ``kernel``, ``recurrent_kernel`` or ``bias``.
        gate: a gate name, ``all``, or a list of gate names.
        input_dim: the layer's input features (rows of ``kernel``).
        units: the layer's units ``u`` (each gate block has ``u`` columns).
        unit_indices: units inside each selected block; None for all ``u``.
        features: input-feature rows, ``kernel`` only; None for all rows.
        field: the config path used in error messages, e.g. ``strategy.targets[0]``.

    Raises:
        TargetError: with the field, the bad value and the valid choices.
    """
    if matrix not in MATRICES:
        raise TargetError(f"{field}.matrix={matrix!r}: expected one of {', '.join(MATRICES)}")
    try:
        gates = expand_gates(gate)
    except TargetError as err:
        raise TargetError(f"{field}.{err}") from None
    shape = matrix_shape(matrix, input_dim, units)
    chosen = (
        np.arange(units) if unit_indices is None else _check_indices(f"{field}.units", unit_indices, units, "units")
    )
    cols = np.concatenate([gate_index(g) * units + chosen for g in gates])
    if features is not None and matrix != "kernel":
        raise TargetError(
            f"{field}.features={list(features)}: features select input rows, which only matrix=kernel has "
            f"(this target has matrix={matrix!r}); use null"
        )
    if matrix == "bias":
        rows = None
    elif matrix == "kernel":
        rows = (
            np.arange(input_dim)
            if features is None
            else _check_indices(f"{field}.features", features, input_dim, "input features")
        )
    else:
        rows = np.arange(units)
    return Target(matrix=matrix, gates=gates, rows=rows, cols=cols, shape=shape)


def fit_value(value, target: Target, field: str = "value") -> np.ndarray:
    """``value`` broadcast to the target's block, as float64.

    Accepted: a number; a nested list of exactly :attr:`Target.block_shape`; a flat list with one value per
    selected entry (row-major); or, for 2-D blocks, a flat list with one value per selected column (the same for
    every row).

    Raises:
        TargetError: a non-numeric or non-finite value, or a list that fits none of those shapes.
    """
    block = target.block_shape
    if value is None or isinstance(value, (bool, str)):
        raise TargetError(f"{field}={value!r}: expected a number or a list of numbers")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TargetError(f"{field}={value!r}: expected a number or a list of numbers") from None
    if not np.all(np.isfinite(array)):
        raise TargetError(f"{field}={value!r}: values must be finite")
    if array.ndim == 0:
        return np.full(block, float(array))
    if array.shape == block:
        return array
    n_entries = int(np.prod(block))
    if array.ndim == 1 and array.size == n_entries:
        return array.reshape(block)
    if array.ndim == 1 and len(block) == 2 and array.size == block[1]:
        return np.broadcast_to(array, block).copy()
    choices = ["a number", f"a list of {n_entries} (one per entry)"]
    if len(block) == 2:
        choices += [f"a list of {block[1]} (one per column)", f"a nested list of shape {list(block)}"]
    raise TargetError(
        f"{field}: a list of shape {list(array.shape)} does not fit the block of shape {list(block)} "
        f"({len(target.gates)} gate(s) × units, rows × columns); expected {', or '.join(choices)}"
    )


def gate_columns_mask(gates: Sequence[str], units: int) -> np.ndarray:
    """A float ``(4u,)`` vector: 1 on the columns of ``gates``, 0 elsewhere."""
    mask = np.zeros(4 * units, dtype=np.float32)
    for gate in expand_gates(gates):
        mask[gate_slice(gate, units)] = 1.0
    return mask
