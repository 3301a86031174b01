"""Keras layers and initializers that push prior knowledge into an LSTM, usable in any Keras 3 model.

Importing this package imports Keras and NumPy only (no Hydra, OmegaConf, MLflow, nor TensorFlow directly), and
everything here runs on the TensorFlow and JAX backends.

- :class:`GateConstantBias`, :class:`ChronoBias`, :class:`UniformGateBias`: gate-aware LSTM bias initializers.
  Each takes the layer's ``units`` and needs ``keras.layers.LSTM(..., unit_forget_bias=False)``; under Keras's
  default ``unit_forget_bias=True`` they raise a ``ValueError`` rather than write the wrong gates.
- :class:`GateTargetInitializer`: a base initializer plus writes into chosen gate blocks, units and input rows of
  a kernel, recurrent kernel or bias.
- :class:`FeatureAffine`: a fixed or learned per-feature ``scale · x + shift`` in front of the LSTM.
- :class:`ExtraVariableLSTM` (and its :class:`ExtraVariableLSTMCell`): an LSTM whose kernel is combined with a new
  trainable variable, W + Δ (full or LoRA rank r) or W ⊙ (1 + g); ``ExtraVariableLSTM.from_lstm`` turns a
  pretrained ``keras.layers.LSTM`` into one with identical outputs at Δ = 0.

Every class is registered as a Keras serializable (package ``lstm_influence``): import this package before
``keras.models.load_model`` reads a model that uses them. So is ``one_hot.OneHot``, the framework's input encoding
of token ids, which is not part of this API.
"""

from __future__ import annotations

from lstm_influence.layers import one_hot  # noqa: F401  (registers OneHot, for load_model)
from lstm_influence.layers.extra_variable import ExtraVariableLSTM, ExtraVariableLSTMCell
from lstm_influence.layers.feature_affine import FeatureAffine
from lstm_influence.layers.initializers import ChronoBias, GateConstantBias, GateTargetInitializer, UniformGateBias

__all__ = [
    "ChronoBias",
    "ExtraVariableLSTM",
    "ExtraVariableLSTMCell",
    "FeatureAffine",
    "GateConstantBias",
    "GateTargetInitializer",
    "UniformGateBias",
]
