"""``baseline``: the plain Keras LSTM with Keras defaults, the control of every comparison."""

from __future__ import annotations

from lstm_influence.strategies.base import Strategy


class Baseline(Strategy):
    """Nothing injected: glorot_uniform kernel, orthogonal recurrent kernel, zero bias with forget bias 1."""

    name = "baseline"
