"""A user's strategies: only ``lstm_influence.Strategy`` and Keras, as the README's plug-in section shows."""

from __future__ import annotations

import keras
import numpy as np

import lstm_influence as li
from lstm_influence.layers import GateConstantBias


class ForgetThree(li.Strategy):
    """Forget-gate bias ``forget`` (default 3), the rest of the bias 0; checks that it landed."""

    def __init__(self, forget: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.forget = forget

    def validate(self):
        if not self.forget > 0:
            raise li.ConfigError(f"strategy.forget={self.forget}: expected a positive number")

    def make_lstm(self, **lstm_kwargs):
        bias = GateConstantBias(self.units, forget=self.forget)
        return keras.layers.LSTM(bias_initializer=bias, unit_forget_bias=False, **lstm_kwargs)

    def checks(self, model):
        bias = keras.ops.convert_to_numpy(self.lstm(model).cell.bias)
        found = float(bias[self.units : 2 * self.units].mean())
        return [
            {
                "name": "forget bias",
                "passed": bool(np.isclose(found, self.forget)),
                "asked": self.forget,
                "found": found,
            }
        ]


class GRUInstead(li.Strategy):
    """A GRU in the LSTM's place: it reports no gates, so the run logs everything else."""

    def make_lstm(self, **lstm_kwargs):
        return keras.layers.GRU(**lstm_kwargs)
