"""``baseline``: the plain Keras LSTM with Keras defaults, the control of every comparison.

Keras defaults (``keras/src/layers/rnn/lstm.py``): ``kernel ~ glorot_uniform``, ``recurrent_kernel ~ orthogonal``,
``bias = 0`` except the forget block, which ``unit_forget_bias=True`` sets to exactly 1.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lstm_influence import gates
from lstm_influence.strategies.base import Strategy, check, compare, summary, to_numpy

KERAS_DEFAULT_BIAS = {"input": 0.0, "forget": 1.0, "cell": 0.0, "output": 0.0}
"""The bias a plain Keras LSTM starts from, per gate: zeros, and 1 on the forget gate (``unit_forget_bias``)."""


def keras_default_bias(units: int) -> np.ndarray:
    """The ``(4u,)`` bias of a freshly built ``keras.layers.LSTM`` with default arguments."""
    return np.concatenate([np.full(units, KERAS_DEFAULT_BIAS[g], dtype=np.float32) for g in gates.GATES])


class Baseline(Strategy):
    """The control: :class:`Strategy`'s hooks as they are (nothing injected: glorot_uniform kernel, orthogonal
    recurrent kernel, zero bias with forget bias 1), plus the checks that prove it.

    ``verify`` confirms the layer really is that: a plain Keras LSTM whose bias blocks are (0, 1, 0, 0).
    """

    def checks(self, model: keras.Model) -> list[dict[str, Any]]:
        layer = self.lstm(model)
        cell = layer.cell
        asked = {"kernel": "GlorotUniform", "recurrent_kernel": "Orthogonal", "bias": "Zeros"}
        found = {
            "kernel": type(cell.kernel_initializer).__name__,
            "recurrent_kernel": type(cell.recurrent_initializer).__name__,
            "bias": type(cell.bias_initializer).__name__,
        }
        bias = to_numpy(cell.bias)
        ok, gap = compare(bias, keras_default_bias(self.units))
        return [
            check(
                "plain Keras LSTM",
                type(layer) is keras.layers.LSTM and type(cell) is keras.layers.LSTMCell,
                asked="keras.layers.LSTM",
                found=f"{type(layer).__module__}.{type(layer).__name__}",
            ),
            check("Keras default initialisers", found == asked, asked=asked, found=found),
            check(
                "bias = Keras default (forget 1, others 0)",
                ok and bool(cell.unit_forget_bias),
                asked={"unit_forget_bias": True, **KERAS_DEFAULT_BIAS},
                found={
                    "unit_forget_bias": bool(cell.unit_forget_bias),
                    **{g: summary(b) for g, b in gates.split_gates(bias, self.units).items()},
                },
                max_abs_error=gap,
            ),
        ]
