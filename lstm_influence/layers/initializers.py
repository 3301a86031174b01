"""Gate-aware initializers for the weights of a Keras LSTM.

Keras's ``LSTMCell`` stacks its four gates side by side along the last axis of every weight, in the order
i, f, c, o (input, forget, cell candidate, output): ``kernel (input_dim, 4u)``, ``recurrent_kernel (u, 4u)``,
``bias (4u,)``. With small weights at initialisation the bias alone sets each gate's openness, e.g. the forget gate
``f = σ(b_f)`` keeps a fraction σ(b_f) of the cell state per step, so the bias is where prior knowledge about
time scales goes.

**The unit_forget_bias trap.** ``keras.layers.LSTM(unit_forget_bias=True)``, its default, does not call the bias
initializer with the bias's shape ``(4u,)``: it calls it with ``(u,)`` for the input block and ``(2u,)`` for the
cell and output blocks, and writes 1 into the forget block itself. An initializer that reads its gate blocks from
the shape then writes the wrong gates, silently, whenever ``u`` is a multiple of 4. Every bias initializer here
therefore takes the layer's ``units`` and refuses any shape but ``(4 · units,)``, with a ``ValueError`` naming the
fix: ``keras.layers.LSTM(units, bias_initializer=..., unit_forget_bias=False)``.

**Seeds** follow Keras's initializers: an integer reproduces the draw; ``seed=None`` draws a fresh seed from
Python's ``random`` at every call, so each layer gets its own values (and ``keras.utils.set_random_seed`` makes the
whole model reproducible).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from lstm_influence import gates

OPS: tuple[str, ...] = ("constant", "add", "scale")
"""What a :class:`GateTargetInitializer` target does to its entries: set them, add to them, multiply them."""


def check_seed(seed: Any) -> int | None:
    """``seed`` as an int, or None; anything else is a ``ValueError``."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: expected an integer (a reproducible draw) or None (a fresh draw per layer)")
    return int(seed)


def draw_seed(seed: int | None) -> int:
    """The seed of one draw: ``seed`` itself, or for None a fresh one from Python's ``random`` (as Keras draws)."""
    return seed if seed is not None else random.randint(1, int(1e9))


def check_units(units: Any) -> int:
    """``units`` as a positive int, or a ``ValueError`` naming it."""
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
        raise ValueError(f"units={units!r}: expected a positive integer, the LSTM's units")
    return int(units)


def check_finite(name: str, value: Any) -> float:
    """``value`` as a finite float, or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r}: expected a number")
    if not math.isfinite(value):
        raise ValueError(f"{name}={value}: expected a finite number")
    return float(value)


def check_bias_shape(initializer: str, units: int, shape: Sequence[int]) -> None:
    """Refuse any bias shape but ``(4 · units,)``: the sign that ``unit_forget_bias=True`` is splitting the call.

    Raises:
        ValueError: naming ``unit_forget_bias=False`` as the fix.
    """
    shape = tuple(int(s) for s in shape)
    if shape == (4 * units,):
        return
    if shape in ((units,), (2 * units,)):
        raise ValueError(
            f"{initializer}(units={units}) was called with shape {shape} instead of the whole bias (4 × units,) = "
            f"({4 * units},): the LSTM has unit_forget_bias=True (Keras's default), which calls the bias initializer "
            f"block by block and overwrites the forget block with 1s. Build the layer with unit_forget_bias=False, "
            f"e.g. keras.layers.LSTM({units}, bias_initializer=..., unit_forget_bias=False)"
        )
    raise ValueError(
        f"{initializer}(units={units}) was called with shape {shape}: an LSTM bias has shape (4 × units,) = "
        f"({4 * units},). Give the initializer the layer's own units, and build the layer with "
        f"unit_forget_bias=False so that Keras passes the whole bias"
    )


class GateBias(keras.initializers.Initializer):
    """Base of the gate-aware bias initializers: checks the shape, then writes the four blocks of ``(4u,)``.

    Subclasses implement :meth:`blocks`, returning the input, forget, cell and output blocks, each ``(u,)``.

    Args:
        units: the LSTM's units ``u``; the initializer accepts exactly the shape ``(4u,)``.
    """

    def __init__(self, units: int) -> None:
        self.units = check_units(units)

    def blocks(self, dtype: str) -> tuple[Any, Any, Any, Any]:
        """The input, forget, cell and output bias blocks, each of shape ``(units,)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement blocks(dtype)")

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        check_bias_shape(type(self).__name__, self.units, shape)
        dtype = keras.backend.standardize_dtype(dtype or keras.backend.floatx())
        return ops.concatenate([ops.cast(block, dtype) for block in self.blocks(dtype)])

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units}


@keras.saving.register_keras_serializable(package="lstm_influence")
class GateConstantBias(GateBias):
    """A bias constant within each gate block: ``b = (input, forget, cell, output)``, each repeated ``units`` times.

    ``GateConstantBias(u, forget=1.0)`` is Jozefowicz et al. (2015)'s forget-gate bias 1, written whole.

    Args:
        units: the LSTM's units.
        input, forget, cell, output: the constant of each gate block.

    >>> init = GateConstantBias(2, forget=2.0)
    >>> keras.ops.convert_to_numpy(init((8,))).tolist()
    [0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    >>> layer = keras.layers.LSTM(2, bias_initializer=init, unit_forget_bias=False)
    >>> _ = layer(np.zeros((1, 3, 5), "float32"))
    >>> keras.ops.convert_to_numpy(layer.cell.bias).tolist()
    [0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(
        self, units: int, input: float = 0.0, forget: float = 0.0, cell: float = 0.0, output: float = 0.0
    ) -> None:
        super().__init__(units)
        given = {"input": input, "forget": forget, "cell": cell, "output": output}
        self.values = {gate: check_finite(gate, value) for gate, value in given.items()}

    def blocks(self, dtype: str) -> tuple[Any, Any, Any, Any]:
        return tuple(ops.full((self.units,), self.values[gate], dtype=dtype) for gate in gates.GATES)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.values}


@keras.saving.register_keras_serializable(package="lstm_influence")
class ChronoBias(GateBias):
    """Chrono initialisation (Tallec & Ollivier 2018, eq. 16): ``b_f = log U[1, t_max − 1]``, ``b_i = −b_f``.

    Cell and output blocks are 0. The forget gate's characteristic memory ``1 / (1 − σ(b_f)) ≈ U`` then spans
    1 … ``t_max − 1`` steps across the units, and ``b_i = −b_f`` lets a unit that remembers long write little.

    Args:
        units: the LSTM's units.
        t_max: the longest dependency to cover, at least 2 (``t_max = 2`` gives b_f = b_i = 0).
        seed: an int reproduces the draw; None draws anew for every layer.

    >>> bias = keras.ops.convert_to_numpy(ChronoBias(3, t_max=50.0, seed=1)((12,)))
    >>> bool(np.all(bias[3:6] >= 0) and np.all(bias[3:6] <= np.log(49)) and np.all(bias[:3] == -bias[3:6]))
    True
    >>> bias[6:].tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, units: int, t_max: float, seed: int | None = None) -> None:
        super().__init__(units)
        t_max = check_finite("t_max", t_max)
        if not t_max >= 2:
            raise ValueError(f"t_max={t_max}: chrono needs t_max >= 2 (it draws the forget bias from U[1, t_max - 1])")
        self.t_max = t_max
        self.seed = check_seed(seed)

    def blocks(self, dtype: str) -> tuple[Any, Any, Any, Any]:
        u = keras.random.uniform(
            (self.units,), minval=1.0, maxval=self.t_max - 1.0, seed=draw_seed(self.seed), dtype=dtype
        )
        # U[1, 1] for t_max = 2 is the formula's own limit, log 1 = 0; clamp the float round-off below 1.
        b_f = ops.log(ops.maximum(u, ops.cast(1.0, dtype)))
        zeros = ops.zeros((self.units,), dtype=dtype)
        return -b_f, b_f, zeros, zeros

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "t_max": self.t_max, "seed": self.seed}


@keras.saving.register_keras_serializable(package="lstm_influence")
class UniformGateBias(GateBias):
    """Uniform gate initialisation (Gu et al. 2020): forget activations spread uniformly over (1/d, 1 − 1/d).

    ``b_f = −log(1/u − 1) = σ⁻¹(u)`` with ``u ~ U[1/d, 1 − 1/d]`` per unit, d = ``units``, so at initialisation
    (small weights) the forget gates ``σ(b_f) = u`` cover time scales ``1 / (1 − u)`` from about 1 to d steps
    without naming a T_max. The other gates follow the paper's LSTM, whose input gate is tied to the forget gate,
    ``i = 1 − f`` (its cell update is ``c_t = f ⊙ c_{t−1} + (1 − f) ⊙ u_t``): Keras's LSTM keeps an independent
    input gate, so ``b_i = −b_f`` starts it exactly at ``σ(−b_f) = 1 − σ(b_f)`` and lets training untie them (the
    same coupling chrono uses). Cell and output blocks are 0, as Keras initialises them.

    The stretched variant (``t_max`` given) draws ``u ~ U[1/T_max, 1 − 1/T_max]`` instead, so the longest time
    scales reach the task's horizon T_max rather than d: with d = 64 units and T = 200 steps the paper's rule tops
    out at 64 steps. This is not Gu et al.'s rule; it tests whether the reach of the time scales is what matters.

    Args:
        units: the LSTM's units d, at least 2 (the interval is empty below).
        seed: an int reproduces the draw; None draws anew for every layer.
        t_max: None for the paper's interval; a horizon above 2 stretches it to (1/t_max, 1 − 1/t_max).

    >>> bias = keras.ops.convert_to_numpy(UniformGateBias(4, seed=0)((16,)))
    >>> f = 1.0 / (1.0 + np.exp(-bias[4:8]))
    >>> bool(np.all((f >= 0.25 - 1e-6) & (f <= 0.75 + 1e-6)) and np.allclose(bias[:4], -bias[4:8]))
    True
    """

    def __init__(self, units: int, seed: int | None = None, t_max: float | None = None) -> None:
        super().__init__(units)
        if t_max is None and self.units < 2:
            raise ValueError(
                f"units={units}: uniform gate initialisation draws from U[1/units, 1 - 1/units], which needs units >= 2"
            )
        if t_max is not None and not (isinstance(t_max, int | float) and not isinstance(t_max, bool) and t_max > 2):
            raise ValueError(
                f"t_max={t_max!r}: the stretched interval (1/t_max, 1 - 1/t_max) needs a number above 2, or None"
            )
        self.seed = check_seed(seed)
        self.t_max = None if t_max is None else float(t_max)

    def blocks(self, dtype: str) -> tuple[Any, Any, Any, Any]:
        low = 1.0 / (self.t_max or self.units)
        # Drawn in float32 at least: 1 − 1/d must stay below 1 for σ⁻¹ to be finite.
        u = keras.random.uniform((self.units,), minval=low, maxval=1.0 - low, seed=draw_seed(self.seed))
        b_f = ops.cast(ops.log(u) - ops.log1p(-u), dtype)
        zeros = ops.zeros((self.units,), dtype=dtype)
        return -b_f, b_f, zeros, zeros

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed, "t_max": self.t_max}


def _check_targets(matrix: str, targets: Sequence[Mapping[str, Any]], units: int | None) -> list[dict[str, Any]]:
    checked = []
    for k, target in enumerate(targets):
        if not isinstance(target, Mapping):
            raise ValueError(f"targets[{k}]={target!r}: expected a dict with gate, op and value")
        target = dict(target)
        unknown = set(target) - {"gate", "units", "features", "op", "value"}
        if unknown:
            raise ValueError(
                f"targets[{k}]: unknown key(s) {sorted(unknown)}; valid keys: gate, units, features, op, value"
            )
        if "gate" not in target or "value" not in target:
            raise ValueError(f"targets[{k}]={target}: needs a gate and a value")
        target.setdefault("op", "constant")
        if target["op"] not in OPS:
            raise ValueError(f"targets[{k}].op={target['op']!r}: expected one of {', '.join(OPS)}")
        try:
            gates.expand_gates(target["gate"])
        except gates.TargetError as err:
            raise gates.TargetError(f"targets[{k}].{err}") from None
        if target.get("features") is not None and matrix != "kernel":
            raise ValueError(
                f"targets[{k}].features={target['features']}: features select input rows, which only "
                f"matrix='kernel' has (this initializer has matrix={matrix!r}); use None"
            )
        if units is not None and matrix != "kernel":
            # The whole block is known before any call (the kernel's rows wait for the input's features).
            resolved = gates.resolve_target(
                matrix,
                target["gate"],
                input_dim=units,
                units=units,
                unit_indices=target.get("units"),
                field=f"targets[{k}]",
            )
            gates.fit_value(target["value"], resolved, f"targets[{k}].value")
        checked.append(target)
    return checked


@keras.saving.register_keras_serializable(package="lstm_influence")
class GateTargetInitializer(keras.initializers.Initializer):
    """A base initializer followed by writes into chosen gate blocks of one LSTM weight.

    The value is ``write_n ∘ … ∘ write_1 (base(shape))``; a write on the entries S of one target is ``constant``
    (θ[S] = v), ``add`` (θ[S] += v) or ``scale`` (θ[S] *= v). Gate blocks are read from the last axis
    (``u = shape[-1] / 4``) and input rows from the first, so any ``input_dim`` and ``units`` work (an initializer
    that tests ``shape[1] == 4 · shape[0]`` writes only when ``units == input_dim``).

    Args:
        base: the base initializer (an object, name or serialised config).
        matrix: ``kernel``, ``recurrent_kernel`` or ``bias``: how rows and gate blocks are read from the shape.
        targets: dicts with ``gate`` (a gate name, ``all`` or a list), ``value`` (a number, or a list that fits
            the block: one per entry, one per column, or rows × columns), and optionally ``op``
            (``constant``, the default, ``add`` or ``scale``), ``units`` (unit indices inside each gate block)
            and ``features`` (input rows, ``kernel`` only); applied in order.
        units: the LSTM's units. Required for ``matrix="bias"``, where it guards against ``unit_forget_bias=True``
            (see the module doc); for the kernels it is checked against the shape when given.
        unit_forget_bias: bias only: draw the base as Keras does under ``unit_forget_bias=True``
            (``base((u,)) ‖ ones(u) ‖ base((2u,))``) so the writes land on top of Keras's forget bias 1; the
            layer itself must still have ``unit_forget_bias=False``.

    >>> init = GateTargetInitializer("zeros", "kernel", [{"gate": "forget", "value": 0.5, "features": [1]}])
    >>> keras.ops.convert_to_numpy(init((2, 8))).tolist()
    [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]]
    """

    def __init__(
        self,
        base: Any = "zeros",
        matrix: str = "kernel",
        targets: Sequence[Mapping[str, Any]] = (),
        units: int | None = None,
        unit_forget_bias: bool = False,
    ) -> None:
        if matrix not in gates.MATRICES:
            raise ValueError(f"matrix={matrix!r}: expected one of {', '.join(gates.MATRICES)}")
        if matrix == "bias" and units is None:
            raise ValueError(
                "matrix='bias' needs units=<the LSTM's units>, so that a call split by the layer's "
                "unit_forget_bias=True is refused instead of writing the wrong gates"
            )
        if unit_forget_bias and matrix != "bias":
            raise ValueError(f"unit_forget_bias applies to the bias only, not to matrix={matrix!r}")
        self.units = None if units is None else check_units(units)
        self.base = keras.initializers.get(base)
        self.matrix = matrix
        self.targets = _check_targets(matrix, targets, self.units)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _units(self, shape: tuple[int, ...]) -> int:
        if self.matrix == "bias":
            check_bias_shape(type(self).__name__, self.units, shape)
            return self.units
        expected_rank = 2
        if len(shape) != expected_rank or shape[-1] % 4 or (self.units is not None and shape[-1] != 4 * self.units):
            want = "4 × units" if self.units is None else f"4 × units = {4 * self.units}"
            raise ValueError(f"{self.matrix} of shape {shape}: expected (rows, {want}), gate columns i | f | c | o")
        units = shape[-1] // 4
        if self.matrix == "recurrent_kernel" and shape[0] != units:
            raise ValueError(f"recurrent_kernel of shape {shape}: expected (units, 4 × units) = ({units}, {4 * units})")
        return units

    def counterfactual(self, shape: Sequence[int], dtype: Any = None) -> Any:
        """θ_cf: what the base initializer alone draws for ``shape`` (the weight without the writes)."""
        shape = tuple(int(s) for s in shape)
        units = self._units(shape)
        if not self.unit_forget_bias:
            return self.base(shape, dtype=dtype)
        # The same three calls, with the same shapes, as LSTMCell.build makes under unit_forget_bias=True.
        return ops.concatenate(
            [
                self.base((units,), dtype=dtype),
                keras.initializers.Ones()((units,), dtype=dtype),
                self.base((units * 2,), dtype=dtype),
            ]
        )

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        shape = tuple(int(s) for s in shape)
        dtype = keras.backend.standardize_dtype(dtype or keras.backend.floatx())
        value = ops.cast(self.counterfactual(shape, dtype=dtype), dtype)
        units = self._units(shape)
        input_dim = shape[0] if self.matrix == "kernel" else units
        for k, target in enumerate(self.targets):
            resolved = gates.resolve_target(
                self.matrix,
                target["gate"],
                input_dim=input_dim,
                units=units,
                unit_indices=target.get("units"),
                features=target.get("features"),
                field=f"targets[{k}]",
            )
            block = gates.fit_value(target["value"], resolved, f"targets[{k}].value")
            if target["op"] == "scale":
                factor = np.ones(shape, dtype=dtype)
                factor[resolved.index] = block
                value = value * factor
            else:
                written = np.zeros(shape, dtype=dtype)
                written[resolved.index] = block
                value = value + written if target["op"] == "add" else ops.where(resolved.mask(), written, value)
        return value

    def get_config(self) -> dict[str, Any]:
        return {
            "base": keras.initializers.serialize(self.base),
            "matrix": self.matrix,
            "targets": self.targets,
            "units": self.units,
            "unit_forget_bias": self.unit_forget_bias,
        }
