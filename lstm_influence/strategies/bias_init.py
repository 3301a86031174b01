"""``bias_init``: gate-aware initial biases, written whole so that what is configured is what ends in the bias.

The LSTM's gate pre-activations are ``z_g = x W_g + h U_g + b_g``; with small weights at initialisation the bias
alone sets each gate's starting openness, e.g. ``f = σ(b_f)``: b_f = 1 keeps ≈ 73 % of the cell state per step.

Presets, per gate block (input, forget, cell, output):

- ``keras_default``: Keras's own: ``bias_initializer="zeros"`` with ``unit_forget_bias=True`` → (0, 1, 0, 0).
- ``zeros``: (0, 0, 0, 0).  ``forget_one``: (0, 1, 0, 0) (Jozefowicz et al. 2015).  ``forget_two``: (0, 2, 0, 0).
- ``custom``: the constants in ``strategy.gates``.
- ``chrono`` (Tallec & Ollivier 2018, eq. 16): ``b_f = log(u)``, ``u ~ U[1, T_max − 1]`` per unit, ``b_i = −b_f``,
  cell and output 0, so the forget gate's characteristic memory ``1 / (1 − σ(b_f)) ≈ u`` spans 1 … T_max − 1 steps.
- ``uniform`` (Gu et al. 2020): ``b_f = σ⁻¹(u)``, ``u ~ U[1/d, 1 − 1/d]`` per unit (d = units), ``b_i = −b_f``,
  cell and output 0, so the forget activations spread uniformly over (1/d, 1 − 1/d); no T_max to choose.
- ``uniform_stretched``: the same rule on (1/T_max, 1 − 1/T_max) instead, T_max as for chrono (the task's horizon
  by default), so the longest time scales ``1 / (1 − f)`` reach T_max rather than d. Not Gu et al.'s rule: a
  variant that tests whether reaching the horizon is what matters. It draws the same uniforms as ``uniform`` for
  the same seed, mapped onto the wider interval, so the two arms differ only in the interval.

The initialisers are :mod:`lstm_influence.layers`'s; this module maps the config onto them and proves the result.

Keras's ``unit_forget_bias=True`` (the default) calls the bias initialiser for the input and cell+output blocks
only and sets the forget block to exactly 1, silently discarding any forget value of ours: every preset except
``keras_default`` therefore sets ``unit_forget_bias=False`` and produces the whole ``(4u,)`` vector itself.

The un-influenced initialiser (θ_cf for retention) is Keras's default bias, (0, 1, 0, 0): the control run's bias,
for the random presets (chrono, uniform) as for the constant ones.
"""

from __future__ import annotations

import math
import typing
import zlib
from typing import Any, Literal

import keras
import numpy as np

from lstm_influence import gates
from lstm_influence.config.errors import ConfigError
from lstm_influence.layers import ChronoBias, GateConstantBias, UniformGateBias
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

CONSTANT_PRESETS: dict[str, dict[str, float]] = {
    "keras_default": KERAS_DEFAULT_BIAS,
    "zeros": {"input": 0.0, "forget": 0.0, "cell": 0.0, "output": 0.0},
    "forget_one": {"input": 0.0, "forget": 1.0, "cell": 0.0, "output": 0.0},
    "forget_two": {"input": 0.0, "forget": 2.0, "cell": 0.0, "output": 0.0},
}

RANDOM_PRESETS: tuple[str, ...] = ("chrono", "uniform", "uniform_stretched")
"""Presets whose forget bias is a seeded draw per unit, with ``b_i = −b_f`` and zero cell and output blocks."""


def preset_seed(preset: str, seed: int) -> int:
    """A random preset's own seed, derived from the run seed without consuming any global random stream."""
    return zlib.crc32(f"lstm_influence/{preset}/{int(seed)}".encode()) & 0x7FFFFFFF


Preset = Literal[
    "keras_default", "zeros", "forget_one", "forget_two", "chrono", "uniform", "uniform_stretched", "custom"
]
HORIZON_PRESETS: tuple[str, ...] = ("chrono", "uniform_stretched")
"""Presets that take ``t_max``, the task's horizon by default."""


class BiasInit(Strategy):
    """Gate-aware bias initialisation (see module doc); kernels keep Keras's defaults and seeds.

    Args:
        preset: ``keras_default``, ``zeros``, ``forget_one``, ``forget_two``, ``chrono``, ``uniform``,
            ``uniform_stretched`` or ``custom``.
        gates: ``custom`` only: one constant per gate block, ``{input, forget, cell, output}``; None: Keras's
            (0, 1, 0, 0).
        t_max: ``chrono`` and ``uniform_stretched`` only: the longest dependency (chrono: >= 2; uniform_stretched:
            > 2); None: the task's horizon (the sequence length).
        **kwargs: :class:`~lstm_influence.strategies.base.Strategy`'s.
    """

    def __init__(
        self,
        preset: Preset = "chrono",
        gates: dict[str, float] | None = None,
        t_max: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.preset = str(preset)
        self.gates = dict(KERAS_DEFAULT_BIAS if gates is None else gates)
        self.t_max_setting = t_max
        self.values: dict[str, float] | None = None
        self.t_max: float | None = None

    def validate(self) -> None:
        check_choice("strategy.preset", self.preset, typing.get_args(Preset))
        if self.preset == "custom":
            given = self.gates
            for gate, value in given.items():
                check_choice("strategy.gates key", gate, gates.GATES)
                check_number(f"strategy.gates.{gate}", value)
            missing = [g for g in gates.GATES if g not in given]
            if missing:
                raise ConfigError(f"strategy.gates={given}: missing {', '.join(missing)}; preset=custom sets all four")
            self.values = {g: float(given[g]) for g in gates.GATES}
        elif self.preset in CONSTANT_PRESETS:
            self.values = dict(CONSTANT_PRESETS[self.preset])
        elif self.preset in HORIZON_PRESETS:
            t_max = self.t_max_setting
            if t_max is None:
                t_max = self.horizon
                what = "the sequence length" if self.horizon == self.seq_len else "the task's dependency horizon"
                field = f"strategy.t_max=null ({what}, {self.horizon:g})"
            else:
                field = f"strategy.t_max={t_max}"
                t_max = check_number("strategy.t_max", t_max)
            if self.preset == "chrono" and not t_max >= 2:
                raise ConfigError(f"{field}: chrono needs t_max >= 2, as it draws the forget bias from U[1, t_max - 1]")
            if self.preset == "uniform_stretched" and not t_max > 2:
                raise ConfigError(
                    f"{field}: uniform_stretched needs t_max > 2, as it draws the forget activations from "
                    "U[1/t_max, 1 - 1/t_max]"
                )
            self.t_max = float(t_max)
        elif self.units < 2:
            raise ConfigError(
                f"strategy.preset=uniform with model.units={self.units}: uniform gate initialisation draws from "
                "U[1/units, 1 - 1/units], which needs units >= 2"
            )

    def bias_initializer(self) -> keras.initializers.Initializer:
        """The serialisable initialiser that writes this preset's whole bias."""
        if self.preset == "chrono":
            return ChronoBias(self.units, self.t_max, seed=preset_seed("chrono", self.seed))
        if self.preset == "uniform":
            return UniformGateBias(self.units, seed=preset_seed("uniform", self.seed))
        if self.preset == "uniform_stretched":  # uniform's own draw, on the wider interval
            return UniformGateBias(self.units, seed=preset_seed("uniform", self.seed), t_max=self.t_max)
        return GateConstantBias(self.units, **self.values)

    def make_lstm(self, **lstm_kwargs: Any) -> keras.layers.Layer:
        if self.preset == "keras_default":
            return keras.layers.LSTM(**lstm_kwargs)
        return keras.layers.LSTM(bias_initializer=self.bias_initializer(), unit_forget_bias=False, **lstm_kwargs)

    # -- proving ----------------------------------------------------------------------------------------------

    def expected_bias(self) -> np.ndarray:
        """The configured ``(4u,)`` bias: constants in numpy; for a random preset, the same seeded draw, redone."""
        if self.preset in RANDOM_PRESETS:
            return to_numpy(self.bias_initializer()((4 * self.units,)))
        return np.repeat(np.asarray([self.values[g] for g in gates.GATES], dtype=np.float32), self.units)

    def forget_range(self) -> tuple[float, float]:
        """Where a random preset's forget bias must lie: [0, log(t_max − 1)] (chrono), ±logit(1 − 1/d) (uniform),
        ±logit(1 − 1/t_max) (uniform_stretched)."""
        if self.preset == "chrono":
            return 0.0, math.log(self.t_max - 1.0)
        reach = self.t_max if self.preset == "uniform_stretched" else self.units
        edge = math.log(reach - 1.0)  # logit(1 − 1/d) = log(d − 1)
        return -edge, edge

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
        if self.preset not in RANDOM_PRESETS:
            return records + [
                check(
                    f"bias/{gate} = {self.values[gate]:g}",
                    ok,
                    asked={"preset": self.preset, gate: self.values[gate]},
                    found=summary(blocks[gate]),
                    max_abs_error=gap,
                )
                for gate in gates.GATES
                for ok, gap in [compare(blocks[gate], expected[gate])]
            ]
        return records + self._random_checks(blocks, expected)

    def _random_checks(self, blocks: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """A random preset's draw: the forget bias in its range and equal to the seeded draw, b_i = −b_f, the rest 0."""
        low, high = self.forget_range()
        b_f = blocks["forget"]
        in_range = bool(np.all(b_f >= low - 1e-6) and np.all(b_f <= high + 1e-6))
        ok_draw, gap_draw = compare(b_f, expected["forget"])
        ok_input, gap_input = compare(blocks["input"], -b_f)
        ok_rest, gap_rest = compare(np.concatenate([blocks["cell"], blocks["output"]]), np.zeros(2 * self.units))
        formula = {
            "chrono": "log U[1, t_max - 1]",
            "uniform": "logit U[1/units, 1 - 1/units]",
            "uniform_stretched": "logit U[1/t_max, 1 - 1/t_max]",
        }[self.preset]
        seed_of = "uniform" if self.preset == "uniform_stretched" else self.preset
        asked: dict[str, Any] = {"range": [low, high], "seed": preset_seed(seed_of, self.seed)}
        if self.preset in HORIZON_PRESETS:
            asked["t_max"] = self.t_max
        return [
            check(
                f"bias/forget = {formula}",
                in_range and ok_draw,
                asked=asked,
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

    def influence(self, model: keras.Model) -> dict[str, Influence]:
        bias = to_numpy(self.lstm(model).cell.bias)
        cf = keras_default_bias(self.units)
        expected = self.expected_bias()
        groups = {"bias": Influence(cf, expected, bias)}
        for gate in gates.GATES:
            cols = gates.gate_slice(gate, self.units)
            groups[f"bias/{gate}"] = Influence(cf[cols], expected[cols], bias[cols], counted=False)
        return groups
