"""The interface every influence strategy implements, and the plain-Keras behaviour it starts from.

A strategy touches the model at two places only: what the LSTM sees (``transform_inputs``) and the LSTM layer
itself (``make_lstm``). It then proves its influence landed (``verify``) and, after training, says how much of it
survived (``after_training``). The model builder and the runner know nothing else about strategies.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
from omegaconf import DictConfig


class Strategy:
    """The control: a plain ``keras.layers.LSTM`` with Keras defaults and nothing injected.

    Args:
        cfg: the ``strategy`` config node.
        input_dim: the LSTM's input features.
        units: the LSTM's units.
        seq_len: the sequence length (chrono's default ``t_max``).
    """

    name: ClassVar[str] = "baseline"

    def __init__(self, cfg: DictConfig, *, input_dim: int, units: int, seq_len: int) -> None:
        self.cfg = cfg
        self.input_dim = int(input_dim)
        self.units = int(units)
        self.seq_len = int(seq_len)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`lstm_influence.config.ConfigError` for a configuration that cannot work."""

    def transform_inputs(self, x: Any) -> Any:
        """Layers between the (encoded) inputs and the LSTM; the identity by default."""
        return x

    def make_lstm(self, **lstm_kwargs: Any) -> keras.layers.Layer:
        """The LSTM layer; ``lstm_kwargs`` carry units, return_sequences, dropout and name."""
        return keras.layers.LSTM(**lstm_kwargs)

    def verify(self, model: keras.Model) -> dict[str, Any]:
        """Read the built weights and report, per target, what was asked and what is there.

        Returns a JSON-serialisable dict with at least ``strategy``, ``passed`` (bool) and ``checks``
        (a list of dicts, each with ``name`` and ``passed``).
        """
        return {"strategy": self.name, "passed": True, "checks": []}

    def after_training(self, model: keras.Model, before: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        """After training: the report extended with what survived, and the metrics to log.

        Args:
            model: the trained model.
            before: what :meth:`verify` returned before training.

        Returns:
            ``(report, metrics)``: metrics such as ``influence/retention``; none for the baseline.
        """
        return dict(before), {}
