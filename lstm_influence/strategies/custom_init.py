"""``custom_init``: Keras's random initialisers, then chosen values written into chosen gate blocks.

For each matrix M ∈ {kernel, recurrent_kernel, bias} the initial value is

    θ_cf(M) = base_M(shape)                 (the un-influenced draw; for the bias, as Keras draws it with
                                              ``unit_forget_bias``: base(u) ‖ 1 ‖ base(2u) when that is on)
    θ_0(M)  = write_n ∘ … ∘ write_1 (θ_cf)   one write per target on M, in the configured order

where a write on the target's entries S is ``constant`` (θ[S] = v), ``add`` (θ[S] += v) or ``scale`` (θ[S] *= v).
Entries outside every target keep the base draw exactly, and with no targets the model is, weight for weight,
the baseline of the same seed.

The seed article's initializer decided where to write by testing ``shape[1] == shape[0] * 4``, which holds only
when ``units == input_dim``; here the gate blocks are read from the last axis alone (``u = shape[-1] // 4``) and
the rows from the first, so any ``input_dim`` and ``units`` work.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from lstm_influence import gates
from lstm_influence.strategies.base import (
    Influence,
    Strategy,
    check,
    check_choice,
    check_initializer_name,
    compare,
    seeded_initializer,
    summary,
    to_numpy,
)

OPS: tuple[str, ...] = ("constant", "add", "scale")
"""What a target does to its entries: set them, add to them, multiply them."""

KERAS_DEFAULT_INITIALIZERS: dict[str, str] = {
    "kernel": "glorot_uniform",
    "recurrent_kernel": "orthogonal",
    "bias": "zeros",
}
"""``keras.layers.LSTM``'s own initialisers, matrix by matrix."""


def _shape_dims(matrix: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """``(input_dim, units)`` of the LSTM that owns a ``matrix`` of this ``shape``; input_dim is 0 if unknown."""
    if shape[-1] % 4:
        raise ValueError(f"{matrix} of shape {tuple(shape)}: the last axis must be 4 × units (i, f, c, o)")
    units = shape[-1] // 4
    if matrix == "kernel":
        return int(shape[0]), units
    if matrix == "recurrent_kernel" and shape[0] != units:
        raise ValueError(f"recurrent_kernel of shape {tuple(shape)}: expected (units, 4 × units)")
    return 0, units


def _resolve(matrix: str, target: dict[str, Any], shape: tuple[int, ...], field: str) -> gates.Target:
    input_dim, units = _shape_dims(matrix, shape)
    return gates.resolve_target(
        matrix,
        target["gate"],
        input_dim=input_dim,
        units=units,
        unit_indices=target.get("units"),
        features=target.get("features"),
        field=field,
    )


@keras.saving.register_keras_serializable(package="lstm_influence")
class GateTargetInitializer(keras.initializers.Initializer):
    """A base initialiser followed by writes into gate blocks of one LSTM matrix.

    Args:
        base: the base initialiser (an object, name or serialised config). Give it a fixed seed (see
            :func:`lstm_influence.strategies.base.seeded_initializer`) so the counterfactual can be redrawn.
        matrix: ``kernel``, ``recurrent_kernel`` or ``bias``: how to read rows and gate blocks from a shape.
        targets: dicts with ``gate``, ``units``, ``features``, ``op`` and ``value`` (see
            :class:`lstm_influence.config.InitTargetConfig`), applied in order.
        unit_forget_bias: bias only: draw the base as Keras does with ``unit_forget_bias=True``
            (``base((u,)) ‖ ones(u) ‖ base((2u,))``), so the writes land on top of that instead of being
            overridden by it (the layer itself must then have ``unit_forget_bias=False``).

    >>> init = GateTargetInitializer("zeros", "bias", [{"gate": "forget", "op": "constant", "value": 2.0}])
    >>> keras.ops.convert_to_numpy(init((8,))).tolist()
    [0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(
        self,
        base: Any = "zeros",
        matrix: str = "kernel",
        targets: list[dict[str, Any]] | tuple = (),
        unit_forget_bias: bool = False,
    ) -> None:
        if matrix not in gates.MATRICES:
            raise ValueError(f"matrix={matrix!r}: expected one of {', '.join(gates.MATRICES)}")
        self.base = keras.initializers.get(base)
        self.matrix = matrix
        if unit_forget_bias and matrix != "bias":
            raise ValueError(f"unit_forget_bias applies to the bias only, not to matrix={matrix!r}")
        self.targets = [dict(t) for t in targets]
        self.unit_forget_bias = bool(unit_forget_bias)

    def counterfactual(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        """θ_cf: what the base initialiser alone draws for ``shape``."""
        if not self.unit_forget_bias:
            return self.base(shape, dtype=dtype)
        units = shape[0] // 4
        # The same three calls, with the same shapes, as LSTMCell.build makes for unit_forget_bias=True.
        return ops.concatenate(
            [
                self.base((units,), dtype=dtype),
                keras.initializers.Ones()((units,), dtype=dtype),
                self.base((units * 2,), dtype=dtype),
            ]
        )

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        shape = tuple(int(s) for s in shape)
        dtype = dtype or keras.backend.floatx()
        value = ops.cast(self.counterfactual(shape, dtype=dtype), dtype)
        for k, target in enumerate(self.targets):
            resolved = _resolve(self.matrix, target, shape, f"targets[{k}]")
            block = gates.fit_value(target["value"], resolved, f"targets[{k}].value")
            op = target.get("op", "constant")
            if op == "scale":
                factor = np.ones(shape, dtype=dtype)
                factor[resolved.index] = block
                value = value * factor
            else:
                written = np.zeros(shape, dtype=dtype)
                written[resolved.index] = block
                if op == "add":
                    value = value + written
                elif op == "constant":
                    value = ops.where(resolved.mask(), written, value)
                else:
                    raise ValueError(f"targets[{k}].op={op!r}: expected one of {', '.join(OPS)}")
        return value

    def get_config(self) -> dict[str, Any]:
        return {
            "base": keras.initializers.serialize(self.base),
            "matrix": self.matrix,
            "targets": self.targets,
            "unit_forget_bias": self.unit_forget_bias,
        }


def plain_targets(cfg_targets: Any) -> list[dict[str, Any]]:
    """The configured targets as plain dicts (lists, not ListConfig) for initialiser configs and reports."""
    from omegaconf import OmegaConf

    out = []
    for target in cfg_targets:
        data = OmegaConf.to_container(target, resolve=True) if not isinstance(target, dict) else dict(target)
        out.append(data)
    return out


class CustomInit(Strategy):
    """Random base initialisers, then configured values written into chosen gate blocks (see module doc).

    Config (``conf/strategy/custom_init.yaml``): ``base_initializer`` (per matrix; Keras's defaults),
    ``unit_forget_bias`` (the base bias gets Keras's forget 1, as a plain LSTM's does) and ``targets``, each
    ``{matrix, gate, units, features, op, value}``.
    """

    name = "custom_init"

    def validate(self) -> None:
        base = dict(self.cfg.get("base_initializer") or {})
        for matrix, identifier in base.items():
            check_choice("strategy.base_initializer key", matrix, gates.MATRICES)
            check_initializer_name(f"strategy.base_initializer.{matrix}", identifier)
        self.base_names = {**KERAS_DEFAULT_INITIALIZERS, **base}
        self.targets = plain_targets(self.cfg.get("targets") or [])
        self.resolved: list[tuple[int, dict[str, Any], gates.Target, np.ndarray]] = []
        for k, target in enumerate(self.targets):
            field = f"strategy.targets[{k}]"
            check_choice(f"{field}.op", target.get("op"), OPS)
            resolved = gates.resolve_target(
                target.get("matrix"),
                target.get("gate"),
                input_dim=self.input_dim,
                units=self.units,
                unit_indices=target.get("units"),
                features=target.get("features"),
                field=field,
            )
            block = gates.fit_value(target.get("value"), resolved, f"{field}.value")
            self.resolved.append((k, target, resolved, block))

    def _targets_on(self, matrix: str) -> list[dict[str, Any]]:
        return [
            {key: t.get(key) for key in ("gate", "units", "features", "op", "value")}
            for _, t, r, _ in self.resolved
            if r.matrix == matrix
        ]

    def make_lstm(self, **lstm_kwargs: Any) -> keras.layers.Layer:
        # Drawn in LSTMCell's own order (kernel, recurrent kernel, bias) so the seeds, and with no targets every
        # weight, match a plain Keras LSTM built at the same point with the same seed.
        bases = {m: seeded_initializer(self.base_names[m]) for m in gates.MATRICES}
        unit_forget_bias = bool(self.cfg.get("unit_forget_bias", True))
        init = {
            m: GateTargetInitializer(
                bases[m], m, self._targets_on(m), unit_forget_bias=unit_forget_bias and m == "bias"
            )
            for m in gates.MATRICES
        }
        return keras.layers.LSTM(
            kernel_initializer=init["kernel"],
            recurrent_initializer=init["recurrent_kernel"],
            bias_initializer=init["bias"],
            # Keras would otherwise overwrite the forget block of whatever our bias initializer returns.
            unit_forget_bias=False,
            **lstm_kwargs,
        )

    # -- proving ----------------------------------------------------------------------------------------------

    def _layer_initializers(self, model: keras.Model) -> dict[str, Any]:
        cell = self.lstm(model).cell
        return {
            "kernel": cell.kernel_initializer,
            "recurrent_kernel": cell.recurrent_initializer,
            "bias": cell.bias_initializer,
        }

    def _weights(self, model: keras.Model) -> dict[str, np.ndarray]:
        cell = self.lstm(model).cell
        return {m: to_numpy(getattr(cell, m)) for m in gates.MATRICES}

    def _expected(self, cf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """θ_0 from θ_cf and the config, by direct indexing (independent of the initializer's masked writes)."""
        expected = {m: v.astype(np.float32).copy() for m, v in cf.items()}
        for _, target, resolved, block in self.resolved:
            entries = expected[resolved.matrix]
            value = block.astype(np.float32)
            if target["op"] == "constant":
                entries[resolved.index] = value
            elif target["op"] == "add":
                entries[resolved.index] = entries[resolved.index] + value
            else:
                entries[resolved.index] = entries[resolved.index] * value
        return expected

    def _counterfactual(self, model: keras.Model) -> dict[str, np.ndarray]:
        initializers = self._layer_initializers(model)
        weights = self._weights(model)
        return {m: to_numpy(initializers[m].counterfactual(weights[m].shape)) for m in gates.MATRICES}

    def checks(self, model: keras.Model) -> list[dict[str, Any]]:
        layer = self.lstm(model)
        initializers = self._layer_initializers(model)
        installed = all(isinstance(i, GateTargetInitializer) for i in initializers.values())
        found_names = {m: type(getattr(i, "base", i)).__name__ for m, i in initializers.items()}
        asked_classes = {m: type(seeded_initializer(n, seed=0)).__name__ for m, n in self.base_names.items()}
        records = [
            check(
                "gate-target initialisers installed",
                installed
                and not layer.cell.unit_forget_bias
                and all(type(initializers[m].base).__name__ == asked_classes[m] for m in gates.MATRICES),
                asked={"base_initializer": asked_classes, "layer unit_forget_bias": False},
                found={"base_initializer": found_names, "layer unit_forget_bias": bool(layer.cell.unit_forget_bias)},
            )
        ]
        if not installed:
            return records
        weights = self._weights(model)
        cf = self._counterfactual(model)
        expected = self._expected(cf)
        touched = {m: np.zeros(weights[m].shape, dtype=bool) for m in gates.MATRICES}
        for k, target, resolved, _ in self.resolved:
            touched[resolved.matrix][resolved.index] = True
            found = weights[resolved.matrix][resolved.index]
            want = expected[resolved.matrix][resolved.index]
            ok, gap = compare(found, want)
            records.append(
                check(
                    f"targets[{k}]: {target['op']} on {resolved.matrix}/{target['gate']}",
                    ok,
                    asked={key: target.get(key) for key in ("matrix", "gate", "units", "features", "op", "value")},
                    found=summary(found),
                    expected=summary(want),
                    max_abs_error=gap,
                    block_shape=list(resolved.block_shape),
                )
            )
        for matrix in gates.MATRICES:
            rest = ~touched[matrix]
            ok, gap = compare(weights[matrix][rest], cf[matrix][rest])
            base = initializers[matrix].base
            records.append(
                check(
                    f"{matrix}: untouched entries = base draws",
                    ok,
                    asked={
                        "initializer": self.base_names[matrix],
                        "seed": getattr(base, "seed", None),
                        "unit_forget_bias": bool(initializers[matrix].unit_forget_bias),
                    },
                    found=summary(weights[matrix][rest]),
                    expected=summary(cf[matrix][rest]),
                    max_abs_error=gap,
                )
            )
        return records

    def influence(self, model: keras.Model) -> dict[str, Influence]:
        if not self.resolved:
            return {}
        weights = self._weights(model)
        cf = self._counterfactual(model)
        expected = self._expected(cf)
        groups: dict[str, Influence] = {}
        for matrix in gates.MATRICES:
            union = np.zeros(weights[matrix].shape, dtype=bool)
            for _, _, resolved, _ in self.resolved:
                if resolved.matrix == matrix:
                    union[resolved.index] = True
            if union.any():
                groups[matrix] = Influence(cf[matrix][union], expected[matrix][union], weights[matrix][union])
        for k, target, resolved, _ in self.resolved:
            m, idx = resolved.matrix, resolved.index
            groups[f"targets[{k}] {m}/{target['gate']}"] = Influence(
                cf[m][idx].ravel(), expected[m][idx].ravel(), weights[m][idx].ravel(), counted=False
            )
        return groups


__all__ = ["KERAS_DEFAULT_INITIALIZERS", "OPS", "CustomInit", "GateTargetInitializer"]
