"""``custom_init``: Keras's random initialisers, then chosen values written into chosen gate blocks.

For each matrix M ∈ {kernel, recurrent_kernel, bias} the initial value is

    θ_cf(M) = base_M(shape)                 (the un-influenced draw; for the bias, as Keras draws it with
                                              ``unit_forget_bias``: base(u) ‖ 1 ‖ base(2u) when that is on)
    θ_0(M)  = write_n ∘ … ∘ write_1 (θ_cf)   one write per target on M, in the configured order

where a write on the target's entries S is ``constant`` (θ[S] = v), ``add`` (θ[S] += v) or ``scale`` (θ[S] *= v).
Entries outside every target keep the base draw exactly, and with no targets the model is, weight for weight,
the baseline of the same seed.

The seed article's initializer decided where to write by testing ``shape[1] == shape[0] * 4``, which holds only
when ``units == input_dim``; :class:`lstm_influence.layers.GateTargetInitializer`, which this strategy installs,
reads the gate blocks from the last axis alone (``u = shape[-1] // 4``) and the rows from the first, so any
``input_dim`` and ``units`` work.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from lstm_influence import gates
from lstm_influence.config.errors import ConfigError
from lstm_influence.layers import GateTargetInitializer
from lstm_influence.layers.extra_variable import seeded_initializer
from lstm_influence.strategies.base import (
    Influence,
    Strategy,
    check,
    check_initializer_name,
    compare,
    config_errors,
    summary,
    to_numpy,
)

KERAS_DEFAULT_INITIALIZERS: dict[str, str] = {
    "kernel": "glorot_uniform",
    "recurrent_kernel": "orthogonal",
    "bias": "zeros",
}
"""``keras.layers.LSTM``'s own initialisers, matrix by matrix."""


TARGET_KEYS: dict[str, bool] = {
    "matrix": True,
    "gate": True,
    "op": True,
    "value": True,
    "units": False,
    "features": False,
}
"""The keys of a target, each with whether it is required."""

OPS: tuple[str, ...] = ("constant", "add", "scale")


def plain_targets(cfg_targets: Any) -> list[dict[str, Any]]:
    """The configured targets as plain dicts of plain values (lists, not ListConfig), with their keys checked.

    Raises:
        ConfigError: a target that is not a mapping, has a key no target has, lacks a required key (matrix, gate,
            op, value) or names an op other than constant, add or scale.
    """
    if isinstance(cfg_targets, (DictConfig, ListConfig)):
        cfg_targets = OmegaConf.to_container(cfg_targets, resolve=True)
    out = []
    for k, target in enumerate(cfg_targets or []):
        field = f"strategy.targets[{k}]"
        if isinstance(target, DictConfig):
            target = OmegaConf.to_container(target, resolve=True)
        if not isinstance(target, dict):
            raise ConfigError(f"{field}={target!r}: expected a mapping with keys {', '.join(TARGET_KEYS)}")
        unknown = [key for key in target if key not in TARGET_KEYS]
        if unknown:
            raise ConfigError(
                f"{field}: unknown key(s) {', '.join(map(str, unknown))}; valid keys: {', '.join(TARGET_KEYS)}"
            )
        missing = [key for key, required in TARGET_KEYS.items() if required and target.get(key) is None]
        if missing:
            raise ConfigError(f"{field}: missing {', '.join(missing)}; a target needs matrix, gate, op and value")
        if target["op"] not in OPS:
            raise ConfigError(f"{field}.op={target['op']!r}: expected one of {', '.join(OPS)}")
        out.append({"units": None, "features": None, **target})
    return out


class CustomInit(Strategy):
    """Random base initialisers, then configured values written into chosen gate blocks (see module doc).

    Args:
        base_initializer: a Keras initialiser name per matrix (``kernel``, ``recurrent_kernel``, ``bias``); the
            matrices not named keep Keras's defaults (glorot_uniform, orthogonal, zeros).
        unit_forget_bias: the base bias gets 1 on the forget block, as a plain LSTM's does (drawn by us, so
            targets on the bias act on top of it instead of being overridden by Keras).
        targets: the writes, applied in order: each ``{matrix, gate, op, value}`` plus optional ``units`` and
            ``features`` (see :func:`~lstm_influence.gates.resolve_target`, :func:`~lstm_influence.gates.fit_value`).
        **kwargs: :class:`~lstm_influence.strategies.base.Strategy`'s.
    """

    def __init__(
        self,
        base_initializer: dict[str, Any] | None = None,
        unit_forget_bias: bool = True,
        targets: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_initializer = dict(base_initializer or {})
        self.unit_forget_bias = bool(unit_forget_bias)
        self.targets_setting = list(targets or [])

    def validate(self) -> None:
        base = self.base_initializer
        for matrix in base:
            if matrix not in gates.MATRICES:
                raise ConfigError(
                    f"strategy.base_initializer key {matrix!r}: expected one of {', '.join(gates.MATRICES)}"
                )
            check_initializer_name(f"strategy.base_initializer.{matrix}", base[matrix])
        self.base_names = {**KERAS_DEFAULT_INITIALIZERS, **{m: str(base[m]) for m in base}}
        self.targets = plain_targets(self.targets_setting)
        self.resolved: list[tuple[int, dict[str, Any], gates.Target, np.ndarray]] = []
        for k, target in enumerate(self.targets):
            field = f"strategy.targets[{k}]"
            with config_errors():
                resolved = gates.resolve_target(
                    target["matrix"],
                    target["gate"],
                    input_dim=self.input_dim,
                    units=self.units,
                    unit_indices=target.get("units"),
                    features=target.get("features"),
                    field=field,
                )
                block = gates.fit_value(target["value"], resolved, f"{field}.value")
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
        unit_forget_bias = self.unit_forget_bias
        init = {
            m: GateTargetInitializer(
                bases[m],
                m,
                self._targets_on(m),
                units=self.units,
                unit_forget_bias=unit_forget_bias and m == "bias",
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


__all__ = ["KERAS_DEFAULT_INITIALIZERS", "CustomInit"]
