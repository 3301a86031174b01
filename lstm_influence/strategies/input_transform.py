"""``input_transform``: a per-feature affine map in front of the LSTM, ``x'_t[j] = a_j · x_t[j] + s_j``.

Scaling feature j by ``a_j`` scales its rows of the kernel's effect (``x' W = x (diag(a) W) + s W``): a fixed
transform is a prior on how loudly each feature speaks to every gate, without touching the LSTM's weights.
With ``learned: true``, ``a`` and ``s`` become trainable weights (``gain``, ``offset``) initialised at the
configured values, and retention measures how much of their deviation from the identity survives training
(θ_cf: ``a = 1``, ``s = 0``). A fixed transform has nothing to retain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from lstm_influence.config import ConfigError
from lstm_influence.strategies.base import Influence, Strategy, check, check_number, compare, to_numpy

LAYER_NAME = "input_transform"
"""The transform layer's name in the model."""


@keras.saving.register_keras_serializable(package="lstm_influence")
class FeatureAffine(keras.layers.Layer):
    """``(batch, time, features)`` -> ``scale * x + shift``, per feature.

    Args:
        scale: one factor per feature.
        shift: one offset per feature.
        learned: false: fixed constants; true: trainable weights ``gain`` and ``offset`` initialised there.

    >>> layer = FeatureAffine(scale=[2.0, 1.0], shift=[0.0, -1.0])
    >>> keras.ops.convert_to_numpy(layer(np.ones((1, 1, 2), "float32"))).tolist()
    [[[2.0, 0.0]]]
    """

    def __init__(self, scale: list[float], shift: list[float], learned: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(scale) != len(shift):
            raise ValueError(f"scale has {len(scale)} values and shift {len(shift)}: expected one each per feature")
        self.scale = [float(v) for v in scale]
        self.shift = [float(v) for v in shift]
        self.learned = bool(learned)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if input_shape[-1] != len(self.scale):
            raise ValueError(f"{len(self.scale)} scales for inputs with {input_shape[-1]} features")
        if self.learned:
            self.gain = self.add_weight(
                name="gain", shape=(len(self.scale),), initializer=keras.initializers.Constant(0.0)
            )
            self.offset = self.add_weight(
                name="offset", shape=(len(self.shift),), initializer=keras.initializers.Constant(0.0)
            )
            # Constant() fills a scalar; the per-feature starting values are assigned once, here.
            self.gain.assign(np.asarray(self.scale, dtype=self.gain.dtype))
            self.offset.assign(np.asarray(self.shift, dtype=self.offset.dtype))

    def call(self, inputs: Any) -> Any:
        if self.learned:
            return inputs * self.gain + self.offset
        dtype = inputs.dtype
        scale = keras.ops.convert_to_tensor(np.asarray(self.scale), dtype=dtype)
        shift = keras.ops.convert_to_tensor(np.asarray(self.shift), dtype=dtype)
        return inputs * scale + shift

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "shift": self.shift, "learned": self.learned}


def per_feature(field: str, value: Any, n_features: int, default: float) -> np.ndarray:
    """A number, a mapping feature index -> value, or a list of ``n_features`` values, as a float vector.

    Raises:
        ConfigError: a non-finite value, an index outside ``0..n_features - 1`` or a list of the wrong length.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        out = np.full(n_features, default, dtype=np.float64)
        for key, v in value.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ConfigError(f"{field}: key {key!r} is not a feature index (0..{n_features - 1})") from None
            if not 0 <= index < n_features:
                raise ConfigError(
                    f"{field}: feature index {index} is outside the layer's {n_features} input features "
                    f"(valid 0..{n_features - 1})"
                )
            out[index] = check_number(f"{field}.{key}", v)
        return out
    if isinstance(value, (list, tuple)):
        if len(value) != n_features:
            raise ConfigError(
                f"{field}={value}: a list needs one value per input feature ({n_features}); "
                f"expected a number, a mapping feature index -> value, or a list of {n_features}"
            )
        return np.asarray([check_number(f"{field}[{i}]", v) for i, v in enumerate(value)])
    if isinstance(value, str) or value is None:
        raise ConfigError(
            f"{field}={value!r}: expected a number, a mapping feature index -> value, or a list of {n_features}"
        )
    return np.full(n_features, check_number(field, value))


class InputTransform(Strategy):
    """A fixed or learned per-feature ``scale * x + shift`` before the LSTM (see module doc).

    Config (``conf/strategy/input_transform.yaml``): ``scale`` and ``shift`` (a number for every feature, or
    a mapping feature index -> value; other features keep 1 and 0) and ``learned``.
    """

    name = "input_transform"

    def validate(self) -> None:
        self.scale = per_feature("strategy.scale", self.cfg.get("scale", 1.0), self.input_dim, 1.0)
        self.shift = per_feature("strategy.shift", self.cfg.get("shift", 0.0), self.input_dim, 0.0)
        self.learned = bool(self.cfg.get("learned", False))

    def transform_inputs(self, x: Any) -> Any:
        layer = FeatureAffine(self.scale.tolist(), self.shift.tolist(), learned=self.learned, name=LAYER_NAME)
        return layer(x)

    # -- proving ----------------------------------------------------------------------------------------------

    def _layer(self, model: keras.Model) -> FeatureAffine | None:
        try:
            layer = model.get_layer(LAYER_NAME)
        except ValueError:
            return None
        return layer if isinstance(layer, FeatureAffine) else None

    def checks(self, model: keras.Model) -> list[dict[str, Any]]:
        layer = self._layer(model)
        asked = {"scale": self.scale.tolist(), "shift": self.shift.tolist(), "learned": self.learned}
        if layer is None:
            return [check("input transform layer present", False, asked=LAYER_NAME, found="no FeatureAffine layer")]
        feeds_lstm = self.lstm(model).input is layer.output
        records = [
            check(
                "input transform feeds the LSTM",
                feeds_lstm,
                asked=f"{LAYER_NAME} -> lstm",
                found=f"lstm input from {self.lstm(model).input.name}",
            )
        ]
        if self.learned:
            gain, offset = to_numpy(layer.gain), to_numpy(layer.offset)
            trainable = {w.path for w in model.trainable_weights}
            in_trainable = layer.gain.path in trainable and layer.offset.path in trainable
        else:
            gain, offset = np.asarray(layer.scale), np.asarray(layer.shift)
            in_trainable = not layer.weights
        ok_g, gap_g = compare(gain, self.scale)
        ok_s, gap_s = compare(offset, self.shift)
        # Functional check: the layer's output on a probe equals the configured affine map.
        probe = np.linspace(-2.0, 2.0, 3 * self.input_dim, dtype=np.float32).reshape(1, 3, self.input_dim)
        ok_f, gap_f = compare(to_numpy(layer(probe)), probe * self.scale + self.shift)
        records += [
            check("gain = scale", ok_g, asked=asked["scale"], found=gain.tolist(), max_abs_error=gap_g),
            check("offset = shift", ok_s, asked=asked["shift"], found=offset.tolist(), max_abs_error=gap_s),
            check(
                "trainable" if self.learned else "fixed (no weights)",
                in_trainable and layer.learned == self.learned,
                asked={"learned": self.learned},
                found={"learned": layer.learned, "weights": [w.path for w in layer.weights]},
            ),
            check(
                "x' = scale * x + shift on a probe",
                ok_f,
                asked="scale * x + shift",
                found=f"largest gap {gap_f:.3g}",
                max_abs_error=gap_f,
            ),
        ]
        return records

    def influence(self, model: keras.Model) -> dict[str, Influence]:
        if not self.learned:
            return {}
        layer = self._layer(model)
        return {
            "gain": Influence(np.ones(self.input_dim), self.scale, to_numpy(layer.gain)),
            "offset": Influence(np.zeros(self.input_dim), self.shift, to_numpy(layer.offset)),
        }
