"""Token ids to one-hot vectors: how the framework feeds a symbol sequence (the text and copy tasks) to an LSTM.

Not part of the layers' public API (``lstm_influence.layers.__all__``): the model builder uses it, and it is
registered with Keras so that a saved model that contains it loads after ``import lstm_influence.layers``.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="lstm_influence")
class OneHot(keras.layers.Layer):
    """Token ids ``(batch, time)`` -> one-hot float vectors ``(batch, time, depth)``.

    One-hot inputs keep the LSTM kernel's rows meaning "this symbol", so kernel targets and input transforms
    address symbols directly (an embedding layer would hide them).

    >>> keras.ops.convert_to_numpy(OneHot(3)(keras.ops.convert_to_tensor([[0, 2]]))).tolist()
    [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]
    """

    def __init__(self, depth: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if depth < 1:
            raise ValueError(f"OneHot depth must be a positive integer, got {depth}")
        self.depth = int(depth)

    def call(self, inputs):
        return keras.ops.one_hot(keras.ops.cast(inputs, "int32"), self.depth)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "depth": self.depth}
