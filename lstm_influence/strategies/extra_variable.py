"""``extra_variable``: a new trainable variable combined with an LSTM weight matrix in the forward pass.

The layer is :class:`lstm_influence.layers.ExtraVariableLSTM` (its module states the maths: W + Δ ⊙ M, the LoRA
form W + (α/r)·(A B) ⊙ M, W ⊙ (1 + g ⊙ M), and why a full-rank Δ under Adam is W at twice the learning rate);
this module maps the config onto it and proves the result.
"""

from __future__ import annotations

import zlib
from typing import Any, Literal

import keras
import numpy as np

from lstm_influence import gates
from lstm_influence.layers import ExtraVariableLSTM, ExtraVariableLSTMCell
from lstm_influence.layers.extra_variable import (
    check_arguments,
    cudnn_conditions,
    seeded_initializer,
    variable_names,
)
from lstm_influence.metrics import EXTRA_NORM_RATIO
from lstm_influence.strategies.base import (
    Influence,
    Strategy,
    check,
    compare,
    config_errors,
    summary,
    to_numpy,
)


def prior_seed(seed: int) -> int:
    """The seed of a random ``init`` prior (and of LoRA's A), derived from the run seed without touching any global
    stream."""
    return zlib.crc32(f"lstm_influence/extra_variable/{int(seed)}".encode()) & 0x7FFFFFFF


class ExtraVariable(Strategy):
    """A trainable Δ (or per-unit gain g) combined with the LSTM kernel in the forward pass (see module doc).

    Args:
        mode: ``additive`` (W_eff = W + Δ) or ``gain`` (W_eff = W ⊙ (1 + g), g per gate unit).
        matrix: ``kernel`` or ``recurrent_kernel``.
        target_gates: the gate blocks the variable may touch (input, forget, cell, output, or all); None: all four.
        init: the variable's initial value on the targeted gates: a number, or a Keras initialiser name (a random
            prior, seeded from the run's seed). Entries outside the targeted gates are always 0.
        l2: L2 penalty ``l2 · Σ Δ²`` pulling the variable to zero (with ``rank``: on both LoRA factors).
        trainable_base: false freezes W and trains only the variable (as LoRA does).
        rank: None: a full Δ; r: Δ = (α / r) · A B, LoRA's low-rank form (additive mode, init 0).
        alpha: LoRA's scale numerator; None: the rank (a scale of 1).
        **kwargs: :class:`~lstm_influence.strategies.base.Strategy`'s.

    Retention: θ_cf is W_0 (Keras's draw with the same seed), θ_0 the effective matrix at initialisation
    (W_0 + init on M, or W_0 ⊙ (1 + init)); with ``init = 0`` Δ = 0 by construction, and the metric is instead
    ``influence/extra_norm_ratio`` = ‖W_eff − W‖ / ‖W_eff‖ over the targeted blocks after training.
    """

    def __init__(
        self,
        mode: Literal["additive", "gain"] = "additive",
        matrix: Literal["kernel", "recurrent_kernel"] = "kernel",
        target_gates: list[Literal["input", "forget", "cell", "output", "all"]] | None = None,
        init: float | str = 0.0,
        l2: float = 0.0,
        trainable_base: bool = True,
        rank: int | None = None,
        alpha: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = {
            "mode": mode,
            "matrix": matrix,
            "target_gates": list(gates.GATES if target_gates is None else target_gates),
            "init": init,
            "l2": l2,
            "trainable_base": trainable_base,
            "rank": rank,
            "alpha": alpha,
        }

    def validate(self) -> None:
        # The layer's own check: each value, and the combinations (gain needs init > -1, a rank needs additive
        # mode and init 0, ...).
        with config_errors("strategy."):
            checked = check_arguments(**self.settings, init_seed=None)
        self.mode, self.matrix, self.target_gates = checked["mode"], checked["matrix"], checked["target_gates"]
        self.init: Any = checked["init"]
        self.l2, self.trainable_base = checked["l2"], checked["trainable_base"]
        self.rank, self.alpha = checked["rank"], checked["alpha"]

    def layer_args(self) -> dict[str, Any]:
        """The :class:`ExtraVariableLSTM` arguments this config selects."""
        seeded = isinstance(self.init, str) or self.rank is not None
        return {
            "mode": self.mode,
            "matrix": self.matrix,
            "target_gates": list(self.target_gates),
            "init": self.init,
            "init_seed": prior_seed(self.seed) if seeded else None,
            "l2": self.l2,
            "trainable_base": self.trainable_base,
            "rank": self.rank,
            "alpha": self.alpha,
        }

    def make_lstm(self, **lstm_kwargs: Any) -> keras.layers.Layer:
        return ExtraVariableLSTM(
            **self.layer_args(),
            # Drawn as LSTMCell would draw them (same order, same seeds), but kept in the config so W_0 can be
            # redrawn for retention and for a model loaded from disk.
            kernel_initializer=seeded_initializer("glorot_uniform"),
            recurrent_initializer=seeded_initializer("orthogonal"),
            **lstm_kwargs,
        )

    # -- proving ----------------------------------------------------------------------------------------------

    def _parts(self, model: keras.Model) -> dict[str, np.ndarray]:
        """W, the variable, W_eff as the layer computes it, θ_cf = W_0 redrawn, and the column mask."""
        cell = self.lstm(model).cell
        base = getattr(cell, f"base_{self.matrix}")
        initializer = cell.kernel_initializer if self.matrix == "kernel" else cell.recurrent_initializer
        return {
            "W": to_numpy(base),
            "extra": to_numpy(cell.extra_value()),
            "effective": to_numpy(getattr(cell, self.matrix)),
            "cf": to_numpy(initializer(tuple(base.shape))),
            "mask": gates.gate_columns_mask(self.target_gates, self.units).astype(bool),
        }

    def _expected_extra(self, shape: tuple[int, ...]) -> np.ndarray:
        """The variable's configured initial value (Δ, (α/r)·A B, or g), built here from the config."""
        mask = gates.gate_columns_mask(self.target_gates, self.units)
        if self.rank is not None:  # B starts at 0
            return np.zeros(shape, dtype=np.float32)
        if not isinstance(self.init, str):
            return np.broadcast_to(self.init * mask, shape).astype(np.float32)
        prior = to_numpy(seeded_initializer(self.init, seed=prior_seed(self.seed))(shape))
        return prior * np.broadcast_to(mask, shape)

    def _combine(self, w: np.ndarray, extra: np.ndarray, mask: np.ndarray) -> np.ndarray:
        masked = extra * mask.astype(np.float32)
        return w + masked if self.mode == "additive" else w * (1.0 + masked)

    def checks(self, model: keras.Model) -> list[dict[str, Any]]:
        layer = self.lstm(model)
        cell = layer.cell
        names = variable_names(self.mode, self.matrix, self.rank)
        name = "Δ" if self.rank is not None else names[0]
        in_place = isinstance(layer, ExtraVariableLSTM) and isinstance(cell, ExtraVariableLSTMCell)
        records = [
            check(
                "LSTM runs the extra-variable cell",
                in_place,
                asked="ExtraVariableLSTM(ExtraVariableLSTMCell)",
                found=f"{type(layer).__name__}({type(cell).__name__})",
            )
        ]
        if not in_place:
            return records
        return records + self._wiring_checks(model, cell, names) + self._value_checks(model, layer, name)

    def _wiring_checks(self, model: keras.Model, cell: ExtraVariableLSTMCell, names: tuple[str, ...]) -> list[dict]:
        """The cell holds the asked settings, and its new variables are trainable weights of the model."""
        keys = ("mode", "matrix", "target_gates", "l2", "trainable_base", "rank", "alpha")
        asked_cfg = {key: self.layer_args()[key] for key in keys}
        found_cfg = {key: list(cell.target_gates) if key == "target_gates" else getattr(cell, key) for key in keys}
        trainable = {w.path for w in model.trainable_weights}
        variables = cell.extra_weights
        return [
            check("cell configured as asked", asked_cfg == found_cfg, asked=asked_cfg, found=found_cfg),
            check(
                f"{', '.join(names)}: trainable weights of the model",
                [v.name for v in variables] == list(names) and all(v.path in trainable for v in variables),
                asked={"names": list(names), "trainable": True},
                found={v.name: {"path": v.path, "trainable": v.path in trainable} for v in variables},
            ),
        ]

    def _value_checks(self, model: keras.Model, layer: ExtraVariableLSTM, name: str) -> list[dict]:
        """The variable holds its init on the targeted gates and 0 elsewhere, W is the Keras draw, the effective
        kernel combines them as the mode says, the L2 penalty is in place and the fused path is still eligible."""
        cell = layer.cell
        variables = cell.extra_weights
        parts = self._parts(model)
        mask = parts["mask"]
        extra = parts["extra"]
        expected_extra = self._expected_extra(extra.shape)
        ok_on, gap_on = compare(extra[..., mask], expected_extra[..., mask])
        ok_off = bool(np.all(extra[..., ~mask] == 0.0))
        ok_w, gap_w = compare(parts["W"], parts["cf"])
        ok_eff, gap_eff = compare(parts["effective"], self._combine(parts["W"], extra, mask))
        base_var = getattr(cell, f"base_{self.matrix}")
        found_l2 = {v.name: float(v.regularizer.l2) if v.regularizer is not None else 0.0 for v in variables}
        conditions = cudnn_conditions(layer)
        return [
            check(
                f"{name} = init on the targeted gates",
                ok_on,
                asked={"init": self.init, "target_gates": list(self.target_gates)},
                found=summary(extra[..., mask]),
                max_abs_error=gap_on,
            ),
            check(
                f"{name} = 0 outside the targeted gates",
                ok_off,
                asked=0.0,
                found=summary(extra[..., ~mask]),
            ),
            check(
                f"{self.matrix} (W) = the Keras draw, trainable={self.trainable_base}",
                ok_w and bool(base_var.trainable) == self.trainable_base,
                asked={
                    "initializer": "glorot_uniform" if self.matrix == "kernel" else "orthogonal",
                    "trainable": self.trainable_base,
                },
                found={**summary(parts["W"]), "trainable": bool(base_var.trainable)},
                max_abs_error=gap_w,
            ),
            check(
                f"effective {self.matrix} = "
                + {"additive": "W + Δ ⊙ M", "gain": "W ⊙ (1 + g ⊙ M)"}[self.mode]
                + ("" if self.rank is None else f", Δ = (α/r)·A B with r = {self.rank}"),
                ok_eff,
                asked=self.mode,
                found=summary(parts["effective"]),
                max_abs_error=gap_eff,
            ),
            check(
                "L2 penalty on the variable",
                all(abs(v - self.l2) <= 1e-12 for v in found_l2.values()),
                asked=self.l2,
                found=found_l2,
            ),
            check("fused cuDNN path still eligible", all(conditions.values()), asked="all true", found=conditions),
        ]

    def influence(self, model: keras.Model) -> dict[str, Influence]:
        parts = self._parts(model)
        mask = parts["mask"]
        cf = parts["cf"][..., mask]
        expected = self._combine(parts["cf"], self._expected_extra(parts["extra"].shape), mask)[..., mask]
        return {
            f"effective {self.matrix}": Influence(cf.ravel(), expected.ravel(), parts["effective"][..., mask].ravel())
        }

    def extra_metrics(self, model: keras.Model) -> dict[str, float]:
        parts = self._parts(model)
        mask = parts["mask"]
        effective = parts["effective"][..., mask]
        contribution = effective - parts["W"][..., mask]
        norm = float(np.linalg.norm(effective))
        return {EXTRA_NORM_RATIO: float(np.linalg.norm(contribution)) / norm if norm else float("nan")}

    def after_checks(self, model: keras.Model) -> list[dict[str, Any]]:
        parts = self._parts(model)
        mask = parts["mask"]
        name = "Δ" if self.rank is not None else variable_names(self.mode, self.matrix)[0]
        records = [
            check(
                f"{name} still 0 outside the targeted gates",
                bool(np.all(parts["extra"][..., ~mask] == 0.0)),
                asked=0.0,
                found=summary(parts["extra"][..., ~mask]),
            ),
            check(
                f"{name} trained on the targeted gates",
                not np.array_equal(parts["extra"][..., mask], self._expected_extra(parts["extra"].shape)[..., mask]),
                asked="changed by training",
                found=summary(parts["extra"][..., mask]),
            ),
        ]
        if not self.trainable_base:
            ok, gap = compare(parts["W"], parts["cf"])
            records.append(
                check(
                    f"frozen {self.matrix} unchanged",
                    ok,
                    asked="W_T = W_0",
                    found=summary(parts["W"]),
                    max_abs_error=gap,
                )
            )
        return records
