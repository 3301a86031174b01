"""``input_transform``: a per-feature affine map in front of the LSTM, ``x'_t[j] = a_j · x_t[j] + s_j``.

Scaling feature j by ``a_j`` scales its rows of the kernel's effect (``x' W = x (diag(a) W) + s W``): a fixed
transform is a prior on how loudly each feature speaks to every gate, without touching the LSTM's weights.
With ``learned: true``, ``a`` and ``s`` become trainable weights (``gain``, ``offset``) initialised at the
configured values, and retention measures how much of their deviation from the identity survives training
(θ_cf: ``a = 1``, ``s = 0``). A fixed transform has nothing to retain.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from lstm_influence.layers import FeatureAffine
from lstm_influence.layers.feature_affine import per_feature as layer_per_feature
from lstm_influence.strategies.base import Influence, Strategy, check, compare, config_errors, to_numpy

LAYER_NAME = "input_transform"
"""The transform layer's name in the model."""


def per_feature(field: str, value: Any, n_features: int, default: float) -> np.ndarray:
    """:func:`lstm_influence.layers.feature_affine.per_feature` on a config value, errors as :class:`ConfigError`.

    A number, a mapping feature index -> value (negative indices count from the end) or a list of ``n_features``.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    with config_errors():
        return layer_per_feature(field, value, n_features, default)


class InputTransform(Strategy):
    """A fixed or learned per-feature ``scale * x + shift`` before the LSTM (see module doc).

    The layer is :class:`lstm_influence.layers.FeatureAffine`.

    Args:
        scale: a number for every feature, a mapping feature index -> value (negative indices count from the end;
            other features keep 1) or a list with one value per feature.
        shift: the same for the offset (other features keep 0).
        learned: false: a fixed transform; true: a trainable per-feature gain and offset initialised there.
        **kwargs: :class:`~lstm_influence.strategies.base.Strategy`'s.
    """

    def __init__(
        self,
        scale: float | list[float] | dict[int, float] = 1.0,
        shift: float | list[float] | dict[int, float] = 0.0,
        learned: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scale_setting, self.shift_setting, self.learned = scale, shift, bool(learned)

    def validate(self) -> None:
        self.scale = per_feature("strategy.scale", self.scale_setting, self.input_dim, 1.0)
        self.shift = per_feature("strategy.shift", self.shift_setting, self.input_dim, 0.0)

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
            gain, offset = np.asarray(layer.scale_values), np.asarray(layer.shift_values)
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
