"""JANET, the forget-gate-only LSTM (van der Westhuizen & Lasenby 2018, "The unreasonable effectiveness of the
forget gate"), as a Keras cell, and the strategy that puts it in the LSTM's place with chrono initialisation.

Per step, with ``s_t = x_t W_f + h_{t-1} U_f + b_f``::

    c_t = σ(s_t) ⊙ c_{t-1} + (1 − σ(s_t − β)) ⊙ tanh(x_t W_c + h_{t-1} U_c + b_c),      h_t = c_t

one gate where the LSTM has three: the input gate is tied to the forget gate (shifted by β = 1), and there is no
output gate. The paper initialises the forget bias as chrono does (Tallec & Ollivier 2018):
``b_f = log U[1, T_max − 1]`` per unit, ``b_c = 0``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

import lstm_influence as li
from lstm_influence.strategies.base import Influence


@keras.saving.register_keras_serializable(package="janet_plugin")
class JanetCell(keras.layers.Layer):
    """The JANET cell: kernel ``(features, 2u)`` and recurrent kernel ``(u, 2u)`` with columns ``[forget | cell]``.

    Args:
        units: the state size.
        beta: the shift between the forget gate and the tied input gate.
        t_max: chrono's longest dependency: the forget bias is drawn from ``log U[1, t_max − 1]``.
        seed: the chrono draw's seed.
    """

    def __init__(self, units: int, beta: float = 1.0, t_max: float = 100.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.beta, self.t_max, self.seed = int(units), float(beta), float(t_max), int(seed)
        self.state_size = self.units
        self.output_size = self.units

    def chrono_forget_bias(self) -> np.ndarray:
        """The forget bias the cell starts from: ``log U[1, t_max − 1]``, drawn from ``seed``."""
        rng = np.random.default_rng(self.seed)
        return np.log(rng.uniform(1.0, self.t_max - 1.0, self.units)).astype("float32")

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(features, 2 * self.units), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, 2 * self.units), initializer="orthogonal"
        )
        bias = np.concatenate([self.chrono_forget_bias(), np.zeros(self.units, "float32")])
        self.bias = self.add_weight(name="bias", shape=(2 * self.units,), initializer=keras.initializers.Constant(bias))

    def _pre_activations(self, inputs, h):
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        return z[:, : self.units], z[:, self.units :]

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        s, z_c = self._pre_activations(inputs, h)
        c = ops.sigmoid(s) * h + (1.0 - ops.sigmoid(s - self.beta)) * ops.tanh(z_c)
        return c, [c]

    def gate_activations(self, inputs, states):
        """The interface lstm_influence reads gates through: this step's forget gate and the tied input gate."""
        h = states[0] if isinstance(states, (list, tuple)) else states
        s, _ = self._pre_activations(inputs, h)
        return {"forget": ops.sigmoid(s), "input": 1.0 - ops.sigmoid(s - self.beta)}

    def get_config(self):
        return {**super().get_config(), "units": self.units, "beta": self.beta, "t_max": self.t_max, "seed": self.seed}


class Janet(li.Strategy):
    """JANET in the LSTM's place, its forget bias chrono-initialised.

    Args:
        beta: the tied input gate's shift (the paper's β = 1).
        t_max: chrono's T_max; None: the task's horizon (the sequence length).
    """

    def __init__(self, beta: float = 1.0, t_max: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.beta, self.t_max_setting = beta, t_max

    def validate(self):
        self.t_max = self.horizon if self.t_max_setting is None else float(self.t_max_setting)
        if not self.t_max >= 2:
            raise li.ConfigError(f"strategy.t_max={self.t_max_setting}: chrono needs t_max >= 2")

    def make_lstm(self, *, units, return_sequences, dropout, name):
        if dropout:
            raise li.ConfigError(f"model.dropout={dropout}: the JANET cell takes no input dropout; use 0")
        cell = JanetCell(units, beta=self.beta, t_max=self.t_max, seed=self.seed)
        return keras.layers.RNN(cell, return_sequences=return_sequences, name=name)

    def checks(self, model):
        cell = self.lstm(model).cell
        if not isinstance(cell, JanetCell):
            found = type(cell).__name__
            return [{"name": "JANET cell in place", "passed": False, "asked": "JanetCell", "found": found}]
        bias = keras.ops.convert_to_numpy(cell.bias)
        forget, rest = bias[: self.units], bias[self.units :]
        low, high = 0.0, float(np.log(self.t_max - 1.0))
        return [
            {"name": "JANET cell in place", "passed": True, "asked": "JanetCell", "found": "JanetCell"},
            {
                "name": "forget bias = log U[1, t_max - 1]",
                "passed": bool(np.allclose(forget, cell.chrono_forget_bias()) and low <= forget.min() <= high),
                "asked": {"t_max": self.t_max, "range": [low, high]},
                "found": {"min": float(forget.min()), "max": float(forget.max())},
            },
            {"name": "cell bias = 0", "passed": bool(not rest.any()), "asked": 0.0, "found": float(np.abs(rest).max())},
        ]

    def influence(self, model):
        cell = self.lstm(model).cell
        forget = keras.ops.convert_to_numpy(cell.bias)[: self.units]
        # θ_cf: a JANET whose forget bias is not chrono-initialised starts at 0.
        return {"forget bias": Influence(np.zeros(self.units), cell.chrono_forget_bias(), forget)}
