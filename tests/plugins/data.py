"""A user's dataset: a function that returns ``lstm_influence.Dataset``."""

from __future__ import annotations

import numpy as np

import lstm_influence as li


def running_sign(*, name: str = "running_sign", seq_len: int = 8, n: int = 96, data_seed: int = 0, **kwargs):
    """Is the running sum of a ±1 sequence positive at the end? Regression on the sum; trivial: the train mean."""
    if n < 12:
        raise li.DatasetError(f"dataset.n={n}: expected at least 12 sequences")
    rng = np.random.default_rng(data_seed)
    x = rng.choice([-1.0, 1.0], size=(n, seq_len, 1)).astype("float32")
    y = x.sum(axis=1).astype("float32")
    cut = [n // 2, 3 * n // 4]
    train, val, test = np.split(np.arange(n), cut)
    mean = float(y[train].mean())
    return li.Dataset(
        name=name,
        train=(x[train], y[train]),
        val=(x[val], y[val]),
        test=(x[test], y[test]),
        loss="mse",
        baseline_loss={split: float(np.mean((y[idx] - mean) ** 2)) for split, idx in (("val", val), ("test", test))},
        feature_names=["step"],
    )
