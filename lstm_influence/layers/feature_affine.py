"""A per-feature affine map in front of an LSTM: ``x'_t[j] = a_j · x_t[j] + s_j``.

Scaling feature j by ``a_j`` scales its rows of the kernel's effect (``x' W = x (diag(a) W) + s W``): a prior on
how loudly each feature speaks to every gate, without touching the LSTM's weights. Fixed, it is a constant map;
learned, ``a`` and ``s`` are trainable weights (``gain``, ``offset``) that start at the given values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from lstm_influence.layers.initializers import check_finite


def per_feature(name: str, value: Any, n_features: int, default: float) -> np.ndarray:
    """One float per feature from a number, a list, or a mapping feature index → value.

    A number applies to every feature; a list gives one value per feature; a mapping sets the features it names
    and leaves the others at ``default``. Indices count from 0, or from the end when negative (``{-1: 2.0}`` is the
    last feature); mapping keys may be strings of integers, as a JSON config stores them.

    Args:
        name: the argument's name, for error messages.
        value: the number, list or mapping.
        n_features: the number of input features.
        default: the value of features a mapping does not name.

    Raises:
        ValueError: a non-finite value, an index outside ``-n_features .. n_features - 1``, a list of the wrong
            length, or a value of another type.
    """
    if isinstance(value, Mapping):
        out = np.full(n_features, default, dtype=np.float64)
        seen: dict[int, Any] = {}
        for key, v in value.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name}: key {key!r} is not a feature index (valid {-n_features}..{n_features - 1})"
                ) from None
            if not -n_features <= index < n_features:
                raise ValueError(
                    f"{name}: feature index {index} is outside the layer's {n_features} input features "
                    f"(valid 0..{n_features - 1}, or {-n_features}..-1 from the end)"
                )
            position = index % n_features
            if position in seen:
                raise ValueError(f"{name}: keys {seen[position]!r} and {key!r} name the same feature {position}")
            seen[position] = key
            out[position] = check_finite(f"{name}[{key}]", v)
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n_features:
            raise ValueError(
                f"{name}={list(value)}: a list needs one value per input feature ({n_features}); "
                f"expected a number, a mapping feature index -> value, or a list of {n_features}"
            )
        return np.asarray([check_finite(f"{name}[{i}]", v) for i, v in enumerate(value)])
    if value is None or isinstance(value, (str, bool)):
        raise ValueError(f"{name}={value!r}: expected a number, a mapping feature index -> value, or a list")
    return np.full(n_features, check_finite(name, value))


def _plain(name: str, value: Any) -> Any:
    """``value`` checked as far as possible without the feature count, in a JSON-friendly form."""
    if isinstance(value, Mapping):
        plain = {}
        for key, v in value.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name}: key {key!r} is not a feature index (an integer, negative from the end)"
                ) from None
            plain[str(index)] = check_finite(f"{name}[{key}]", v)
        return plain
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [check_finite(f"{name}[{i}]", v) for i, v in enumerate(value)]
    per_feature(name, value, 1, 0.0)  # a scalar: checked now
    return float(value)


@keras.saving.register_keras_serializable(package="lstm_influence")
class FeatureAffine(keras.layers.Layer):
    """``(batch, time, features)`` → ``scale · x + shift``, per feature.

    Args:
        scale: a number for every feature, a list with one per feature, or a mapping feature index → value
            (the others 1); negative indices count from the end.
        shift: the same for the offset (the others 0).
        learned: False: fixed constants; True: trainable weights ``gain`` and ``offset`` that start there.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, …).

    Call shapes: ``(batch, time, features)`` in and out.

    >>> layer = FeatureAffine(scale={-1: 2.0}, shift=[0.0, -1.0])
    >>> keras.ops.convert_to_numpy(layer(np.ones((1, 1, 2), "float32"))).tolist()
    [[[1.0, 1.0]]]
    """

    def __init__(self, scale: Any = 1.0, shift: Any = 0.0, learned: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = _plain("scale", scale)
        self.shift = _plain("shift", shift)
        self.learned = bool(learned)
        self.scale_values: np.ndarray | None = None
        self.shift_values: np.ndarray | None = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        n_features = input_shape[-1]
        if n_features is None:
            raise ValueError(f"FeatureAffine needs a known number of features, got input shape {tuple(input_shape)}")
        self.scale_values = per_feature("scale", self.scale, int(n_features), 1.0)
        self.shift_values = per_feature("shift", self.shift, int(n_features), 0.0)
        if self.learned:
            self.gain = self.add_weight(name="gain", shape=(n_features,), initializer=self._start(self.scale_values))
            self.offset = self.add_weight(
                name="offset", shape=(n_features,), initializer=self._start(self.shift_values)
            )

    @staticmethod
    def _start(values: np.ndarray) -> Any:
        return lambda shape, dtype=None: keras.ops.convert_to_tensor(np.reshape(values, shape), dtype=dtype)

    def call(self, inputs: Any) -> Any:
        if self.learned:
            return inputs * self.gain + self.offset
        scale = keras.ops.convert_to_tensor(self.scale_values, dtype=inputs.dtype)
        shift = keras.ops.convert_to_tensor(self.shift_values, dtype=inputs.dtype)
        return inputs * scale + shift

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Sequence[int | None]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "shift": self.shift, "learned": self.learned}
