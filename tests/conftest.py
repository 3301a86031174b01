"""Shared fixtures: tiny configs and throwaway MLflow stores, so each test trains in seconds."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest

# A run that takes a couple of seconds on 2 cores: short sequences, few samples, few units.
TINY = (
    "dataset.seq_len=12",
    "dataset.n_train=128",
    "dataset.n_val=64",
    "dataset.n_test=64",
    "model.units=8",
    "train.epochs=2",
    "train.batch_size=32",
    "train.verbose=0",
)


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    """A fresh SQLite MLflow store for one test."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def tiny_cfg(tracking_uri):
    """Compose the packaged config with TINY sizes and a private store; extra overrides go last."""
    import lstm_influence as li

    def make(*overrides: str):
        return li.compose([*TINY, f"tracking.uri={tracking_uri}", *overrides])

    return make
