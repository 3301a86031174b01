"""The framework on both Keras backends: every strategy and dataset end to end, the step, determinism, divergence.

Every test here is backend-neutral: the suite runs them in-process on the default backend (TensorFlow), and
``test_the_framework_tests_pass_on_jax`` runs this file again in a subprocess with ``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time

import keras
import numpy as np
import pytest

import lstm_influence as li
from lstm_influence import tracking
from lstm_influence.training import backend, monitoring
from lstm_influence.training.backend import apply_threads
from tests.helpers import TINY, run_python

ON_JAX_SUBPROCESS = "test_the_framework_tests_pass_on_jax"
STRATEGIES = ["baseline", "custom_init", "input_transform", "bias_init", "extra_variable"]
# Strategies whose influence the run follows through training (influence/retention in the summary).
RETAINED = {"custom_init", "bias_init"}


def finite_history(client, run_id: str, key: str) -> list[float]:
    values = [point.value for point in sorted(client.get_metric_history(run_id, key), key=lambda p: p.step)]
    assert values and all(math.isfinite(v) for v in values), key
    return values


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_trains_verifies_and_logs_on_this_backend(strategy, tiny_cfg, tracking_uri, tmp_path):
    summary = li.run(tiny_cfg(f"strategy={strategy}"))
    client = tracking.make_client(tracking_uri)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["keras_backend"] == keras.backend.backend() == backend.name()
    report = json.loads(open(client.download_artifacts(run.info.run_id, "influence_report.json", str(tmp_path))).read())
    assert report["before"]["passed"] is True and report["before"]["checks"]
    assert summary["stab/diverged"] == 0.0
    assert all(norm > 0 for norm in finite_history(client, run.info.run_id, "grad/global_norm"))
    assert all(0.0 < f < 1.0 for f in finite_history(client, run.info.run_id, "gates/forget_mean"))
    assert math.isfinite(summary["test/loss"]) and math.isfinite(summary["conv/aulc"])
    if strategy in RETAINED:
        assert math.isfinite(summary["influence/retention"])


# MLflow's note on a dataset input read from a file path (the bundled series and corpus), not this project's.
@pytest.mark.filterwarnings("ignore:The specified dataset source can be interpreted in multiple ways:UserWarning")
@pytest.mark.parametrize(
    "overrides",
    [
        ("dataset=text", "dataset.max_chars=3000", "dataset.stride=12"),
        ("dataset=financial", "dataset.stride=8"),
    ],
    ids=["text", "financial"],
)
def test_the_real_datasets_train_on_this_backend(overrides, tracking_uri):
    tiny = [o for o in TINY if not o.startswith(("dataset.n_", "dataset.seq_len"))]
    cfg = li.compose([*tiny, "dataset.seq_len=12", f"tracking.uri={tracking_uri}", *overrides])
    summary = li.run(cfg)
    assert summary["status"] == "FINISHED" and summary["stab/diverged"] == 0.0
    assert math.isfinite(summary["test/norm_loss"])


class _NoLogger:
    def log_metrics(self, metrics, step: int = 0) -> None:
        pass


def test_the_step_recorder_holds_every_step_and_the_epoch_loss_is_their_mean(tiny_cfg):
    cfg = tiny_cfg("train.epochs=2")
    data = li.load_dataset(cfg)
    model = li.build_model(cfg, data)
    monitor = monitoring.monitor_training(model, cfg, data, logger=_NoLogger())
    model.fit(*data.train, validation_data=data.val, batch_size=32, epochs=2, verbose=0, callbacks=[monitor])
    record = monitor.record
    steps = math.ceil(len(data.train[0]) / 32)
    assert [len(losses) for losses in record.step_loss] == [steps, steps]
    for losses, norms, epoch_loss in zip(record.step_loss, record.step_grad_norm, record.train_loss):
        # Keras's loss tracker averages the steps' losses: the recorder saw those same losses, step by step
        assert float(np.mean(losses)) == pytest.approx(epoch_loss, rel=1e-5)
        assert np.all(norms > 0) and len(set(norms.tolist())) == steps
    # the validation between the last step and the epoch's end did not wipe the buffers
    assert record.step_loss[0].tolist() != record.step_loss[1].tolist()


def test_clipping_bounds_the_update_and_the_recorded_norm_is_the_one_before_clipping(tiny_cfg):
    clip = 1e-3
    cfg = tiny_cfg("train.optimizer=sgd", "train.learning_rate=1.0", f"train.clip_norm={clip}", "train.epochs=1")
    data = li.load_dataset(cfg)
    model = li.build_model(cfg, data)
    monitor = monitoring.monitor_training(model, cfg, data, logger=_NoLogger())
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    x, y = data.train[0][:32], data.train[1][:32]
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False, callbacks=[monitor])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    (grad_norm,) = monitor.record.step_grad_norm[0]
    step = math.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(after, before)))
    assert grad_norm > 10 * clip  # the logged norm is the raw gradient's
    assert step == pytest.approx(clip, rel=1e-3)  # SGD at rate 1 moves the weights by the clipped gradient


def test_same_config_and_seed_reproduce_the_metrics_and_another_seed_does_not(tiny_cfg):
    overrides = ("strategy=extra_variable", "model.dropout=0.2")  # dropout draws from the seed as well
    first = li.run(tiny_cfg(*overrides))
    second = li.run(tiny_cfg(*overrides))
    for key in ("final/val_loss", "test/loss", "conv/aulc", "stab/grad_spikes", "influence/extra_norm_ratio"):
        assert first[key] == second[key], key
    assert li.run(tiny_cfg(*overrides, "seed=1"))["final/val_loss"] != first["final/val_loss"]


def test_divergence_is_recorded_not_fatal_on_this_backend(tiny_cfg, tracking_uri):
    summary = li.run(tiny_cfg("train.learning_rate=1e6", "train.epochs=5"))
    assert summary["stab/diverged"] == 1.0 and summary["status"] == "FINISHED"
    run = tracking.make_client(tracking_uri).get_run(summary["run_id"])
    assert run.data.tags["diverged"]
    assert 1 <= int(summary["final/epoch"]) < 5


def test_the_run_tags_the_threads_the_backend_has_in_force(tiny_cfg, tracking_uri):
    summary = li.run(tiny_cfg())
    tag = int(tracking.make_client(tracking_uri).get_run(summary["run_id"]).data.tags["tf_threads"])
    assert tag >= 1 and apply_threads(tag + 1) == tag  # fixed once per process
    if backend.name() == backend.JAX:
        assert os.environ[backend.JAX_THREADS_VARIABLE] == str(tag)


def test_auto_xla_follows_the_backend(tiny_cfg):
    cfg = tiny_cfg()  # far too short for XLA to repay its compilation on TensorFlow
    model = li.build_model(cfg, li.load_dataset(cfg))
    assert model.jit_compile is (backend.name() == backend.JAX)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the in-process run is the TensorFlow one")
def test_the_framework_tests_pass_on_jax():
    pytest.importorskip("jax")
    command = ["-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", f"not {ON_JAX_SUBPROCESS}"]
    start = time.perf_counter()
    done = run_python(*command, env={"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}, timeout=600)
    print(f"JAX subprocess: {time.perf_counter() - start:.1f} s")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\d+ passed", done.stdout) and " failed" not in done.stdout and " skipped" not in done.stdout


def test_freed_large_buffers_stay_in_the_process_instead_of_faulting_in_again():
    import ctypes
    import resource
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's malloc only")
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = (
        ctypes.c_void_p,
        [ctypes.c_size_t],
        [ctypes.c_void_p],
    )
    size = 64 * 2**20  # above glibc's largest automatic mmap threshold (32 MiB), like a long sequence's temporaries

    def allocate_touch_free() -> None:
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)

    assert backend.keep_large_buffers()
    allocate_touch_free()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    allocate_touch_free()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < size // 4096 // 10  # a fresh mmap faults in every one of its 16,384 pages (measured: 16,385)
