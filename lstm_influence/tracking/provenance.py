"""Where a run came from: its code, the package versions and backend that ran it, the machine, and its data.

Every run the project creates carries :func:`provenance_tags` (MLflow's own ``mlflow.source.*`` conventions for the
code, so the UI's "Source" column shows the commit; ``version.<package>``, ``keras_backend``, ``cpu`` beside them),
and every training run logs its data as an MLflow dataset input (:func:`dataset_inputs`), so the UI's "Dataset"
column names it and runs trained on the same arrays show the same digest.

The digest is computed from the arrays themselves (dtype, shape and bytes of each split's inputs and targets), not
from the config that made them: two configs that produce the same data share it, and a change in a data loader that
alters the arrays changes it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag

from lstm_influence.names import (
    CPU,
    CPU_CORES,
    GIT_BRANCH,
    GIT_COMMIT,
    GIT_DIRTY,
    KERAS_BACKEND,
    SOURCE_NAME,
    SOURCE_TYPE,
    VERSION_PREFIX,
)

PACKAGE = "lstm_influence"
DEFAULT_BACKEND = "tensorflow"  # Keras's own default when KERAS_BACKEND is unset
GIT_TIMEOUT_S = 10.0
# MLflow's context tag on a dataset input, with its conventional values per split.
DATA_CONTEXT_TAG = "mlflow.data.context"
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}
DIGEST_LENGTH = 12  # hex characters: what the MLflow UI shows beside a dataset's name


def keras_backend() -> str:
    """The Keras backend of this process: Keras's own answer once it is imported, else what it will choose."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return str(keras.config.backend())
    return os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (from its metadata, without importing it); None if absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(backend: str | None = None) -> dict[str, str]:
    """``version.<package>`` for Python, this package, Keras, the backend's package, MLflow and numpy.

    The backend's package is TensorFlow's (``tensorflow``, or the ``tensorflow-cpu`` build) or JAX's, whichever
    runs Keras here; packages that are not installed are left out.
    """
    backend = backend or keras_backend()
    found = {"python": platform.python_version()}
    candidates = {
        PACKAGE: [PACKAGE],
        "keras": ["keras"],
        backend: {"tensorflow": ["tensorflow", "tensorflow-cpu", "tensorflow-macos"]}.get(backend, [backend]),
        "mlflow": ["mlflow", "mlflow-skinny"],
        "numpy": ["numpy"],
    }
    for name, distributions in candidates.items():
        version = next(filter(None, map(package_version, distributions)), None)
        if version is not None:
            found[name] = version
    return {f"{VERSION_PREFIX}{name}": version for name, version in found.items()}


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what the platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_state(package_dir: Path | None = None) -> dict[str, str]:
    """The commit the package was imported from, when it was imported from a git checkout.

    A package that git does not track there (an installed wheel, a copy) gives only ``mlflow.source.name`` and
    ``mlflow.source.type``. ``git_dirty`` is ``true`` when a tracked file differs from the commit or the package or
    config folders hold files git does not know yet: then the commit alone does not reproduce the run.
    """
    package_dir = (package_dir or Path(__file__).resolve().parents[1]).resolve()
    state = {SOURCE_NAME: PACKAGE, SOURCE_TYPE: "LOCAL"}
    root = _git(package_dir, "rev-parse", "--show-toplevel")
    if not root or _git(package_dir, "ls-files", "--error-unmatch", "__init__.py") is None:
        return state
    commit = _git(package_dir, "rev-parse", "HEAD")
    if not commit:
        return state
    tracked = _git(Path(root), "status", "--porcelain", "--untracked-files=no")
    code_folders = [str(folder) for folder in (package_dir, Path(root) / "conf") if folder.is_dir()]
    untracked = _git(Path(root), "status", "--porcelain", "--untracked-files=all", "--", *code_folders)
    dirty = (
        tracked is None
        or untracked is None
        or bool(tracked)
        or any(line.startswith("??") for line in untracked.splitlines())
    )
    state.update({GIT_COMMIT: commit, GIT_DIRTY: str(dirty).lower()})
    branch = _git(package_dir, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        state[GIT_BRANCH] = branch
    return state


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.cache
def _static_tags() -> dict[str, str]:
    # The code, versions and machine cannot change inside a running process: computed once.
    return {**code_state(), CPU: cpu_model(), CPU_CORES: str(cpu_cores())}


def provenance_tags() -> dict[str, str]:
    """The tags every run carries: code (``mlflow.source.*``, ``git_dirty``), ``version.*``, ``keras_backend``,
    ``cpu`` and ``cpu_cores``."""
    backend = keras_backend()
    return {**_static_tags(), **versions(backend), KERAS_BACKEND: backend}


# ---------------------------------------------------------------------------------------------------------------
# the data


def array_digest(arrays: Sequence[np.ndarray]) -> str:
    """A digest of ``arrays``: their dtypes, shapes and bytes in order (the first :data:`DIGEST_LENGTH` hex of a
    SHA-256), so equal arrays give equal digests on any machine of the same byte order."""
    sha = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        sha.update(json.dumps([array.dtype.str, list(array.shape)]).encode())
        sha.update(array.tobytes())
    return sha.hexdigest()[:DIGEST_LENGTH]


def dataset_label(name: str, task: str | None) -> str:
    """The name a run's data is shown under: the dataset, and its task where the family has several."""
    return f"{name}/{task}" if task else name


def dataset_inputs(
    label: str, splits: Mapping[str, tuple[np.ndarray, np.ndarray]], source: str | None = None
) -> list[DatasetInput]:
    """One MLflow dataset input per split (context ``training``, ``validation``, ``testing``), named ``label``, each
    with the digest of its own arrays; the schema and profile are MLflow's own for numpy data.

    Args:
        label: see :func:`dataset_label`.
        splits: split name (``train``, ``val``, ``test``) -> (inputs, targets).
        source: where the data came from (a file), recorded as the dataset's source; None: generated in code.
    """
    import mlflow.data

    inputs = []
    for split, (x, y) in splits.items():
        numpy_dataset = mlflow.data.from_numpy(x, targets=y, name=label, digest=array_digest([x, y]), source=source)
        entity = DatasetEntity(**numpy_dataset.to_dict())
        context = SPLIT_CONTEXTS.get(split, split)
        inputs.append(DatasetInput(entity, tags=[InputTag(key=DATA_CONTEXT_TAG, value=context)]))
    return inputs


__all__ = [
    "array_digest",
    "code_state",
    "cpu_model",
    "dataset_inputs",
    "dataset_label",
    "keras_backend",
    "provenance_tags",
    "versions",
]
