"""Equal-budget tuning: the search space per strategy, the study's MLflow record, resume, pruning, the tuned file,
and a proof that the test split is never read."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import NamedTuple

import numpy as np
import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf

import lstm_influence as li
from lstm_influence import names, tracking
from lstm_influence.analysis.tuning_report import tuning_results
from lstm_influence.config.schema import ConfigError, check_keys
from lstm_influence.orchestration.tuning import (
    compose_tuning,
    objective_value,
    open_storage,
    sampling,
    search_space,
    storage_url,
    training_config,
    tune,
)
from lstm_influence.orchestration.tuning.results import TuneResult
from tests.helpers import (
    EXPERIMENT,
    TINY,
    Store,
    child_runs,
    compose_with_hydra,
    experiment_runs,
    experiment_script,
    new_store,
    run_python,
    start_together,
    tiny_config,
)

BASE_SPACE = {"learning_rate", "batch_size", "units", "clip_norm"}


# ---------------------------------------------------------------------------------------------------------------
# the space and the preset (no training)


@pytest.mark.parametrize(
    ("overrides", "extra"),
    [
        (["strategy=baseline"], set()),
        (["strategy=bias_init"], {"t_max"}),  # chrono is bias_init's default preset
        (["strategy=bias_init", "strategy.preset=forget_one"], set()),  # t_max means nothing there
        (["strategy=extra_variable"], {"l2"}),
        (["strategy=custom_init", "dataset=financial"], set()),
    ],
)
def test_a_strategy_adds_its_own_keys_only_when_selected(overrides, extra):
    cfg = compose_tuning(overrides)
    space = search_space(cfg.tune, training_config(cfg))
    assert {param.name for param in space} == BASE_SPACE | extra
    learning_rate = next(param for param in space if param.name == "learning_rate")
    assert learning_rate.log and learning_rate.low < cfg.train.learning_rate < learning_rate.high


def test_the_all_preset_sweeps_every_strategy_and_dataset_with_the_same_space():
    cfg = compose_tuning(["tune=all"])
    default = compose_tuning()
    assert cfg.tune.name == "all"
    assert OmegaConf.to_container(cfg.tune.space) == OmegaConf.to_container(default.tune.space)
    assert cfg.tune.trials == default.tune.trials
    with_hydra = compose_with_hydra("tuning", ["tune=all"])
    assert dict(with_hydra.hydra.sweeper.params) == {"strategy": "glob(*)", "dataset": "glob(*)", "seed": "0"}
    # the training sweep's callback (one parent per sweep of training runs) is not attached: studies have their own
    assert dict(with_hydra.hydra.callbacks) == {}
    assert set(compose_with_hydra("config", []).hydra.callbacks) == {"sweep"}
    # under a comparison preset (for its sizes, e.g. experiment=compare), one tuning seed, not the preset's seeds
    assert compose_with_hydra("tuning", ["tune=all", "experiment=compare_tuned"]).hydra.sweeper.params.seed == "0"
    # and the comparison on tuned configurations sweeps the tuned files and fresh seeds only
    compare = compose_with_hydra("config", ["experiment=compare_tuned"]).hydra.sweeper.params
    assert set(compare) == {"tuned", "seed"} and compare.tuned == "glob(*)" and "0" not in compare.seed.split(",")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tune.space.units.key=model.unitz", r"tune\.space\.units\.key=model\.unitz: no such value"),
        ("tune.space.learning_rate.low=0.0", r"tune\.space\.learning_rate: log=true needs low > 0"),
        ("tune.space.units.choices=[8.5]", r"tune\.space\.units\.key=model\.units: the value 8\.5 does not fit"),
        ("tune.space.clip_norm.key=seed", r"tune\.space\.clip_norm\.key=seed: .*not tunable"),
        ("tune.trials=0", r"tune\.trials=0"),
        ("tune.label=a/b", r"tune\.label='a/b'"),
    ],
)
def test_a_bad_tune_config_fails_before_anything_runs(tmp_path, override, message):
    cfg = compose_tuning([f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", override])
    with pytest.raises(ConfigError, match=message):
        tune(cfg, train_fn=_never_called)
    assert not (tmp_path / "mlflow.db").exists()


def _never_called(*args, **kwargs):
    raise AssertionError("a trial ran although the tune config is invalid")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tune.space.batch_size.type=grid", r"Invalid value 'grid', expected one of \[float, int, categorical\]"),
        ("tune.objective=test_loss", r"Invalid value 'test_loss', expected one of \[final, best, aulc\]"),
        ("tune.pruner=hyperband", r"Invalid value 'hyperband', expected one of \[median, none\]"),
    ],
)
def test_a_choice_outside_its_set_is_refused_when_the_tuning_config_is_composed(override, message):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as info:
        compose_tuning([override])
    assert re.search(message, str(info.value.__cause__))
    assert f"full_key: {override.split('=')[0]}" in str(info.value.__cause__)


def test_objective_definitions():
    losses = [0.9, 0.5, 0.7]
    assert objective_value(losses, "final", diverged=False, penalty=100.0) == 0.7
    assert objective_value(losses, "best", diverged=False, penalty=100.0) == 0.5
    assert objective_value(losses, "aulc", diverged=False, penalty=100.0) == pytest.approx(0.7)
    assert objective_value(losses, "final", diverged=True, penalty=100.0) == 100.0
    assert objective_value([0.9, math.nan], "best", diverged=False, penalty=100.0) == 100.0
    assert objective_value([], "final", diverged=False, penalty=100.0) == 100.0


def test_optuna_storage_sits_beside_the_mlflow_store():
    assert storage_url("sqlite:///mlflow.db") == "sqlite:///optuna.db"
    assert storage_url("sqlite:////data/runs/mlflow.db") == "sqlite:////data/runs/optuna.db"
    assert storage_url("http://127.0.0.1:5000") == "sqlite:///optuna.db"
    assert storage_url("sqlite:///mlflow.db", "postgresql://db/optuna") == "postgresql://db/optuna"


# ---------------------------------------------------------------------------------------------------------------
# the study's bookkeeping, with a stand-in for the runner (no TensorFlow)


class FakeRunner:
    """Logs an MLflow child run like the runner and feeds the epoch hook a curve that is best at lr = 10^-2.5."""

    def __init__(self, fail_on: int | None = None):
        self.calls = 0
        self.fail_on = fail_on

    def __call__(self, cfg, context):
        assert context.evaluate_test is False
        self.calls += 1
        with tracking.training_run(cfg, parent_run_id=context.parent_run_id, extra_tags=context.tags) as logger:
            if self.calls == self.fail_on:
                raise RuntimeError("trial crashed")
            distance = abs(math.log10(cfg.train.learning_rate) + 2.5)
            for epoch in range(1, cfg.train.epochs + 1):
                value = distance + 1.0 / epoch
                logger.log_metrics({"val/norm_loss": value}, step=epoch)
                if context.epoch_hook(epoch, {"val/norm_loss": value}):
                    break
        return {"stab/diverged": 0.0, "run_id": logger.run_id}


def _fake_cfg(store: Store, name, *overrides):
    """A stand-in study's config: its own experiment ``name`` in the module's store, its own Optuna storage."""
    return compose_tuning(
        [
            f"tracking.uri={store.uri}",
            f"tracking.experiment={name}",
            f"tune.storage=sqlite:///{store.root / name}.db",
            f"tune.config_dir={store.root / name}",
            "train.epochs=4",
            *overrides,
        ]
    )


def _params_by_trial(storage, study):
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    return {t.number: (t.state.name, t.params) for t in trials}


def test_a_resumed_study_samples_what_an_uninterrupted_one_does(mlflow_store):
    whole = tune(_fake_cfg(mlflow_store, "whole", "tune.trials=5"), train_fn=FakeRunner())
    first = tune(_fake_cfg(mlflow_store, "split", "tune.trials=3"), train_fn=FakeRunner())
    runner = FakeRunner()
    resumed = tune(_fake_cfg(mlflow_store, "split", "tune.trials=5"), train_fn=runner)
    assert runner.calls == 2  # 3 done, 2 added
    assert resumed.study == first.study and resumed.parent_run_id == first.parent_run_id
    assert (resumed.trials, resumed.budget) == (5, 5)
    assert _params_by_trial(resumed.storage, resumed.study) == _params_by_trial(whole.storage, whole.study)
    assert len(child_runs(mlflow_store.uri, resumed.parent_run_id, "split")) == 5


def test_pruned_trials_count_toward_the_budget_and_are_marked(mlflow_store):
    cfg = _fake_cfg(
        mlflow_store, "pruning", "tune.trials=8", "tune.pruner_startup_trials=2", "tune.pruner_warmup_epochs=0"
    )
    result = tune(cfg, train_fn=FakeRunner())
    assert result.trials == 8 and result.pruned >= 1
    runs = child_runs(mlflow_store.uri, result.parent_run_id, "pruning")
    assert len(runs) == 8
    pruned = [run for run in runs if run.data.tags["trial_state"] == "PRUNED"]
    assert len(pruned) == result.pruned
    client = tracking.make_client(mlflow_store.uri)
    for run in pruned:
        assert "tune/objective" not in run.data.metrics
        assert len(client.get_metric_history(run.info.run_id, "val/norm_loss")) < 4
    default = [run for run in runs if run.data.tags["trial_role"] == "default"]
    assert len(default) == 1 and default[0].data.tags["trial_state"] == "COMPLETE"  # never pruned


def test_failed_and_killed_trials_do_not_count_and_are_run_again(mlflow_store):
    cfg = _fake_cfg(mlflow_store, "failures", "tune.trials=3")
    with pytest.raises(RuntimeError, match="trial crashed"):
        tune(cfg, train_fn=FakeRunner(fail_on=2))
    client = tracking.make_client(mlflow_store.uri)
    experiment_id = tracking.find_experiment_id(client, "failures")
    (parent,) = experiment_runs(mlflow_store.uri, "failures", {names.RUN_TYPE: names.RUN_TUNE})
    assert parent.info.status == "FAILED" and "trial crashed" in parent.data.tags["error"]
    # a process killed mid-trial leaves the trial RUNNING in Optuna and in MLflow
    study = optuna.load_study(study_name=parent.data.tags["optuna_study"], storage=parent.data.tags["optuna_storage"])
    stale = study.ask()
    orphan = client.create_run(
        experiment_id, tags={"optuna_study": study.study_name, "trial_number": str(stale.number), "run_type": "trial"}
    )
    runner = FakeRunner()
    result = tune(cfg, train_fn=runner)
    assert result.trials == 3 and result.failed == 2 and runner.calls == 2
    assert result.parent_run_id == parent.info.run_id
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    assert client.get_run(orphan.info.run_id).info.status == "KILLED"
    states = [state for state, _ in _params_by_trial(result.storage, result.study).values()]
    assert states.count("FAIL") == 2 and states.count("COMPLETE") == 3


# ---------------------------------------------------------------------------------------------------------------
# a real tiny study: 3 trials of 1 epoch, then resumed to 5, with the test split poisoned


class PoisonedSplit:
    """Stands in for ``Dataset.test``: any use (unpacking, indexing, len, numpy) fails the test."""

    def _read(self, *args, **kwargs):
        raise AssertionError("the test split was read")

    __iter__ = __getitem__ = __len__ = __array__ = _read


def _poison(monkeypatch):
    import lstm_influence.training.runner as runner

    load = runner.load_valid
    monkeypatch.setattr(runner, "load_valid", lambda valid: dataclasses.replace(load(valid), test=PoisonedSplit()))


class TinyStudy(NamedTuple):
    """A real study of 3 one-epoch trials resumed to 5, in its own store, and what it left after each part."""

    store: Store  # the study's MLflow store; its tuned files go to ``store.root / "conf"``
    first: TuneResult  # the study after 3 trials
    children_after_first: list  # the trials' runs after 3 trials
    table_after_first: pd.DataFrame  # the tuning report's table after 3 trials
    second: TuneResult  # the same study resumed to 5 trials


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> TinyStudy:
    store = new_store(tmp_path_factory.mktemp("tiny_study"))
    overrides = [*TINY, "train.epochs=1", f"tracking.uri={store.uri}", f"tune.config_dir={store.root / 'conf'}"]
    with pytest.MonkeyPatch.context() as monkeypatch:
        _poison(monkeypatch)
        first = tune(compose_tuning([*overrides, "tune.trials=3"]))
        children_after_first = child_runs(store.uri, first.parent_run_id)
        table_after_first = tuning_results(store.uri)
        second = tune(compose_tuning([*overrides, "tune.trials=5"]))
    return TinyStudy(store, first, children_after_first, table_after_first, second)


def test_a_tiny_study_leaves_one_parent_with_a_child_run_per_trial(tiny_study):
    first, children = tiny_study.first, tiny_study.children_after_first
    assert (first.trials, first.budget, first.failed) == (3, 3, 0)
    parent = tracking.make_client(tiny_study.store.uri).get_run(first.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["run_type"] == "tune" and parent.data.tags["optuna_study"] == first.study
    assert len(children) == 3
    numbers = sorted(int(run.data.params["trial.number"]) for run in children)
    assert numbers == [0, 1, 2]
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["run_type"] == "trial"
        assert {f"trial.{name}" for name in BASE_SPACE} <= set(run.data.params)
        assert run.data.params["train.learning_rate"] == run.data.params["trial.learning_rate"]
        assert not [key for key in run.data.metrics if key.startswith("test/")]
    default = [run for run in children if run.data.params["trial.role"] == "default"]
    assert len(default) == 1 and default[0].data.params["trial.learning_rate"] == "0.001"


def test_the_test_split_is_never_read(tiny_study, monkeypatch):
    # the whole study above ran with the test split poisoned; the poison does bite a normal run
    _poison(monkeypatch)
    with pytest.raises(AssertionError, match="the test split was read"):
        li.run(tiny_config(tiny_study.store.uri, "train.epochs=1", "tracking.experiment=control"))


def test_the_best_config_file_composes_back_and_selects_its_strategy_and_dataset(tiny_study):
    root, second = tiny_study.store.root, tiny_study.second
    assert second.tuned_config == root / "conf" / "tuned" / "baseline-synthetic.yaml"
    text = second.tuned_config.read_text()
    assert text.startswith("# @package _global_\n") and second.study in text
    cfg = li.compose([f"hydra.searchpath=[file://{root / 'conf'}]", "+tuned=baseline-synthetic", "seed=7"])
    check_keys(cfg)
    assert (cfg.strategy.name, cfg.dataset.name, cfg.seed) == ("baseline", "synthetic", 7)
    assert cfg.train.learning_rate == pytest.approx(second.best_values["learning_rate"])
    assert cfg.train.batch_size == second.best_values["batch_size"]
    assert cfg.model.units == second.best_values["units"]
    assert cfg.train.clip_norm == second.best_values["clip_norm"]
    assert (cfg.train.epochs, cfg.dataset.seq_len) == (1, 12)  # the settings it was tuned under travel with it
    assert "tracking" not in OmegaConf.to_container(OmegaConf.load(second.tuned_config))
    preset = li.compose(
        [f"hydra.searchpath=[file://{root / 'conf'}]", "experiment=compare_tuned", "tuned=baseline-synthetic"]
    )
    assert preset.model.units == second.best_values["units"] and preset.train.epochs == 1


def test_resuming_adds_the_missing_trials_to_the_same_study(tiny_study):
    first, second = tiny_study.first, tiny_study.second
    assert (second.study, second.parent_run_id) == (first.study, first.parent_run_id)
    assert (second.trials, second.budget) == (5, 5)
    children = child_runs(tiny_study.store.uri, second.parent_run_id)
    assert sorted(int(run.data.params["trial.number"]) for run in children) == [0, 1, 2, 3, 4]
    assert second.best_value <= second.default_value


def test_the_report_table_has_budget_best_values_and_the_default_difference(tiny_study):
    uri, second = tiny_study.store.uri, tiny_study.second
    assert tiny_study.table_after_first.loc[0, "trials"] == 3
    table = tuning_results(uri)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.strategy, row.dataset, row.budget, row.trials, row.pruned) == ("baseline", "synthetic", 5, 5, 0)
    assert row.metric == "final val/norm_loss"
    assert row.best_value == pytest.approx(second.best_value)
    assert row.default_value == pytest.approx(second.default_value)
    assert row.improvement == pytest.approx(second.default_value - second.best_value) and row.improvement >= 0
    assert row["best.learning_rate"] == pytest.approx(second.best_values["learning_rate"])
    assert row.tuned_label == "baseline-synthetic" and row.parent_run_id == second.parent_run_id
    assert tuning_results(uri, "no-such-experiment").empty


# ---------------------------------------------------------------------------------------------------------------
# the command line


def test_the_command_line_is_light_and_rejects_the_all_preset_without_multirun(tmp_path):
    probe = (
        "import sys, runpy; sys.argv = ['tune', '--help'];\n"
        "try:\n    runpy.run_module('lstm_influence.tune', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported by --help'\n"
    )
    helped = run_python("-c", probe, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "tune: all, default" in helped.stdout
    single = run_python("-m", "lstm_influence.tune", "tune=all", cwd=tmp_path)
    assert single.returncode != 0 and "add -m" in single.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_the_comparison_report_states_the_tuning_budget_and_best_values(tiny_study, tmp_path, capsys):
    # the analysis script reads the studies of the experiment and adds them to report.md
    uri, second = tiny_study.store.uri, tiny_study.second
    script = experiment_script("compare")
    summary = script.tuning_summary(uri, EXPERIMENT)
    assert summary is not None and len(summary) == 1
    assert summary.iloc[0]["budget"] == 5
    assert summary.iloc[0]["best.learning_rate"] == pytest.approx(second.best_values["learning_rate"])
    assert script.tuning_summary(uri, "no-such-experiment") is None
    # the study's experiment holds only trials, which a comparison leaves out: no run to compare exits 1, and the
    # report still renders the tuning section
    out = tmp_path / "report"
    args = ["--experiment", EXPERIMENT, "--tracking-uri", uri, "--out", str(out), "--no-log"]
    assert script.main(args) == 1
    assert "runs used: 0, left out: 0" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "## Tuning" in report and "best.learning_rate" in report


PARALLEL_STUDY = """
import sys, time
from pathlib import Path
import optuna
from lstm_influence.orchestration.tuning import open_storage

url, go, worker = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
go.with_name(f"ready-{worker}").touch()
while not go.exists():
    time.sleep(0.002)
optuna.create_study(study_name=f"study-{worker}", storage=open_storage(url))
"""


def test_parallel_studies_on_a_fresh_optuna_storage_all_start(tmp_path):
    # Four studies opening one new optuna.db at the same moment: without the lock, Optuna's table creation races
    # and some fail with "table ... already exists" (seen here in 5 of 5 rounds); with it, all four start.
    url = f"sqlite:///{tmp_path / 'fresh' / 'optuna.db'}"
    for worker in start_together(PARALLEL_STUDY, url, tmp_path, 4):
        assert worker.returncode == 0, worker.stderr[-3000:]
    studies = sorted(summary.study_name for summary in optuna.get_all_study_summaries(open_storage(url)))
    assert studies == [f"study-{worker}" for worker in range(4)]
    assert (tmp_path / "fresh" / "optuna.db.lock").exists()


# ---------------------------------------------------------------------------------------------------------------
# the start-up design: small budgets search, every arm draws the same points


def test_a_unit_quantile_maps_onto_each_kind_of_parameter():
    from lstm_influence.orchestration.tuning.space import Param

    log_float = Param("lr", "train.learning_rate", "float", 1e-4, 1e-2, log=True)
    assert log_float.from_unit(0.5) == pytest.approx(1e-3) and log_float.from_unit(0.0) == pytest.approx(1e-4)
    assert Param("c", "k", "categorical", choices=(32, 64, 128)).from_unit(0.34) == 64
    assert Param("n", "k", "int", 1.0, 4.0).from_unit(0.99) == 4
    assert Param("g", "k", "float", 0.0, 1.0, step=0.5).from_unit(0.7) == 1.0  # grid 0, 0.5, 1: third of three
    assert Param("w", "k", "int", 1.0, 100.0, log=True).from_unit(0.5) == 10  # floor(exp(ln 101 / 2))


def test_the_design_puts_one_point_in_each_stratum_of_every_parameter():
    points = np.array([sampling.design_point(i, 6, seed=0) for i in range(8)])
    for column in points.T:
        assert sorted(np.floor(column * 8).astype(int)) == list(range(8))
    # a point does not depend on how many were drawn, and another seed gives another design
    np.testing.assert_array_equal(sampling.design_point(2, 6, seed=0), points[2])
    assert not np.allclose(sampling.design_point(2, 6, seed=1), points[2])


def _search_values(result, name):
    trials = optuna.load_study(study_name=result.study, storage=result.storage).get_trials()
    return [t.user_attrs["values"][name] for t in trials if t.user_attrs.get("role") == "search"]


def test_a_budget_below_the_startup_trials_searches_the_design_with_the_same_points_for_every_arm(mlflow_store):
    baseline = tune(_fake_cfg(mlflow_store, "design-baseline", "tune.trials=5"), train_fn=FakeRunner())
    chrono = tune(
        _fake_cfg(mlflow_store, "design-chrono", "tune.trials=5", "strategy=bias_init"), train_fn=FakeRunner()
    )
    for result in (baseline, chrono):
        assert (result.sampler, result.search_trials, result.searched) == ("sobol", 4, True)
    rates = _search_values(baseline, "learning_rate")
    assert rates == _search_values(chrono, "learning_rate")  # common random numbers across arms
    # four points, one in each quarter of the log range 1e-4..3e-2
    quarters = np.floor(4 * np.log(np.array(rates) / 1e-4) / np.log(3e-2 / 1e-4)).astype(int)
    assert sorted(quarters) == [0, 1, 2, 3]
    assert len(set(_search_values(chrono, "t_max"))) == 4 and chrono.tried["t_max"] == 5  # with the default's
    table = tuning_results(mlflow_store.uri, "design-chrono")
    assert (table.loc[0, "sampler"], table.loc[0, "search_trials"], table.loc[0, "searched"]) == ("sobol", 4, True)
    assert table.loc[0, "tried.t_max"] == 5


def test_tpe_takes_over_after_the_startup_trials_and_a_single_draw_is_not_called_a_search(mlflow_store):
    longer = tune(
        _fake_cfg(mlflow_store, "design-tpe", "tune.trials=6", "tune.startup_trials=3"), train_fn=FakeRunner()
    )
    trials = optuna.load_study(study_name=longer.study, storage=longer.storage).get_trials()
    assert [t.user_attrs["sampler"] for t in trials] == ["default", "sobol", "sobol", "tpe", "tpe", "tpe"]
    assert longer.sampler == "sobol+tpe"
    single = tune(_fake_cfg(mlflow_store, "design-single", "tune.trials=2"), train_fn=FakeRunner())
    assert (single.search_trials, single.searched) == (1, False)
    assert "NOT a search" in single.tuned_config.read_text()
    assert not tuning_results(mlflow_store.uri, "design-single").loc[0, "searched"]
