"""The runner end to end, in process: what lands in MLflow, determinism, failures and divergence."""

from __future__ import annotations

import json

import pytest

import lstm_influence as li
from lstm_influence import tracking
from lstm_influence.config.schema import ConfigError
from lstm_influence.datasets.base import DatasetError
from lstm_influence.training.context import RunContext
from tests.helpers import EXPERIMENT, experiment_runs, store_uri, tiny_config

EPOCH_METRICS = (
    "train/loss",
    "val/loss",
    "val/norm_loss",
    "grad/global_norm",
    "grad/max_norm",
    "time/epoch_s",
    "gates/forget_mean",
    "gates/input_mean",
    "gates/saturated_frac",
)
SUMMARY_METRICS = (
    "final/val_loss",
    "best/val_loss",
    "best/epoch",
    "test/loss",
    "test/norm_loss",
    "conv/reached_target",
    "conv/aulc",
    "stab/loss_spikes",
    "stab/grad_spikes",
    "stab/diverged",
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One tiny baseline run and its MLflow record, shared by the tests that only read it."""
    uri = store_uri(tmp_path_factory.mktemp("store"))
    cfg = tiny_config(uri)
    summary = li.run(cfg)
    client = tracking.make_client(uri)
    return cfg, summary, client, client.get_run(summary["run_id"])


def test_run_is_named_tagged_and_finished(finished):
    _, summary, client, run = finished
    assert run.info.status == "FINISHED" and summary["status"] == "FINISHED"
    assert run.info.run_name == "baseline-adding-s0"
    tags = run.data.tags
    assert (tags["strategy"], tags["dataset"], tags["task"], tags["seed"]) == ("baseline", "synthetic", "adding", "0")
    assert len(tags["config_hash"]) == 16
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == EXPERIMENT


def test_params_are_the_flattened_resolved_config(finished):
    _, _, _, run = finished
    params = run.data.params
    assert params["train.epochs"] == "2"
    assert params["model.units"] == "8"
    assert params["dataset.task"] == "adding"
    assert params["train.target_norm_loss"] == "0.1"  # the interpolation, resolved
    assert params["tracking.uri"].startswith("sqlite:///")


def test_epoch_metrics_have_one_value_per_epoch(finished):
    _, _, client, run = finished
    for key in EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, key)
        assert [point.step for point in history] == [1, 2], key
    norm = client.get_metric_history(run.info.run_id, "val/norm_loss")
    val = client.get_metric_history(run.info.run_id, "val/loss")
    baseline = run.data.metrics["baseline/val_loss"]
    for n, v in zip(norm, val):
        assert n.value == pytest.approx(v.value / baseline)
    assert 0.0 < run.data.metrics["gates/forget_mean"] < 1.0


def test_summary_metrics_are_logged(finished):
    _, summary, _, run = finished
    for key in SUMMARY_METRICS:
        assert key in run.data.metrics, key
        assert run.data.metrics[key] == pytest.approx(summary[key])
    assert run.data.metrics["test/norm_loss"] == pytest.approx(
        run.data.metrics["test/loss"] / run.data.metrics["baseline/test_loss"]
    )
    assert run.data.metrics["stab/diverged"] == 0.0


def test_reference_predictors_are_logged_beside_the_trivial_baseline(finished):
    _, _, _, run = finished
    metrics = run.data.metrics
    for split in ("val", "test"):
        loss = metrics[f"baseline/ridge/{split}_loss"]
        assert metrics[f"baseline/ridge/{split}_norm_loss"] == pytest.approx(loss / metrics[f"baseline/{split}_loss"])


def test_the_run_records_its_tensorflow_threads(finished):
    _, _, _, run = finished
    assert int(run.data.tags["tf_threads"]) >= 1


def test_artifacts_hold_the_config_and_the_influence_report(finished, tmp_path):
    _, _, client, run = finished
    names = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "influence_report.json", "dataset.json"} <= names
    path = client.download_artifacts(run.info.run_id, "influence_report.json", str(tmp_path))
    report = json.loads(open(path).read())
    assert report["before"]["passed"] is True and "after" in report


def test_same_config_and_seed_reproduce_the_metrics(tiny_cfg):
    first = li.run(tiny_cfg())
    second = li.run(tiny_cfg())
    for key in ("final/val_loss", "test/loss", "conv/aulc", "stab/grad_spikes"):
        assert first[key] == second[key], key
    other_seed = li.run(tiny_cfg("seed=1"))
    assert other_seed["final/val_loss"] != first["final/val_loss"]


BAD_INPUTS = {
    "units": (("model.units=0",), ConfigError, r"model\.units=0"),
    "negative epochs": (("train.epochs=-1",), ConfigError, r"train\.epochs=-1"),
    "feature out of range": (
        ("strategy=input_transform", "strategy.scale={5: 2.0}"),
        ConfigError,
        r"strategy\.scale",
    ),
    "threads": (("train.threads=none",), ConfigError, r"train\.threads='none'"),
    "dataset value": (("dataset.n_val=0",), DatasetError, r"dataset\.n_val"),
}


@pytest.mark.parametrize("overrides, error, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_a_user_error_is_raised_before_any_run_is_opened(tiny_cfg, tracking_uri, overrides, error, message):
    with pytest.raises(error, match=message):
        li.run(tiny_cfg(*overrides))
    assert experiment_runs(tracking_uri) == []


def test_a_run_checks_its_config_and_makes_its_strategy_once(tiny_cfg, monkeypatch):
    import lstm_influence.config.validation as validation
    import lstm_influence.strategies as strategies
    from lstm_influence.strategies.base import Strategy

    calls: dict[str, int] = {}

    def counted(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for owner, name in [
        (validation, "check_keys"),
        (validation, "check_values"),
        (validation, "strategy_settings"),
        (validation, "dataset_settings"),
        (strategies, "instantiate_strategy"),
        (Strategy, "validate"),
    ]:
        counted(owner, name)
    li.run(tiny_cfg())
    assert calls == dict.fromkeys(
        ["check_keys", "check_values", "strategy_settings", "dataset_settings", "instantiate_strategy", "validate"], 1
    )


def test_build_model_called_directly_checks_the_config_first(tiny_cfg):
    cfg = tiny_cfg()
    data = li.load_dataset(cfg)
    with pytest.raises(ConfigError, match=r"train\.epochs=0: expected a positive integer"):
        li.build_model(tiny_cfg("train.epochs=0"), data)


def test_a_missing_csv_column_is_a_dataset_error_before_any_run(tracking_uri, tmp_path):
    csv = tmp_path / "prices.csv"
    csv.write_text("Date,Open\n" + "".join(f"2020-01-{day:02d},{day}\n" for day in range(1, 29)))
    with pytest.raises(DatasetError, match="Close"):
        li.run(li.compose(["dataset=financial", f"dataset.path={csv}", f"tracking.uri={tracking_uri}"]))
    assert experiment_runs(tracking_uri) == []


def test_a_child_that_cannot_start_is_recorded_failed_for_its_parent(tiny_cfg, tracking_uri):
    from lstm_influence.training.runner import run

    client = tracking.make_client(tracking_uri)
    parent = client.create_run(client.create_experiment(EXPERIMENT)).info.run_id
    with pytest.raises(ConfigError, match=r"model\.units=0"):
        run(tiny_cfg("model.units=0"), RunContext(parent_run_id=parent))
    (child,) = [r for r in experiment_runs(tracking_uri) if r.info.run_id != parent]
    assert child.info.status == "FAILED"
    assert "model.units=0" in child.data.tags["error"]
    assert child.data.tags["mlflow.parentRunId"] == parent


def test_an_unexpected_error_keeps_a_failed_run_with_its_traceback(tiny_cfg, tracking_uri, monkeypatch, tmp_path):
    import lstm_influence.training.runner as runner

    def broken_build(*args, **kwargs):
        raise RuntimeError("a defect, not a user's mistake")

    monkeypatch.setattr(runner, "build_model", broken_build)
    with pytest.raises(RuntimeError, match="a defect"):
        li.run(tiny_cfg())
    (run,) = experiment_runs(tracking_uri)
    client = tracking.make_client(tracking_uri)
    assert run.info.status == "FAILED" and "a defect" in run.data.tags["error"]
    path = client.download_artifacts(run.info.run_id, "traceback.txt", str(tmp_path))
    assert "broken_build" in open(path).read()


def test_divergence_is_recorded_not_fatal(tiny_cfg, tracking_uri):
    summary = li.run(tiny_cfg("train.learning_rate=1e6", "train.epochs=5"))
    assert summary["stab/diverged"] == 1.0
    client = tracking.make_client(tracking_uri)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["stab/diverged"] == 1.0
    assert run.data.tags["diverged"]
    # the run stopped early and kept its partial history
    steps = [p.step for p in client.get_metric_history(run.info.run_id, "train/loss")]
    assert 1 <= len(steps) < 5


def test_clip_norm_changes_training_but_not_the_logged_norm_definition(tiny_cfg):
    free = li.run(tiny_cfg("train.epochs=1"))
    clipped = li.run(tiny_cfg("train.clip_norm=0.01", "train.epochs=1"))
    # a tiny clip norm slows learning: the clipped run ends further from the free run's loss
    assert clipped["final/val_loss"] != free["final/val_loss"]
    assert clipped["stab/diverged"] == 0.0


def test_the_thread_rule_gives_small_models_one_thread_and_splits_cores_between_jobs():
    from lstm_influence.training.threads import resolve_threads, step_macs, threads_for

    assert step_macs(64, 2, 128) == 128 * 256 * 66
    assert threads_for(64, 2, 128, cores=2) == 1  # measured 1.07x faster than two threads
    assert threads_for(256, 2, 128, cores=2) == 2
    assert threads_for(256, 2, 128, cores=8, parallel_jobs=2) == 4
    assert threads_for(256, 2, 128, cores=2, parallel_jobs=4) == 1
    assert resolve_threads(3, units=64, input_dim=2, batch_size=128) == 3
    assert resolve_threads("auto", units=64, input_dim=2, batch_size=128) == 1
    for bad in (0, -1, True, "two"):
        with pytest.raises(ConfigError, match=r"train\.threads"):
            resolve_threads(bad, units=64, input_dim=2, batch_size=128)
    with pytest.raises(ValueError, match="parallel_jobs=0"):
        threads_for(64, 2, 128, parallel_jobs=0)


def test_xla_is_chosen_on_cpu_only_for_runs_long_enough_to_repay_its_compilation():
    from lstm_influence.training.performance import (
        XLA_BREAK_EVEN_BATCH_STEPS,
        resolve_jit_compile,
        training_batch_steps,
        xla_pays,
    )

    assert training_batch_steps(4, 5000, 128, 100) == 4 * 40 * 100  # the last, partial batch counts as a step
    assert training_batch_steps(1, 128, 128, 10) == 10
    assert not xla_pays(training_batch_steps(4, 5000, 128, 100), gpu=False)  # the benchmark's short run
    assert xla_pays(training_batch_steps(30, 10_000, 64, 50), gpu=False)  # experiment=compare's adding runs
    assert not xla_pays(training_batch_steps(2, 128, 32, 12), gpu=False)  # an experiment=smoke job
    assert not xla_pays(XLA_BREAK_EVEN_BATCH_STEPS - 1, gpu=False)
    assert xla_pays(XLA_BREAK_EVEN_BATCH_STEPS, gpu=False)
    assert not xla_pays(10**12, gpu=True)  # cuDNN's fused kernel, which XLA would replace
    long_run = 10 * XLA_BREAK_EVEN_BATCH_STEPS
    assert resolve_jit_compile("auto", batch_steps=long_run, gpu=False) is True
    assert resolve_jit_compile("AUTO", batch_steps=long_run, gpu=True) is False
    assert resolve_jit_compile("auto", batch_steps=1, gpu=False) is False
    for setting, expected in ((True, True), ("true", True), ("1", True), (False, False), ("false", False)):
        for gpu in (False, True):
            for steps in (1, long_run):
                assert resolve_jit_compile(setting, batch_steps=steps, gpu=gpu) is expected
    with pytest.raises(ConfigError, match=r"train\.jit_compile='xla'.*auto, true or false"):
        resolve_jit_compile("xla", batch_steps=1, gpu=False)


def test_the_built_model_compiles_with_the_xla_setting_the_rule_gives(tiny_cfg):
    from lstm_influence.training.performance import XLA_BREAK_EVEN_BATCH_STEPS, training_batch_steps

    cfg = tiny_cfg()
    data = li.load_dataset(cfg)
    steps = training_batch_steps(cfg.train.epochs, len(data.train[0]), cfg.train.batch_size, data.seq_len)
    assert steps < XLA_BREAK_EVEN_BATCH_STEPS and li.build_model(cfg, data).jit_compile is False
    assert li.build_model(tiny_cfg("train.jit_compile=true"), data).jit_compile is True
    # enough epochs to repay the compilation: auto turns XLA on, unless cuDNN runs
    import tensorflow as tf

    epochs = XLA_BREAK_EVEN_BATCH_STEPS // (steps // cfg.train.epochs) + 1
    on_cpu = not tf.config.list_physical_devices("GPU")
    assert li.build_model(tiny_cfg(f"train.epochs={epochs}"), data).jit_compile is on_cpu


def test_xla_on_or_off_trains_the_same_run_within_float_tolerance(tiny_cfg):
    # auto's choice must not change what a run computes: same data, batches and seed, only the compiler differs
    with_xla = li.run(tiny_cfg("train.jit_compile=true"))
    without = li.run(tiny_cfg("train.jit_compile=false"))
    for key in ("final/val_loss", "best/val_loss", "test/loss", "conv/aulc", "grad/global_norm"):
        if key in with_xla:
            assert with_xla[key] == pytest.approx(without[key], rel=1e-4), key
    assert with_xla["stab/loss_spikes"] == without["stab/loss_spikes"]


def test_a_run_applies_its_job_share_and_tags_the_threads_in_force(tiny_cfg, tracking_uri):
    import tensorflow as tf

    from lstm_influence.training.runner import run
    from lstm_influence.training.threads import JobShare, available_cores

    summary = run(tiny_cfg(), RunContext(share=JobShare(threads=2)))
    run = tracking.make_client(tracking_uri).get_run(summary["run_id"])
    # TensorFlow reads its threads once per process: the tag is what is in force (2 when this run was the first to
    # set them, else the earlier setting; every core when TensorFlow started on its defaults), not what was asked
    in_force = tf.config.threading.get_intra_op_parallelism_threads() or available_cores()
    assert int(run.data.tags["tf_threads"]) == in_force


def test_a_run_holds_numpy_to_one_thread_and_restores_it_after(tiny_cfg, monkeypatch):
    from threadpoolctl import threadpool_info

    import lstm_influence.training.runner as runner
    from lstm_influence.training.threads import JobShare

    def blas_threads():
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    seen = []
    original = runner.load_valid

    def recording(valid):
        seen.extend(blas_threads())
        return original(valid)

    monkeypatch.setattr(runner, "load_valid", recording)
    before = blas_threads()
    runner.run(tiny_cfg(), RunContext(share=JobShare(cores=2)))  # a run alone on 2 cores: numpy still gets one thread
    assert seen and set(seen) == {1}  # while the data (and its reference fits) load
    assert blas_threads() == before
