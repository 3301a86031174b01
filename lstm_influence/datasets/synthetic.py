"""Synthetic long-range tasks whose trivial baselines are known in closed form.

- ``adding`` (Hochreiter & Schmidhuber 1997; as in Arjovsky et al. 2016 and Tallec & Ollivier 2018): each step
  carries a value ``u ~ U[0, 1]`` and a marker; exactly one marker falls in each half of the sequence and the
  target is the sum of the two marked values. Always predicting 1 scores MSE = 2 · Var(U) = 1/6.
- ``copy`` (Arjovsky, Shah & Bengio 2016, section 4.1): the input is K symbols drawn uniformly from an alphabet of
  A, then ``T - 1`` blanks, a marker, and K more blanks (length ``L = T + 2K = seq_len``); the target is blank
  everywhere except the last K steps, which must reproduce the K symbols. Token inputs, one class per step.
  Trivial baseline: the memoryless predictor that knows the layout (blank for the first ``L - K`` steps with
  certainty, uniform over the A symbols for the last K), whose cross-entropy is ``K · ln(A) / L`` nats per step.
- ``sine``: a noisy sum of sines with random periods, amplitudes and phases per sequence; the target is the next
  (noisy) value. Trivial baseline: last-value persistence, MSE of predicting ``x[T-1]`` for ``x[T]``. The
  observation noise alone costs ``sine_noise²``, a floor no model beats.

Reference predictors (``Dataset.reference_losses``, fitted on the training split only; see
:mod:`lstm_influence.datasets.reference`): ``ridge``, a ridge regression on the flattened input window, for adding
and sine, and ``persistence`` for sine (the trivial baseline itself, listed so every series task names it). Copy
has none: its trivial baseline is already the best predictor without memory, and a linear read-out of the
flattened input recalls every symbol exactly, so nothing between the two would say anything about memory.

Every task is deterministic given ``data_seed``; train, val and test come from independent random streams.
"""

from __future__ import annotations

import math
import typing
from typing import Any, Literal

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lstm_influence.datasets.base import Dataset, DatasetError, check_baselines, cross_entropy, mse
from lstm_influence.datasets.reference import RidgeFit, ridge_losses

Task = Literal["adding", "copy", "sine"]
TASKS: tuple[str, ...] = typing.get_args(Task)
SPLITS = ("train", "val", "test")
COPY_BLANK = 0
"""Token id of the blank in the copy task; the symbols are ``1..A`` and the marker ``A + 1``."""


def adding_problem(n: int, seq_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` adding-problem sequences: x ``(n, seq_len, 2)`` = (value, marker), y ``(n, 1)``."""
    half = seq_len // 2
    values = rng.uniform(0.0, 1.0, size=(n, seq_len))
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    markers = np.zeros((n, seq_len))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return x, y


def copy_problem(
    n: int, seq_len: int, n_symbols: int, alphabet: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` copy-task sequences: token ids x ``(n, seq_len)`` and per-step target ids y ``(n, seq_len)``.

    Layout (K = ``n_symbols``, L = ``seq_len``): x = K symbols in ``1..alphabet``, blanks, the marker
    ``alphabet + 1`` at step ``L - K - 1``, K blanks; y = blanks, then the K symbols at steps ``L - K .. L - 1``.
    """
    symbols = rng.integers(1, alphabet + 1, size=(n, n_symbols))
    x = np.full((n, seq_len), COPY_BLANK, dtype=np.int32)
    x[:, :n_symbols] = symbols
    x[:, seq_len - n_symbols - 1] = alphabet + 1
    y = np.full((n, seq_len), COPY_BLANK, dtype=np.int32)
    y[:, seq_len - n_symbols :] = symbols
    return x, y


def dependency_horizon(cfg: DictConfig) -> float | None:
    """The copy task's horizon: 3/2 of its delay T = ``seq_len`` − 2K, as Tallec & Ollivier (2018) set chrono's
    T_max for copying; None (the sequence length) for the adding and sine tasks, whose longest dependency is the
    sequence itself."""
    if cfg.get("task") != "copy":
        return None
    delay = int(cfg.seq_len) - 2 * int(cfg.copy_symbols)
    return 1.5 * delay if delay > 0 else None


def copy_memoryless_probs(seq_len: int, n_symbols: int, alphabet: int) -> np.ndarray:
    """``(seq_len, alphabet + 1)``: per step, the best prediction of a layout-aware predictor with no memory.

    Blank with probability 1 before the recall phase, uniform over the ``alphabet`` symbols during it.
    """
    probs = np.zeros((seq_len, alphabet + 1))
    probs[: seq_len - n_symbols, COPY_BLANK] = 1.0
    probs[seq_len - n_symbols :, 1:] = 1.0 / alphabet
    return probs


def copy_baseline_formula(seq_len: int, n_symbols: int, alphabet: int) -> float:
    """``K · ln(A) / L``: the memoryless cross-entropy in nats per step (Arjovsky et al. 2016)."""
    return n_symbols * math.log(alphabet) / seq_len


def sine_problem(
    n: int,
    seq_len: int,
    n_components: int,
    noise: float,
    min_period: float,
    max_period: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy sine mixtures: x ``(n, seq_len, 1)`` the first ``seq_len`` values, y ``(n, 1)`` the next one.

    Each sequence draws its own components: period ``U[min_period, max_period]`` steps, amplitude ``U[0.5, 1]``,
    phase ``U[0, 2π)``; the sum is divided by ``sqrt(n_components)`` so its scale does not grow with the count,
    and i.i.d. ``N(0, noise²)`` is added to every value, the target included.
    """
    shape = (n, n_components, 1)
    period = rng.uniform(min_period, max_period, size=shape)
    amplitude = rng.uniform(0.5, 1.0, size=shape)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=shape)
    steps = np.arange(seq_len + 1)
    clean = (amplitude * np.sin(2.0 * np.pi * steps / period + phase)).sum(axis=1) / math.sqrt(n_components)
    series = clean + noise * rng.standard_normal(clean.shape)
    x = series[:, :seq_len, None].astype(np.float32)
    y = series[:, seq_len, None].astype(np.float32)
    return x, y


def _ridge_note(fit: RidgeFit) -> str:
    return (
        f"ridge regression on the flattened input window, fitted on train; penalty {fit.penalty:.3g} chosen by "
        f"leave-one-out MSE on train ({fit.loo_mse:.6g})"
    )


def _check(cfg: DictConfig) -> None:
    for key in ("n_train", "n_val", "n_test"):
        if cfg[key] < 1:
            raise DatasetError(f"dataset.{key}={cfg[key]}: expected a positive sample count")
    if cfg.task == "adding" and cfg.seq_len < 2:
        raise DatasetError(f"dataset.seq_len={cfg.seq_len}: the adding task needs at least 2 steps")
    if cfg.task == "copy":
        if cfg.copy_symbols < 1:
            raise DatasetError(f"dataset.copy_symbols={cfg.copy_symbols}: expected a positive integer")
        if cfg.copy_alphabet < 2:
            # With one symbol the recall is certain and the baseline loss 0: nothing to normalise by.
            raise DatasetError(f"dataset.copy_alphabet={cfg.copy_alphabet}: expected at least 2 symbols")
        if cfg.seq_len < 2 * cfg.copy_symbols + 1:
            raise DatasetError(
                f"dataset.seq_len={cfg.seq_len}: the copy task needs at least 2 * copy_symbols + 1 = "
                f"{2 * cfg.copy_symbols + 1} steps (K symbols, a marker, K recall steps)"
            )
    if cfg.task == "sine":
        if cfg.seq_len < 1:
            raise DatasetError(f"dataset.seq_len={cfg.seq_len}: the sine task needs at least 1 step")
        if cfg.sine_components < 1:
            raise DatasetError(f"dataset.sine_components={cfg.sine_components}: expected a positive integer")
        if cfg.sine_noise < 0:
            raise DatasetError(f"dataset.sine_noise={cfg.sine_noise}: expected a non-negative number")
        if not 0 < cfg.sine_min_period <= cfg.sine_max_period:
            raise DatasetError(
                f"dataset.sine_min_period={cfg.sine_min_period}, sine_max_period={cfg.sine_max_period}: "
                "expected 0 < min <= max"
            )


def load(
    *,
    name: str = "synthetic",
    task: Task = "adding",
    seq_len: int = 50,
    n_train: int = 5000,
    n_val: int = 1000,
    n_test: int = 1000,
    copy_symbols: int = 10,
    copy_alphabet: int = 8,
    sine_components: int = 3,
    sine_noise: float = 0.05,
    sine_min_period: float = 4.0,
    sine_max_period: float = 40.0,
    data_seed: int = 0,
    **kwargs: Any,
) -> Dataset:
    """The synthetic task ``task``, drawn deterministically from ``data_seed`` (``conf/dataset/synthetic.yaml``).

    Args:
        name: the dataset's name (its tag).
        task: ``adding`` (Hochreiter 1997 / Arjovsky 2016), ``copy`` (remember K symbols over a delay) or ``sine``
            (noisy sum of sines, predict the next value).
        seq_len: the sequence length; for copy the whole input, ``delay + 2 * copy_symbols``.
        n_train, n_val, n_test: sample counts.
        copy_symbols: K, the number of symbols to remember (copy).
        copy_alphabet: how many distinct symbols (copy); two more ids are the blank and the marker.
        sine_components: number of sines in the sum (sine).
        sine_noise: standard deviation of the additive noise (sine); its square is the loss floor.
        sine_min_period, sine_max_period: each sine's period in steps is drawn uniformly between these.
        data_seed: fixes the data, so every strategy and seed of a comparison sees the same data.
        **kwargs: keys the framework reads (``target_norm_loss``); unused here.

    Raises:
        DatasetError: sizes the task cannot use.
    """
    settings = {key: value for key, value in locals().items() if key != "kwargs"}
    return load_config(OmegaConf.create(settings))


def load_config(cfg: DictConfig) -> Dataset:
    """:func:`load` from a config node with its keys.

    Raises:
        DatasetError: an unknown task, or sizes the task cannot use.
    """
    _check(cfg)
    # One independent stream per split, so changing n_train does not change val or test.
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.data_seed).spawn(3)]
    counts = (cfg.n_train, cfg.n_val, cfg.n_test)
    metadata = {
        "task": cfg.task,
        "seq_len": cfg.seq_len,
        "sizes": dict(zip(SPLITS, counts)),
        "data_seed": cfg.data_seed,
    }
    build = {"adding": _adding, "copy": _copy}.get(cfg.task, _sine)  # the third Task; load refuses any other
    return build(cfg, rngs, counts, metadata)


def _adding(cfg: DictConfig, rngs: list[np.random.Generator], counts: tuple, metadata: dict) -> Dataset:
    """The adding problem's splits, its constant-1 baseline and the ridge reference."""
    splits = [adding_problem(n, cfg.seq_len, rng) for n, rng in zip(counts, rngs)]
    baseline = {split: mse(np.ones_like(y), y) for split, (_, y) in zip(SPLITS, splits)}
    ridge, fit = ridge_losses(splits[0], dict(zip(SPLITS[1:], splits[1:])))
    return Dataset(
        name="synthetic",
        train=splits[0],
        val=splits[1],
        test=splits[2],
        loss="mse",
        baseline_loss=check_baselines(baseline, "synthetic adding"),
        feature_names=["value", "marker"],
        metadata={
            "source": "synthetic adding problem (values U[0,1], one marker per half, target = marked sum)",
            **metadata,
            "baseline": "always predict 1 (expected MSE 1/6)",
            "reference": {"ridge": _ridge_note(fit)},
        },
        reference_losses={"ridge": ridge},
    )


def _copy(cfg: DictConfig, rngs: list[np.random.Generator], counts: tuple, metadata: dict) -> Dataset:
    """The copy task's splits and its memoryless layout-aware baseline (no reference predictor)."""
    k, alphabet = cfg.copy_symbols, cfg.copy_alphabet
    splits = [copy_problem(n, cfg.seq_len, k, alphabet, rng) for n, rng in zip(counts, rngs)]
    probs = copy_memoryless_probs(cfg.seq_len, k, alphabet)
    baseline = {split: cross_entropy(probs, y) for split, (_, y) in zip(SPLITS, splits)}
    return Dataset(
        name="synthetic",
        train=splits[0],
        val=splits[1],
        test=splits[2],
        loss="sparse_categorical_crossentropy",
        baseline_loss=check_baselines(baseline, "synthetic copy"),
        feature_names=["blank", *(f"symbol_{i}" for i in range(1, alphabet + 1)), "marker"],
        metadata={
            "source": f"synthetic copy task (Arjovsky et al. 2016): recall {k} symbols after a delay",
            **metadata,
            "copy_symbols": k,
            "copy_alphabet": alphabet,
            "delay": cfg.seq_len - 2 * k,
            "baseline": (
                "memoryless layout-aware predictor: blank with certainty for the first seq_len - K steps, "
                f"uniform over the {alphabet} symbols for the last K; cross-entropy per step computed on "
                f"the data, = K ln(A) / seq_len = {copy_baseline_formula(cfg.seq_len, k, alphabet):.6f} nats"
            ),
        },
        input_vocab=alphabet + 2,
        n_classes=alphabet + 1,
        sequence_output=True,
    )


def _sine(cfg: DictConfig, rngs: list[np.random.Generator], counts: tuple, metadata: dict) -> Dataset:
    """The noisy sum of sines' splits, its persistence baseline, the ridge reference and the noise floor."""
    splits = [
        sine_problem(
            n,
            cfg.seq_len,
            cfg.sine_components,
            cfg.sine_noise,
            cfg.sine_min_period,
            cfg.sine_max_period,
            rng,
        )
        for n, rng in zip(counts, rngs)
    ]
    baseline = {split: mse(x[:, -1, :], y) for split, (x, y) in zip(SPLITS, splits)}
    ridge, fit = ridge_losses(splits[0], dict(zip(SPLITS[1:], splits[1:])))
    return Dataset(
        name="synthetic",
        train=splits[0],
        val=splits[1],
        test=splits[2],
        loss="mse",
        baseline_loss=check_baselines(baseline, "synthetic sine"),
        feature_names=["value"],
        metadata={
            "source": "synthetic noisy sum of sines (random period, amplitude, phase per sequence); predict next",
            **metadata,
            "sine_components": cfg.sine_components,
            "sine_noise": cfg.sine_noise,
            "sine_periods": [cfg.sine_min_period, cfg.sine_max_period],
            "baseline": "last-value persistence: predict x[T-1] for x[T]",
            # The target's own noise: no model's MSE goes below it (in expectation).
            "noise_floor_mse": cfg.sine_noise**2,
            "noise_floor_norm_loss": cfg.sine_noise**2 / baseline["val"],
            "reference": {"persistence": "predict x[T-1] (the trivial baseline)", "ridge": _ridge_note(fit)},
        },
        reference_losses={"persistence": {s: baseline[s] for s in SPLITS[1:]}, "ridge": ridge},
    )
