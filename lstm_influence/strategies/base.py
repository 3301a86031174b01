"""The interface every influence strategy implements, and the retention arithmetic they share.

A strategy touches the model at two places only: what the LSTM sees (``transform_inputs``) and the LSTM layer
itself (``make_lstm``). It then proves its influence landed (``verify``) and, after training, says how much of it
survived (``after_training``). The model builder and the runner know nothing else about strategies.

Retention: on the entries a strategy targets, with θ_cf the values its un-influenced
initialiser draws with the same seed, θ_0 the influenced initial values and θ_T the trained ones,

    Δ = θ_0 − θ_cf,        retention = ⟨θ_T − θ_cf, Δ⟩ / ‖Δ‖²

so 1 means the injected deviation is intact, 0 erased, above 1 amplified; it is undefined where Δ = 0.
A strategy describes its targeted entries once (:meth:`Strategy.influence`), with θ_cf and θ_0 recomputed from
seeded, serialisable initialisers rather than remembered, so ``after_training`` needs no state from ``verify`` and
works on any instance (or a model loaded from disk); the retention arithmetic is shared here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from lstm_influence.config.errors import ConfigError
from lstm_influence.layers.extra_variable import check_initializer
from lstm_influence.metrics import RETENTION

RTOL = 1e-5
"""Relative tolerance when comparing float32 weights with values computed in numpy."""
ATOL = 1e-6
"""Absolute tolerance, for the same comparisons."""


@dataclass
class Influence:
    """One group of targeted entries, flattened.

    Attributes:
        cf: θ_cf, what the un-influenced initialiser draws there with the same seed.
        expected: θ_0 as configured (what ``verify`` expects to find before training).
        current: the values in the model now.
        counted: whether the group enters the overall retention; groups that overlap another (a per-target
            breakdown of a matrix already counted whole) are reported but not counted twice.
    """

    cf: np.ndarray
    expected: np.ndarray
    current: np.ndarray
    counted: bool = True


def retention(cf: np.ndarray, initial: np.ndarray, trained: np.ndarray) -> float | None:
    """⟨θ_T − θ_cf, Δ⟩ / ‖Δ‖² with Δ = θ_0 − θ_cf, in float64; None where ‖Δ‖ = 0 (nothing was injected)."""
    cf, initial, trained = (np.asarray(a, dtype=np.float64).ravel() for a in (cf, initial, trained))
    delta = initial - cf
    norm2 = float(delta @ delta)
    if norm2 == 0.0:
        return None
    return float((trained - cf) @ delta / norm2)


def summary(array: Any) -> dict[str, float]:
    """Min, max and mean of ``array``: the JSON-friendly face of a block of weights."""
    array = np.asarray(array, dtype=np.float64)
    if array.size == 0:
        return {"n": 0}
    return {
        "n": int(array.size),
        "min": float(array.min()),
        "max": float(array.max()),
        "mean": float(array.mean()),
    }


def compare(found: Any, expected: Any) -> tuple[bool, float]:
    """Whether float32 weights equal their expected values (to float32 round-off), and the largest gap."""
    found = np.asarray(found, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if found.shape != expected.shape:
        return False, float("inf")
    if found.size == 0:
        return True, 0.0
    gap = float(np.max(np.abs(found - expected)))
    return bool(np.allclose(found, expected, rtol=RTOL, atol=ATOL)), gap


def check(name: str, passed: bool, *, asked: Any, found: Any, **extra: Any) -> dict[str, Any]:
    """A verification record: what was asked, what is in the model, and whether they agree."""
    return {"name": name, "passed": bool(passed), "asked": asked, "found": found, **extra}


def to_numpy(value: Any) -> np.ndarray:
    """A Keras variable or tensor as a numpy array."""
    return np.asarray(keras.ops.convert_to_numpy(value))


def check_initializer_name(field: str, identifier: Any) -> None:
    """Raise :class:`ConfigError` unless ``identifier`` names a Keras initialiser (draws nothing from ``random``)."""
    with config_errors():
        check_initializer(field, identifier)


@contextmanager
def config_errors(prefix: str = "") -> Iterator[None]:
    """Report a layer's ``ValueError`` (which names the argument and the value) as a :class:`ConfigError`.

    The layers validate their own arguments; a strategy passes config values straight to them and lets this turn
    a refusal into the configuration error the runner expects, ``prefix`` leading the message (e.g.
    ``strategy.``) so it names the config key.
    """
    try:
        yield
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{prefix}{err}") from None


def check_number(field: str, value: Any, *, minimum: float | None = None) -> float:
    """``value`` as a finite float, or :class:`ConfigError` naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{field}={value!r}: expected a number")
    value = float(value)
    if not np.isfinite(value):
        raise ConfigError(f"{field}={value}: expected a finite number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{field}={value}: expected a number >= {minimum}")
    return value


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else :class:`ConfigError` listing them."""
    if value not in choices:
        raise ConfigError(f"{field}={value!r}: expected one of {', '.join(choices)}")
    return value


class Strategy:
    """The interface every strategy implements; each method's default influences nothing.

    Left as they are, the hooks build a plain ``keras.layers.LSTM`` and prove nothing about it. The control of a
    comparison is :class:`lstm_influence.strategies.baseline.Baseline`, which also proves that its layer is Keras's
    own. A strategy is a plug-in: its YAML names the class with ``_target_`` and sets its settings, which the class
    takes as keyword arguments, passing everything else on to this ``__init__``::

        class ForgetThree(lstm_influence.Strategy):
            def __init__(self, forget: float = 3.0, **kwargs):
                super().__init__(**kwargs)
                self.forget = forget

    The signature is the schema: a key the YAML sets that no ``__init__`` along the chain names, or a value that
    does not fit its annotation, is a configuration error before anything is built
    (:func:`lstm_influence.config.validate`). The framework then calls :meth:`validate`, once the layer's sizes are
    known.

    Args:
        name: the strategy's name (its YAML's ``name``): the ``strategy`` tag, and the arm when no arm is selected.
        input_dim: the recurrent layer's input features (set by the framework, as are the arguments below).
        units: the layer's units.
        seq_len: the sequence length.
        horizon: the longest dependency the task asks to bridge, in steps (chrono's default ``t_max``); None:
            the sequence length.
        seed: the run's seed (``cfg.seed``), for draws that must be repeatable without touching the global
            random streams (chrono's uniform draw, an extra variable's random prior).
    """

    def __init__(
        self,
        *,
        name: str,
        input_dim: int,
        units: int,
        seq_len: int,
        horizon: float | None = None,
        seed: int = 0,
    ) -> None:
        self.name = str(name)
        self.input_dim = int(input_dim)
        self.units = int(units)
        self.seq_len = int(seq_len)
        self.horizon = float(seq_len if horizon is None else horizon)
        self.seed = int(seed)
        self.config: dict[str, Any] = {"name": self.name}
        """The strategy's config node as plain values (set by the framework), for the influence report."""

    # -- building ---------------------------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise :class:`lstm_influence.ConfigError` for settings that cannot work with this layer (called by the
        framework once the instance exists, before anything is built)."""

    def transform_inputs(self, x: Any) -> Any:
        """Layers between the (encoded) inputs and the LSTM; the identity by default."""
        return x

    def make_lstm(self, **lstm_kwargs: Any) -> keras.layers.Layer:
        """The recurrent layer; ``lstm_kwargs`` carry ``units``, ``return_sequences``, ``dropout`` and ``name``
        (``lstm``). Any Keras recurrent layer works (a GRU, ``keras.layers.RNN(cell)``); the gate metrics need a cell
        that reports its gates (:mod:`lstm_influence.layers.gate_reading`)."""
        return keras.layers.LSTM(**lstm_kwargs)

    # -- proving ----------------------------------------------------------------------------------------------

    def checks(self, model: keras.Model) -> list[dict[str, Any]]:
        """The strategy's verification records for a freshly built ``model`` (see :func:`check`)."""
        return []

    def influence(self, model: keras.Model) -> dict[str, Influence]:
        """The targeted entries, by group name: θ_cf, the configured θ_0 and the values now. None by default."""
        return {}

    def after_checks(self, model: keras.Model) -> list[dict[str, Any]]:
        """Verification records that must still hold after training (e.g. frozen weights unchanged)."""
        return []

    def extra_metrics(self, model: keras.Model) -> dict[str, float]:
        """Metrics besides retention, after training (e.g. ``influence/extra_norm_ratio``)."""
        return {}

    @staticmethod
    def lstm(model: keras.Model) -> keras.layers.Layer:
        """The model's recurrent layer (named ``lstm`` by contract)."""
        return model.get_layer("lstm")

    def verify(self, model: keras.Model) -> dict[str, Any]:
        """Read the built weights and report, per target, what was asked and what is there.

        Returns:
            A JSON-serialisable dict: ``strategy``, ``passed`` (every check passed), ``stage`` (``before``),
            ``layer`` (input_dim, units, seq_len), ``config`` (the strategy config) and ``checks``
            (each with ``name``, ``passed``, ``asked``, ``found``).
        """
        try:
            checks = self.checks(model)
        except Exception as err:  # a report that says why beats a traceback the runner cannot log
            checks = [check("verification ran", False, asked="a model this strategy built", found=repr(err))]
        influence = self._influence_or_none(model)
        injected = {name: float(np.linalg.norm(g.expected - g.cf)) for name, g in (influence or {}).items()}
        return {
            "strategy": self.name,
            "stage": "before",
            "passed": all(c["passed"] for c in checks),
            "layer": {
                "input_dim": self.input_dim,
                "units": self.units,
                "seq_len": self.seq_len,
                "horizon": self.horizon,
            },
            "config": self.config,
            "injected_norm": injected,
            "checks": checks,
        }

    def _influence_or_none(self, model: keras.Model) -> dict[str, Influence] | None:
        # Only feeds the report's injected_norm summary; a model this fails on has already failed a check.
        try:
            return self.influence(model)
        except Exception:
            return None

    def after_training(self, model: keras.Model, before: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        """After training: the report extended with what survived, and the metrics to log.

        θ_0 is the configured initial value, which ``verify`` proved is what the model started from (the runner
        does not train otherwise).

        Args:
            model: the trained model.
            before: what :meth:`verify` returned before training.

        Returns:
            ``(report, metrics)``: ``metrics`` has ``influence/retention`` where something was injected
            (‖Δ‖ > 0), plus any :meth:`extra_metrics`; nothing for the baseline or a fixed input transform.
        """
        report = {**before, "stage": "after"}
        metrics: dict[str, float] = {}
        influence = self.influence(model)
        groups: dict[str, Any] = {}
        cf_all, initial_all, trained_all = [], [], []
        for name, group in influence.items():
            initial = group.expected
            r = retention(group.cf, initial, group.current)
            groups[name] = {
                "retention": r,
                "injected_norm": float(np.linalg.norm(initial - group.cf)),
                "drift_norm": float(np.linalg.norm(group.current - initial)),
            }
            if group.counted:
                cf_all.append(group.cf)
                initial_all.append(initial)
                trained_all.append(group.current)
        total = (
            retention(np.concatenate(cf_all), np.concatenate(initial_all), np.concatenate(trained_all))
            if cf_all
            else None
        )
        if total is not None:
            metrics[RETENTION] = total
        metrics.update(self.extra_metrics(model))
        after_checks = self.after_checks(model)
        report["after"] = {
            "retention": total,
            "groups": groups,
            "metrics": metrics,
            "checks": after_checks,
            "passed": all(c["passed"] for c in after_checks),
        }
        if total is None and not metrics:
            report["after"]["note"] = "nothing injected into the weights (Δ = 0): no retention to measure"
        return report, metrics
