"""``bias_init``: gate-aware initial biases, written whole so that what is configured is what ends in the bias.

The LSTM's gate pre-activations are ``z_g = x W_g + h U_g + b_g``; with small weights at initialisation the bias
alone sets each gate's starting openness, e.g. ``f = σ(b_f)``: b_f = 1 keeps ≈ 73 % of the cell state per step.

Presets, per gate block (input, forget, cell, output):

- ``keras_default``: Keras's own: ``bias_initializer="zeros"`` with ``unit_forget_bias=True`` → (0, 1, 0, 0).
- ``zeros``: (0, 0, 0, 0).  ``forget_one``: (0, 1, 0, 0) (Jozefowicz et al. 2015).  ``forget_two``: (0, 2, 0, 0).
- ``custom``: the constants in ``strategy.gates``.
- ``chrono`` (Tallec & Ollivier 2018, eq. 16): ``b_f = log(u)``, ``u ~ U[1, T_max − 1]`` per unit, ``b_i = −b_f``,
  cell and output 0, so the forget gate's characteristic memory ``1 / (1 − σ(b_f)) ≈ u`` spans 1 … T_max − 1 steps.

Keras's ``unit_forget_bias=True`` (the default) calls the bias initialiser for the input and cell+output blocks
only and sets the forget block to exactly 1, silently discarding any forget value of ours: every preset except
``keras_default`` therefore sets ``unit_forget_bias=False`` and produces the whole ``(4u,)`` vector itself.

The un-influenced initialiser (θ_cf for retention) is Keras's default bias, (0, 1, 0, 0): the control run's bias.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import keras
import numpy as np
from keras import ops

from lstm_influence import gates
from lstm_influence.config import ConfigError
from lstm_influence.strategies.base import (
    Influence,
    Strategy,
    check,
    check_choice,
    check_number,
    compare,
    summary,
    to_numpy,
)
from lstm_influence.strategies.baseline import KERAS_DEFAULT_BIAS, keras_default_bias

PRESETS: tuple[str, ...] = ("keras_default", "zeros", "forget_one", "forget_two", "chrono", "custom")
"""Valid values of ``strategy.preset``."""

CONSTANT_PRESETS: dict[str, dict[str, float]] = {
    "keras_default": KERAS_DEFAULT_BIAS,
    "zeros": {"input": 0.0, "forget": 0.0, "cell": 0.0, "output": 0.0},
    "forget_one": {"input": 0.0, "forget": 1.0, "cell": 0.0, "output": 0.0},
    "forget_two": {"input": 0.0, "forget": 2.0, "cell": 0.0, "output": 0.0},
}


def chrono_seed(seed: int) -> int:
    """The chrono draw's own seed, derived from the run seed without consuming any global random stream."""
    return zlib.crc32(f"lstm_influence/chrono/{int(seed)}".encode()) & 0x7FFFFFFF


@keras.saving.register_keras_serializable(package="lstm_influence")
class GateConstantBias(keras.initializers.Initializer):
    """A ``(4u,)`` bias constant within each gate block: ``(input, forget, cell, output)`` in Keras order.

    >>> keras.ops.convert_to_numpy(GateConstantBias(forget=2.0)((8,))).tolist()
    [0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, input: float = 0.0, forget: float = 0.0, cell: float = 0.0, output: float = 0.0) -> None:
        self.values = {"input": float(input), "forget": float(forget), "cell": float(cell), "output": float(output)}

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        units = _bias_units(shape)
        dtype = dtype or keras.backend.floatx()
        return ops.convert_to_tensor(np.repeat([self.values[g] for g in gates.GATES], units), dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return dict(self.values)


@keras.saving.register_keras_serializable(package="lstm_influence")
class ChronoBias(keras.initializers.Initializer):
    """Chrono initialisation (Tallec & Ollivier 2018): ``b_f = log U[1, t_max − 1]``, ``b_i = −b_f``, others 0.

    Args:
        t_max: the longest dependency to cover, at least 2 (``t_max = 2`` gives b_f = b_i = 0).
        seed: fixes the uniform draw, so the same seed gives the same bias.
    """

    def __init__(self, t_max: float, seed: int = 0) -> None:
        if not t_max >= 2:
            raise ValueError(f"t_max={t_max}: chrono needs t_max >= 2 (it draws from U[1, t_max - 1])")
        self.t_max = float(t_max)
        self.seed = int(seed)

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        units = _bias_units(shape)
        dtype = dtype or keras.backend.floatx()
        u = keras.random.uniform((units,), minval=1.0, maxval=self.t_max - 1.0, seed=self.seed, dtype=dtype)
        # U[1, 1] for t_max = 2: the formula's own limit, log 1 = 0.
        u = ops.maximum(u, ops.cast(1.0, dtype))
        b_f = ops.log(u)
        zeros = ops.zeros((units,), dtype=dtype)
        return ops.concatenate([-b_f, b_f, zeros, zeros])

    def get_config(self) -> dict[str, Any]:
        return {"t_max": self.t_max, "seed": self.seed}


def _bias_units(shape: tuple[int, ...]) -> int:
    if len(shape) != 1 or shape[0] % 4:
        raise ValueError(f"an LSTM bias has shape (4 × units,), got {tuple(shape)}")
    return int(shape[0]) // 4


class BiasInit(Strategy):
    """Gate-aware bias initialisation (see module doc); kernels keep Keras's defaults and seeds.

    Config (``conf/strategy/bias_init.yaml``): ``preset``, ``gates`` (``custom`` only) and ``t_max``
    (``chrono`` only; null: the sequence length).
    """

    name = "bias_init"

    def validate(self) -> None:
        self.preset = check_choice("strategy.preset", self.cfg.get("preset"), PRESETS)
        if self.preset == "custom":
            given = dict(self.cfg.get("gates") or {})
            for gate, value in given.items():
                check_choice("strategy.gates key", gate, gates.GATES)
                check_number(f"strategy.gates.{gate}", value)
            self.values = {g: float(given.get(g, 0.0)) for g in gates.GATES}
        elif self.preset in CONSTANT_PRESETS:
            self.values = dict(CONSTANT_PRESETS[self.preset])
        else:
            t_max = self.cfg.get("t_max")
            if t_max is None:
                t_max = self.seq_len
                field = f"strategy.t_max=null (the sequence length, {self.seq_len})"
            else:
                field = f"strategy.t_max={t_max}"
                t_max = check_number("strategy.t_max", t_max)
            if not t_max >= 2:
                raise ConfigError(f"{field}: chrono needs t_max >= 2, as it draws the forget bias from U[1, t_max - 1]")
            self.t_max = float(t_max)
            self.values = None

    def bias_initializer(self) -> keras.initializers.Initializer:
        """The serialisable initialiser that writes this preset's whole bias."""
        if self.preset == "chrono":
            return ChronoBias(self.t_max, seed=chrono_seed(self.seed))
        return GateConstantBias(**self.values)

    def make_lstm(self, **lstm_kwargs: Any) -> keras.layers.Layer:
        if self.preset == "keras_default":
            return keras.layers.LSTM(**lstm_kwargs)
        return keras.layers.LSTM(bias_initializer=self.bias_initializer(), unit_forget_bias=False, **lstm_kwargs)

    # -- proving ----------------------------------------------------------------------------------------------

    def expected_bias(self) -> np.ndarray:
        """The configured ``(4u,)`` bias, computed here in numpy (chrono: the same seeded draw, redone)."""
        if self.preset == "chrono":
            return to_numpy(ChronoBias(self.t_max, seed=chrono_seed(self.seed))((4 * self.units,)))
        return np.repeat(np.asarray([self.values[g] for g in gates.GATES], dtype=np.float32), self.units)

    def checks(self, model: keras.Model) -> list[dict[str, Any]]:
        cell = self.lstm(model).cell
        bias = to_numpy(cell.bias)
        blocks = gates.split_gates(bias, self.units)
        want_ufb = self.preset == "keras_default"
        records = [
            check(
                "unit_forget_bias cannot override the forget block",
                bool(cell.unit_forget_bias) == want_ufb,
                asked={"unit_forget_bias": want_ufb},
                found={"unit_forget_bias": bool(cell.unit_forget_bias)},
            )
        ]
        expected = gates.split_gates(self.expected_bias(), self.units)
        if self.preset != "chrono":
            for gate in gates.GATES:
                ok, gap = compare(blocks[gate], expected[gate])
                records.append(
                    check(
                        f"bias/{gate} = {self.values[gate]:g}",
                        ok,
                        asked={"preset": self.preset, gate: self.values[gate]},
                        found=summary(blocks[gate]),
                        max_abs_error=gap,
                    )
                )
            return records
        upper = math.log(self.t_max - 1.0)
        b_f = blocks["forget"]
        in_range = bool(np.all(b_f >= -1e-7) and np.all(b_f <= upper + 1e-6))
        ok_draw, gap_draw = compare(b_f, expected["forget"])
        ok_input, gap_input = compare(blocks["input"], -b_f)
        ok_rest, gap_rest = compare(np.concatenate([blocks["cell"], blocks["output"]]), np.zeros(2 * self.units))
        records += [
            check(
                "bias/forget = log U[1, t_max - 1]",
                in_range and ok_draw,
                asked={"t_max": self.t_max, "range": [0.0, upper], "seed": chrono_seed(self.seed)},
                found=summary(b_f),
                max_abs_error=gap_draw,
            ),
            check(
                "bias/input = -bias/forget",
                ok_input,
                asked="b_i = -b_f",
                found=summary(blocks["input"]),
                max_abs_error=gap_input,
            ),
            check(
                "bias/cell and bias/output = 0",
                ok_rest,
                asked=0.0,
                found=summary(np.concatenate([blocks["cell"], blocks["output"]])),
                max_abs_error=gap_rest,
            ),
        ]
        return records

    def influence(self, model: keras.Model) -> dict[str, Influence]:
        bias = to_numpy(self.lstm(model).cell.bias)
        cf = keras_default_bias(self.units)
        expected = self.expected_bias()
        groups = {"bias": Influence(cf, expected, bias)}
        for gate in gates.GATES:
            cols = gates.gate_slice(gate, self.units)
            groups[f"bias/{gate}"] = Influence(cf[cols], expected[cols], bias[cols], counted=False)
        return groups
