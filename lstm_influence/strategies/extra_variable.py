"""``extra_variable``: a new trainable variable combined with an LSTM weight matrix in the forward pass.

The seed article calls this impossible; Keras's own ``Dense`` LoRA (``keras/src/layers/core/dense.py``) shows the
pattern: keep the stored weight under another attribute and expose, through the ``kernel`` property, the weight
every consumer should see. Here, for W the chosen matrix (``kernel`` or ``recurrent_kernel``) and M the ``(4u,)``
column mask of the targeted gate blocks (broadcast over rows)::

    additive:  W_eff = W + Δ ⊙ M        Δ: same shape as W, named "<matrix>_delta"
    gain:      W_eff = W ⊙ (1 + g ⊙ M)  g: one factor per gate unit (4u,), named "<matrix>_gain"

Both consumers read the property: the CPU path (``RNN.inner_loop`` calls the cell, whose ``call`` reads
``self.kernel``) and the fused cuDNN path (``LSTM.inner_loop`` hands ``self.cell.kernel`` to ``backend.lstm``,
which accepts a plain tensor), so activation, recurrent activation, dropout, ``unroll`` and ``use_bias`` are
untouched and cuDNN stays eligible. W_eff is loop-invariant, so the layer forms it once per call, not once
per time step: the whole overhead is one multiply and one add per batch, plus the variable's optimiser update.

Entries of the variable outside M start at 0 and, their gradient being 0 through the mask, stay 0 under any
optimiser and under the L2 penalty ``l2 · ‖Δ‖²`` (a Keras regularizer, so it enters ``model.losses``).
``trainable_base: false`` freezes W, as LoRA freezes the base kernel; the other weights still train.

Keras 3.15's ``LSTM.__init__`` builds its own ``LSTMCell`` and takes no ``cell`` argument, so
:class:`ExtraVariableLSTM` hands its cell to ``keras.layers.RNN.__init__`` directly and repeats the three things
``LSTM.__init__`` does after that (input spec, ``use_cudnn``, the XLA opt-out where cuDNN runs);
``tests/test_strategies.py`` pins that its instance state equals a plain ``LSTM``'s, plus the new fields.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from lstm_influence import gates
from lstm_influence.config import ConfigError
from lstm_influence.strategies.base import (
    Influence,
    Strategy,
    check,
    check_choice,
    check_initializer_name,
    check_number,
    compare,
    seeded_initializer,
    summary,
    to_numpy,
)
from lstm_influence.strategies.custom_init import GateTargetInitializer

MODES: tuple[str, ...] = ("additive", "gain")
"""How the variable combines with W: ``W + Δ`` or ``W ⊙ (1 + g)``."""

EXTRA_MATRICES: tuple[str, ...] = ("kernel", "recurrent_kernel")
"""The matrices the variable can combine with."""

_CELL_ARGS: tuple[str, ...] = (
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)
"""``keras.layers.LSTM`` arguments that belong to its cell (as ``LSTM.__init__`` forwards them)."""


def variable_name(mode: str, matrix: str) -> str:
    """The extra variable's name: ``kernel_delta``, ``kernel_gain``, ``recurrent_kernel_delta``, …"""
    return f"{matrix}_{'delta' if mode == 'additive' else 'gain'}"


def prior_seed(seed: int) -> int:
    """The seed of a random ``init`` prior, derived from the run seed without touching any global stream."""
    return zlib.crc32(f"lstm_influence/extra_variable/{int(seed)}".encode()) & 0x7FFFFFFF


def cudnn_conditions(layer: keras.layers.LSTM) -> dict[str, bool]:
    """The layer-side conditions of Keras's fused cuDNN LSTM (``keras/src/backend/tensorflow/rnn.py``)."""
    return {
        "activation is tanh": keras.activations.serialize(layer.activation) == "tanh",
        "recurrent_activation is sigmoid": keras.activations.serialize(layer.recurrent_activation) == "sigmoid",
        "recurrent_dropout == 0": not layer.recurrent_dropout,
        "unroll is False": not layer.unroll,
        "use_bias is True": bool(layer.use_bias),
        "use_cudnn allows it": layer.use_cudnn in ("auto", True),
    }


def _init_initializer(
    init: Any, init_seed: int | None, target_gates: Sequence[str], matrix: str
) -> keras.initializers.Initializer:
    """The variable's initialiser: ``init`` (a number, or a seeded Keras prior) on M, exactly 0 outside it."""
    outside = [g for g in gates.GATES if g not in target_gates]
    zero_outside = [{"gate": g, "op": "constant", "value": 0.0} for g in outside]
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        on = [{"gate": g, "op": "constant", "value": float(init)} for g in target_gates]
        return GateTargetInitializer("zeros", matrix, on)
    return GateTargetInitializer(seeded_initializer(init, seed=init_seed), matrix, zero_outside)


@keras.saving.register_keras_serializable(package="lstm_influence")
class ExtraVariableLSTMCell(keras.layers.LSTMCell):
    """An ``LSTMCell`` whose ``kernel`` (or ``recurrent_kernel``) is W combined with a trainable variable.

    Args:
        units: as ``LSTMCell``.
        mode: ``additive`` (W + Δ ⊙ M) or ``gain`` (W ⊙ (1 + g ⊙ M)).
        matrix: ``kernel`` or ``recurrent_kernel``.
        target_gates: gate names (or ``all``) whose column blocks form the mask M.
        init: the variable's initial value on M: a number, or a Keras initialiser name/config (a prior).
        init_seed: seed of a random ``init``.
        l2: weight of the penalty ``l2 · Σ Δ²`` (0: none).
        trainable_base: false freezes W.
        **kwargs: the other ``LSTMCell`` arguments.

    The stored weights are ``base_kernel`` and ``base_recurrent_kernel`` (their variable names stay ``kernel``
    and ``recurrent_kernel``); the ``kernel`` and ``recurrent_kernel`` properties return the effective weights.
    """

    def __init__(
        self,
        units: int,
        mode: str = "additive",
        matrix: str = "kernel",
        target_gates: Sequence[str] = gates.GATES,
        init: Any = 0.0,
        init_seed: int | None = None,
        l2: float = 0.0,
        trainable_base: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, **kwargs)
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
        if matrix not in EXTRA_MATRICES:
            raise ValueError(f"matrix={matrix!r}: expected one of {', '.join(EXTRA_MATRICES)}")
        if not l2 >= 0:
            raise ValueError(f"l2={l2}: expected a number >= 0")
        self.mode = mode
        self.matrix = matrix
        self.target_gates = gates.expand_gates(target_gates)
        self.init = init
        self.init_seed = init_seed
        self.l2 = float(l2)
        self.trainable_base = bool(trainable_base)
        self.extra = None
        object.__setattr__(self, "_frozen", None)

    # LSTMCell.build assigns self.kernel / self.recurrent_kernel: the setters keep those variables as the base.
    @property
    def kernel(self) -> Any:
        return self._effective("kernel")

    @kernel.setter
    def kernel(self, value: Any) -> None:
        self.base_kernel = value

    @property
    def recurrent_kernel(self) -> Any:
        return self._effective("recurrent_kernel")

    @recurrent_kernel.setter
    def recurrent_kernel(self, value: Any) -> None:
        self.base_recurrent_kernel = value

    @property
    def column_mask(self) -> np.ndarray:
        """M: a ``(4u,)`` float vector, 1 on the targeted gate blocks."""
        return gates.gate_columns_mask(self.target_gates, self.units)

    def _effective(self, matrix: str) -> Any:
        base = getattr(self, f"base_{matrix}")
        if matrix != self.matrix or self.extra is None:
            return base
        if self._frozen is not None:
            return self._frozen
        return self.effective_matrix()

    def effective_matrix(self) -> Any:
        """W_eff from the current W and variable (see the module doc)."""
        base = getattr(self, f"base_{self.matrix}")
        extra = self.extra
        if len(self.target_gates) < len(gates.GATES):
            extra = extra * ops.convert_to_tensor(self.column_mask, dtype=extra.dtype)
        if self.mode == "additive":
            return ops.add(base, extra)
        return ops.multiply(base, ops.add(1.0, extra))

    @contextmanager
    def frozen_effective_matrix(self) -> Iterator[None]:
        """Within the block, ``kernel`` returns one W_eff tensor (formed once), not a new one per read."""
        object.__setattr__(self, "_frozen", self.effective_matrix() if self.extra is not None else None)
        try:
            yield
        finally:
            object.__setattr__(self, "_frozen", None)

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        base = getattr(self, f"base_{self.matrix}")
        shape = tuple(base.shape) if self.mode == "additive" else (4 * self.units,)
        layout = self.matrix if self.mode == "additive" else "bias"  # the gain vector has the bias's layout
        self.extra = self.add_weight(
            name=variable_name(self.mode, self.matrix),
            shape=shape,
            initializer=_init_initializer(self.init, self.init_seed, self.target_gates, layout),
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
        )
        if not self.trainable_base:
            base.trainable = False

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mode": self.mode,
            "matrix": self.matrix,
            "target_gates": list(self.target_gates),
            "init": self.init,
            "init_seed": self.init_seed,
            "l2": self.l2,
            "trainable_base": self.trainable_base,
        }


@keras.saving.register_keras_serializable(package="lstm_influence")
class ExtraVariableLSTM(keras.layers.LSTM):
    """``keras.layers.LSTM`` running an :class:`ExtraVariableLSTMCell` (same arguments, plus the cell's new ones).

    >>> layer = ExtraVariableLSTM(4, mode="additive", target_gates=["forget"])
    >>> y = layer(np.zeros((2, 5, 3), "float32"))
    >>> [w.name for w in layer.trainable_weights]
    ['kernel', 'recurrent_kernel', 'bias', 'kernel_delta']
    """

    def __init__(
        self,
        units: int,
        mode: str = "additive",
        matrix: str = "kernel",
        target_gates: Sequence[str] = gates.GATES,
        init: Any = 0.0,
        init_seed: int | None = None,
        l2: float = 0.0,
        trainable_base: bool = True,
        use_cudnn: str | bool = "auto",
        **kwargs: Any,
    ) -> None:
        cell_kwargs = {key: kwargs.pop(key) for key in _CELL_ARGS if key in kwargs}
        cell = ExtraVariableLSTMCell(
            units,
            mode=mode,
            matrix=matrix,
            target_gates=target_gates,
            init=init,
            init_seed=init_seed,
            l2=l2,
            trainable_base=trainable_base,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
            implementation=kwargs.pop("implementation", 2),
            **cell_kwargs,
        )
        # LSTM.__init__ would build a plain LSTMCell; RNN.__init__ takes ours. What LSTM.__init__ does after its
        # super().__init__ call follows.
        keras.layers.RNN.__init__(self, cell, **kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=3)
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"use_cudnn={use_cudnn!r}: expected one of 'auto', True, False")
        self.use_cudnn = use_cudnn
        if (
            keras.backend.backend() == "tensorflow"
            and all(cudnn_conditions(self).values())
            and tf.config.list_logical_devices("GPU")
        ):
            # cuDNN ops aren't XLA compatible (as LSTM.__init__ notes).
            self.supports_jit = False

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any, training: bool = False) -> Any:
        # W_eff is loop-invariant: formed once here rather than at every step of the CPU path's loop.
        with self.cell.frozen_effective_matrix():
            return super().inner_loop(sequences, initial_state, mask, training=training)

    def get_config(self) -> dict[str, Any]:
        cell = self.cell
        return {
            **super().get_config(),
            "mode": cell.mode,
            "matrix": cell.matrix,
            "target_gates": list(cell.target_gates),
            "init": cell.init,
            "init_seed": cell.init_seed,
            "l2": cell.l2,
            "trainable_base": cell.trainable_base,
        }


class ExtraVariable(Strategy):
    """A trainable Δ (or per-unit gain g) combined with the LSTM kernel in the forward pass (see module doc).

    Config (``conf/strategy/extra_variable.yaml``): ``mode``, ``matrix``, ``target_gates``, ``init``, ``l2``,
    ``trainable_base``.

    Retention: θ_cf is W_0 (Keras's draw with the same seed), θ_0 the effective matrix at initialisation
    (W_0 + init on M, or W_0 ⊙ (1 + init)); with ``init = 0`` Δ = 0 by construction, and the metric is instead
    ``influence/extra_norm_ratio`` = ‖W_eff − W‖ / ‖W_eff‖ over the targeted blocks after training.
    """

    name = "extra_variable"

    def validate(self) -> None:
        self.mode = check_choice("strategy.mode", self.cfg.get("mode"), MODES)
        self.matrix = check_choice("strategy.matrix", self.cfg.get("matrix"), EXTRA_MATRICES)
        target_gates = list(self.cfg.get("target_gates") or [])
        try:
            self.target_gates = gates.expand_gates(target_gates)
        except gates.TargetError as err:
            raise ConfigError(f"strategy.target_gates: {err}") from None
        init = self.cfg.get("init", 0.0)
        if isinstance(init, str):
            check_initializer_name("strategy.init", init)
            self.init: Any = init
        else:
            self.init = check_number("strategy.init", init)
        if self.mode == "gain" and not isinstance(self.init, str) and self.init <= -1.0:
            raise ConfigError(f"strategy.init={self.init}: in gain mode 1 + init must be positive (init > -1)")
        self.l2 = check_number("strategy.l2", self.cfg.get("l2", 0.0), minimum=0.0)
        self.trainable_base = bool(self.cfg.get("trainable_base", True))

    def make_lstm(self, **lstm_kwargs: Any) -> keras.layers.Layer:
        return ExtraVariableLSTM(
            mode=self.mode,
            matrix=self.matrix,
            target_gates=list(self.target_gates),
            init=self.init,
            init_seed=prior_seed(self.seed) if isinstance(self.init, str) else None,
            l2=self.l2,
            trainable_base=self.trainable_base,
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
            "extra": to_numpy(cell.extra),
            "effective": to_numpy(getattr(cell, self.matrix)),
            "cf": to_numpy(initializer(tuple(base.shape))),
            "mask": gates.gate_columns_mask(self.target_gates, self.units).astype(bool),
        }

    def _expected_extra(self, shape: tuple[int, ...]) -> np.ndarray:
        """The variable's configured initial value, built here from the config."""
        mask = gates.gate_columns_mask(self.target_gates, self.units)
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
        name = variable_name(self.mode, self.matrix)
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
        asked_cfg = {
            "mode": self.mode,
            "matrix": self.matrix,
            "target_gates": list(self.target_gates),
            "l2": self.l2,
            "trainable_base": self.trainable_base,
        }
        found_cfg = {
            "mode": cell.mode,
            "matrix": cell.matrix,
            "target_gates": list(cell.target_gates),
            "l2": cell.l2,
            "trainable_base": cell.trainable_base,
        }
        trainable = {w.path: w for w in model.trainable_weights}
        var = cell.extra
        records += [
            check("cell configured as asked", asked_cfg == found_cfg, asked=asked_cfg, found=found_cfg),
            check(
                f"'{name}' is a trainable weight of the model",
                var is not None and var.name == name and var.path in trainable,
                asked={"name": name, "trainable": True},
                found={
                    "name": getattr(var, "name", None),
                    "path": getattr(var, "path", None),
                    "trainable": var.path in trainable,
                },
            ),
        ]
        parts = self._parts(model)
        mask = parts["mask"]
        extra = parts["extra"]
        expected_extra = self._expected_extra(extra.shape)
        ok_on, gap_on = compare(extra[..., mask], expected_extra[..., mask])
        ok_off = bool(np.all(extra[..., ~mask] == 0.0))
        ok_w, gap_w = compare(parts["W"], parts["cf"])
        ok_eff, gap_eff = compare(parts["effective"], self._combine(parts["W"], extra, mask))
        base_var = getattr(cell, f"base_{self.matrix}")
        regularizer = getattr(var, "regularizer", None)
        found_l2 = float(regularizer.l2) if regularizer is not None else 0.0
        conditions = cudnn_conditions(layer)
        records += [
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
                f"effective {self.matrix} = " + ("W + Δ ⊙ M" if self.mode == "additive" else "W ⊙ (1 + g ⊙ M)"),
                ok_eff,
                asked=self.mode,
                found=summary(parts["effective"]),
                max_abs_error=gap_eff,
            ),
            check("L2 penalty on the variable", abs(found_l2 - self.l2) <= 1e-12, asked=self.l2, found=found_l2),
            check("fused cuDNN path still eligible", all(conditions.values()), asked="all true", found=conditions),
        ]
        return records

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
        return {"influence/extra_norm_ratio": float(np.linalg.norm(contribution)) / norm if norm else float("nan")}

    def after_checks(self, model: keras.Model) -> list[dict[str, Any]]:
        parts = self._parts(model)
        mask = parts["mask"]
        name = variable_name(self.mode, self.matrix)
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
