"""A dataset plug-in: recall the first value of a sequence at its end (a memory over the whole sequence)."""

from __future__ import annotations

import numpy as np

import lstm_influence as li


def first_value(
    *,
    name: str = "first_value",
    seq_len: int = 50,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 500,
    data_seed: int = 0,
    **kwargs,
) -> li.Dataset:
    """Sequences of U[-1, 1] values; the target is the first one. The trivial predictor (the train mean) scores the
    variance, about 1/3; a network scores below it only if it carries the first value through ``seq_len`` steps."""
    for key, value in (("seq_len", seq_len), ("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if value < 2:
            raise li.DatasetError(f"dataset.{key}={value}: expected at least 2")
    rng = np.random.default_rng(data_seed)
    splits = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        x = rng.uniform(-1.0, 1.0, size=(n, seq_len, 1)).astype("float32")
        splits[split] = (x, x[:, 0, :].copy())
    mean = float(splits["train"][1].mean())
    return li.Dataset(
        name=name,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        loss="mse",
        baseline_loss={s: float(np.mean((y - mean) ** 2)) for s, (_, y) in splits.items()},
        feature_names=["value"],
        metadata={"source": "janet_plugin.data.first_value", "seq_len": seq_len, "baseline": "the train mean"},
    )
