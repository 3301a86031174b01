"""The command line as a new user meets it: a subprocess in an empty folder."""

from __future__ import annotations

import pytest

from lstm_influence import tracking
from tests import helpers
from tests.helpers import EXPERIMENT, REPO, TINY, experiment_runs, run_python, store_uri, without


def test_default_command_leaves_one_finished_run_in_mlflow_db(tmp_path):
    result = helpers.cli(["train.epochs=2", *without(TINY, "train.epochs")], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "mlflow.db").exists()
    uri = store_uri(tmp_path)
    (run,) = experiment_runs(uri)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "baseline-adding-s0"
    history = tracking.metric_history(tracking.make_client(uri), run.info.run_id, "val/loss")
    assert [step for step, _ in history] == [1, 2]
    assert f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}" in result.stderr
    summary = result.stderr[result.stderr.index("baseline-adding-s0: 2 of 2 epochs") :]
    assert "1 = no better than it" in summary and "ridge reference" in summary
    assert summary.index("Target (validation") < summary.index("#/experiments/")


def test_a_bad_value_gives_one_line_exit_2_and_no_run(tmp_path):
    result = helpers.cli([*TINY, "strategy=input_transform", "strategy.scale={7: 2.0}"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "strategy.scale" in errors[0]
    assert "Traceback" not in result.stderr
    database = tmp_path / "mlflow.db"
    if database.exists():  # the experiment is not even created
        assert tracking.find_experiment_id(tracking.make_client(store_uri(tmp_path)), EXPERIMENT) is None


def test_help_and_bad_keys_do_not_import_tensorflow(tmp_path):
    probe = (
        "import sys, runpy; sys.argv = ['lstm_influence', '--help'];\n"
        "try:\n    runpy.run_module('lstm_influence', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported by --help'\n"
    )
    result = run_python("-c", probe, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "strategy: baseline" in result.stdout  # Hydra's list of config group options
    bad = helpers.cli(["train.epoch=3"], tmp_path, timeout=120)
    assert bad.returncode == 1 and "train.epoch" in bad.stderr  # Hydra's composition error, not a ConfigError (2)
    assert not (tmp_path / "mlflow.db").exists()  # rejected before any run was opened


@pytest.mark.slow
def test_configs_are_found_from_a_non_editable_install(tmp_path):
    target = tmp_path / "site"
    install = run_python(
        "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(REPO), timeout=600
    )
    assert install.returncode == 0, install.stderr[-3000:]
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {"PYTHONPATH": str(target)}
    result = helpers.cli(["--cfg", "job", "strategy=baseline", "dataset=synthetic"], workdir, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "name: baseline" in result.stdout and "task: adding" in result.stdout
    located = run_python("-c", "import lstm_influence; print(lstm_influence.__file__)", cwd=workdir, env=env)
    assert str(target) in located.stdout
