"""Synthetic long-range tasks whose trivial baselines are known in closed form.

- ``adding`` (Hochreiter & Schmidhuber 1997; as in Arjovsky et al. 2016 and Tallec & Ollivier 2018): each step
  carries a value ``u ~ U[0, 1]`` and a marker; exactly one marker falls in each half of the sequence and the
  target is the sum of the two marked values. Always predicting 1 scores MSE = 2 · Var(U) = 1/6.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from lstm_influence.datasets.base import Dataset, DatasetError, mse

TASKS = ("adding",)


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


def _check_sizes(cfg: DictConfig) -> None:
    if cfg.seq_len < 2:
        raise DatasetError(f"dataset.seq_len={cfg.seq_len}: the adding task needs at least 2 steps")
    for key in ("n_train", "n_val", "n_test"):
        if cfg[key] < 1:
            raise DatasetError(f"dataset.{key}={cfg[key]}: expected a positive sample count")


def load(cfg: DictConfig) -> Dataset:
    """The synthetic task ``cfg.task``, drawn deterministically from ``cfg.data_seed``."""
    if cfg.task not in TASKS:
        raise DatasetError(f"dataset.task={cfg.task!r}: expected one of {', '.join(TASKS)}")
    _check_sizes(cfg)
    # One independent stream per split, so changing n_train does not change val or test.
    train_rng, val_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.data_seed).spawn(3))
    train = adding_problem(cfg.n_train, cfg.seq_len, train_rng)
    val = adding_problem(cfg.n_val, cfg.seq_len, val_rng)
    test = adding_problem(cfg.n_test, cfg.seq_len, test_rng)
    baseline = {split: mse(np.ones_like(y), y) for split, (_, y) in zip(("train", "val", "test"), (train, val, test))}
    return Dataset(
        name="synthetic",
        train=train,
        val=val,
        test=test,
        loss="mse",
        baseline_loss=baseline,
        feature_names=["value", "marker"],
        metadata={
            "source": "synthetic adding problem (values U[0,1], one marker per half, target = marked sum)",
            "task": "adding",
            "seq_len": cfg.seq_len,
            "sizes": {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test},
            "baseline": "always predict 1 (expected MSE 1/6)",
            "data_seed": cfg.data_seed,
        },
    )
