"""Every run says where it came from: the commit and dirty flag, package versions, backend, machine, and its data."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess

import numpy as np
import pytest

import lstm_influence as li
from lstm_influence import names, tracking
from lstm_influence.tracking import provenance
from tests.helpers import REPO, runs_of

GIT = shutil.which("git")


def git(folder, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A git repository holding a package folder and a conf folder, committed clean."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "conf").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "conf" / "config.yaml").write_text("seed: 0\n")
    (root / "README.md").write_text("notes\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return root


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_a_clean_checkout_gives_its_commit_and_not_dirty(checkout):
    state = provenance.code_state(checkout / "pkg")
    assert state[names.GIT_COMMIT] == git(checkout, "rev-parse", "HEAD") and len(state[names.GIT_COMMIT]) == 40
    assert state[names.GIT_DIRTY] == "false"
    assert state[names.SOURCE_TYPE] == "LOCAL" and state[names.SOURCE_NAME] == "lstm_influence"


@pytest.mark.skipif(GIT is None, reason="git is not installed")
@pytest.mark.parametrize(
    ("change", "dirty"),
    [
        ("README.md", "true"),  # a tracked file changed anywhere
        ("pkg/new_strategy.py", "true"),  # a new file in the package
        ("conf/strategy.yaml", "true"),  # a new file in the configs
        ("scratch.txt", "false"),  # an untracked file outside the code does not change what ran
    ],
)
def test_changes_that_the_commit_does_not_hold_make_the_run_dirty(checkout, change, dirty):
    (checkout / change).write_text("edited\n")
    assert provenance.code_state(checkout / "pkg")[names.GIT_DIRTY] == dirty


def test_a_package_outside_any_checkout_has_no_commit(tmp_path):
    (tmp_path / "pkg").mkdir()
    state = provenance.code_state(tmp_path / "pkg")
    assert names.GIT_COMMIT not in state and names.GIT_DIRTY not in state
    assert state[names.SOURCE_NAME] == "lstm_influence"


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_a_checkout_that_does_not_track_the_package_has_no_commit(checkout):
    (checkout / "site").mkdir()  # say, a virtual environment inside a repository, ignored by it
    (checkout / ".gitignore").write_text("site/\n")
    assert names.GIT_COMMIT not in provenance.code_state(checkout / "site")


def test_versions_name_every_package_of_the_contract_as_installed():
    found = provenance.versions("tensorflow")
    expected = {
        "python": platform.python_version(),
        "lstm_influence": importlib.metadata.version("lstm_influence"),
        "keras": importlib.metadata.version("keras"),
        "tensorflow": importlib.metadata.version("tensorflow"),
        "mlflow": importlib.metadata.version("mlflow"),
        "numpy": importlib.metadata.version("numpy"),
    }
    assert found == {f"version.{name}": version for name, version in expected.items()}
    on_jax = provenance.versions("jax")
    assert "version.tensorflow" not in on_jax
    assert on_jax.get("version.jax") == provenance.package_version("jax")


@pytest.mark.parametrize(
    ("change", "same"),
    [
        (lambda x, y: (x.copy(), y.copy()), True),
        (lambda x, y: (x + (np.arange(x.size).reshape(x.shape) == 7) * np.float32(1e-3), y), False),
        (lambda x, y: (x.astype(np.float64), y), False),
        (lambda x, y: (x.reshape(6, 4, 1), y), False),
        (lambda x, y: (y, x), False),
    ],
    ids=["equal", "one-value", "dtype", "shape", "order"],
)
def test_the_data_digest_follows_the_arrays(change, same):
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 2, 2), dtype=np.float32), rng.random(6, dtype=np.float32)
    digest = provenance.array_digest([x, y])
    assert len(digest) == provenance.DIGEST_LENGTH
    assert (provenance.array_digest(list(change(x, y))) == digest) is same


def test_every_training_run_carries_its_provenance_and_its_data(tiny_cfg):
    first = li.run(tiny_cfg("seed=0"))
    second = li.run(tiny_cfg("seed=1"))  # paired: another seed, the same data
    other = li.run(tiny_cfg("seed=0", "dataset.data_seed=1"))  # other data
    cfg = tiny_cfg()
    client = tracking.make_client(cfg.tracking.uri)
    runs = {key: client.get_run(summary["run_id"]) for key, summary in (("a", first), ("b", second), ("c", other))}
    tags = runs["a"].data.tags
    for key in ("python", "lstm_influence", "keras", "tensorflow", "mlflow", "numpy"):
        assert tags[f"version.{key}"], key
    assert tags[names.KERAS_BACKEND] == "tensorflow" and tags[names.CPU] and int(tags[names.CPU_CORES]) >= 1
    assert tags[names.TF_THREADS]
    if GIT is not None and (REPO / ".git").exists():
        assert tags[names.GIT_COMMIT] == git(REPO, "rev-parse", "HEAD")
        assert tags[names.GIT_DIRTY] in ("true", "false")

    def data_of(run) -> dict[str, tuple[str, str]]:
        found = {}
        for item in run.inputs.dataset_inputs:
            (context,) = [tag.value for tag in item.tags if tag.key == "mlflow.data.context"]
            found[context] = (item.dataset.name, item.dataset.digest)
        return found

    a, b, c = (data_of(runs[key]) for key in "abc")
    assert set(a) == {"training", "validation", "testing"}
    assert {name for name, _ in a.values()} == {"synthetic/adding"}
    assert a == b  # paired runs visibly share their data
    assert all(a[context][1] != c[context][1] for context in a)  # other data, other digests
    data = li.load_dataset(cfg)
    assert a["training"][1] == provenance.array_digest(list(data.train))


@pytest.mark.slow
def test_a_sweeps_parent_carries_the_provenance_of_the_process_that_ran_it(tmp_path):
    from tests.helpers import TINY, store_uri, sweep

    uri = store_uri(tmp_path)
    result = sweep([*TINY, f"tracking.uri={uri}", "seed=0,1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,), children = runs_of(uri)
    for run in [parent, *children]:
        assert run.data.tags["version.keras"] == importlib.metadata.version("keras")
        assert run.data.tags[names.KERAS_BACKEND] == "tensorflow"
    assert len({run.inputs.dataset_inputs[0].dataset.digest for run in children}) == 1
