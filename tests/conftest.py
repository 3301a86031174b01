"""Fixtures: tiny configs and throwaway MLflow stores, so each test trains in seconds (built on ``tests.helpers``)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest

from tests.helpers import Store, new_store, store_uri, tiny_config


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    """A fresh SQLite MLflow store for one test."""
    return store_uri(tmp_path)


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> Store:
    """A fresh SQLite MLflow store for one test module; each test that writes to it uses its own experiment."""
    return new_store(tmp_path_factory.mktemp("mlflow_store"))


@pytest.fixture
def tiny_cfg(tracking_uri):
    """Compose the packaged config with TINY sizes and a private store; extra overrides go last."""

    def make(*overrides: str):
        return tiny_config(tracking_uri, *overrides)

    return make
