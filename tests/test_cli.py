"""The command line as a new user meets it: a subprocess in an empty folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def _cli(args, cwd, env=None, timeout=300):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lstm_influence", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_default_command_leaves_one_finished_run_in_mlflow_db(tmp_path):
    result = _cli(["train.epochs=2", *[o for o in TINY if not o.startswith("train.epochs")]], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "mlflow.db").exists()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lstm-influence")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "baseline-synthetic-s0"
    assert [p.step for p in client.get_metric_history(run.info.run_id, "val/loss")] == [1, 2]
    assert f"#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}" in result.stderr
    summary = result.stderr[result.stderr.index("baseline-synthetic-s0: 2 of 2 epochs") :]
    assert "1 = no better than it" in summary and "ridge reference" in summary
    assert summary.index("Target (validation") < summary.index("#/experiments/")


def test_a_bad_value_gives_one_line_exit_2_and_no_run(tmp_path):
    result = _cli([*TINY, "strategy=input_transform", "strategy.scale={7: 2.0}"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "strategy.scale" in errors[0]
    assert "Traceback" not in result.stderr
    database = tmp_path / "mlflow.db"
    assert not database.exists() or not MlflowClient(f"sqlite:///{database}").search_experiments(
        filter_string="name = 'lstm-influence'"
    )


def test_help_and_bad_keys_do_not_import_tensorflow(tmp_path):
    probe = (
        "import sys, runpy; sys.argv = ['lstm_influence', '--help'];\n"
        "try:\n    runpy.run_module('lstm_influence', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported by --help'\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "strategy: baseline" in result.stdout  # Hydra's list of config group options
    bad = _cli(["train.epoch=3"], tmp_path, timeout=120)
    assert bad.returncode != 0 and "train.epoch" in bad.stderr
    assert not (tmp_path / "mlflow.db").exists()  # rejected before any run was opened


@pytest.mark.slow
def test_configs_are_found_from_a_non_editable_install(tmp_path):
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {"PYTHONPATH": str(target)}
    result = _cli(["--cfg", "job", "strategy=baseline", "dataset=synthetic"], workdir, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "name: baseline" in result.stdout and "task: adding" in result.stdout
    located = subprocess.run(
        [sys.executable, "-c", "import lstm_influence; print(lstm_influence.__file__)"],
        cwd=workdir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert str(target) in located.stdout
