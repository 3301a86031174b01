"""The network every strategy shares: inputs -> [one-hot] -> [strategy's input layers] -> LSTM "lstm" -> Dense "head".

A strategy touches it at two places only, what the LSTM sees (``transform_inputs``) and the LSTM layer itself
(``make_lstm``); everything else is the same for every arm of a comparison. :func:`network` only wires the layers:
the training stage turns them into a compiled model with its monitored train step
(:func:`lstm_influence.training.trainable.build_model`; ``li.build_model`` from Python).
"""

from __future__ import annotations

import keras
from omegaconf import DictConfig

from lstm_influence.datasets.base import Dataset
from lstm_influence.layers.one_hot import OneHot
from lstm_influence.strategies import Strategy


def network(cfg: DictConfig, data: Dataset, strategy: Strategy) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The model's symbolic inputs and outputs for ``cfg.model``, ``data`` and ``strategy``, its weights built.

    ``cfg.seed`` fixes every initial weight: the global Keras seed is set before the first layer draws.

    Args:
        cfg: the run's config (``model.units``, ``model.dropout``, ``seed``), already validated.
        data: the dataset, which sizes the inputs and the head; token ids (``data.input_vocab``) go in one-hot.
        strategy: the strategy, sized for this data.
    """
    keras.utils.set_random_seed(int(cfg.seed))
    if data.input_vocab is not None:
        inputs = keras.Input(shape=(data.seq_len,), dtype="int32", name="tokens")
        x = OneHot(data.input_vocab, name="one_hot")(inputs)
    else:
        inputs = keras.Input(shape=(data.seq_len, data.n_features), name="features")
        x = inputs
    x = strategy.transform_inputs(x)
    lstm = strategy.make_lstm(
        units=int(cfg.model.units),
        return_sequences=data.sequence_output,
        dropout=float(cfg.model.dropout),
        name="lstm",
    )
    x = lstm(x)
    outputs = keras.layers.Dense(data.output_dim, name="head")(x)
    return inputs, outputs
