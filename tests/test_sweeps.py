"""Sweeps: the presets, one MLflow parent per sweep, resume without duplicates, parallel jobs and faults.

The CLI tests run real ``python -m lstm_influence -m`` sweeps in a subprocess with TINY sizes.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from hydra import compose
from omegaconf import OmegaConf

import lstm_influence as li
from lstm_influence import names, tracking
from lstm_influence.config.identity import config_hash
from lstm_influence.config.schema import ConfigError
from lstm_influence.datasets import dependency_horizon
from lstm_influence.metrics import DIVERGED_METRIC
from lstm_influence.orchestration.plan import expand_grid, job_share, plan_jobs, sweep_id_for
from lstm_influence.orchestration.progress import (
    JobResult,
    SweepProgress,
    clock,
    progress_line,
    progress_records,
    summary_table,
)
from lstm_influence.training.threads import JobShare, threads_for
from tests.helpers import (
    CONF,
    TINY,
    artifact_json,
    clean_environment,
    compose_with_hydra,
    metric_by_step,
    packaged_hydra,
    runs_of,
    store_uri,
    sweep,
    without,
)


def plan(overrides):
    """The jobs and sweep id that ``-m OVERRIDES`` would get, planned in-process."""
    with packaged_hydra():  # plan_jobs composes each job through Hydra's loader, as the sweeper's callback does
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
        jobs = plan_jobs(cfg)
    return jobs, sweep_id_for(cfg, jobs), cfg


def options(group):
    return {path.stem for path in (CONF / group).glob("*.yaml")}


def bundled_datasets():
    """The dataset options a preset can run: csv reads the user's own file."""
    return options("dataset") - {"csv"}


# ---------------------------------------------------------------------------------------------------------------
# fast: planning, presets, threads


@pytest.mark.parametrize(
    "arguments",
    [
        ["seed=0,1,2", "strategy=baseline,bias_init"],
        ["strategy=baseline,bias_init", "seed=range(3)", "train.epochs=2", "seed=4,5"],  # a key given twice
        ["dataset=glob(*)", "model.units=8"],
        ["strategy=bias_init", "strategy.preset=zeros,chrono", "train.learning_rate=0.01,0.02"],
    ],
)
def test_the_grid_is_expanded_in_the_basic_sweepers_order(arguments):
    basic_sweeper = pytest.importorskip("hydra._internal.core_plugins.basic_sweeper")  # the reference, where present
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with packaged_hydra():
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        ours = expand_grid(parser.parse_overrides(arguments))
        (theirs,) = basic_sweeper.BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    assert [list(job) for job in ours] == theirs and len(ours) > 1


def test_an_interval_sweep_is_refused_by_name():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with pytest.raises(ConfigError, match=r"interval\(0,1\)"):
        expand_grid(OverridesParser.create().parse_overrides(["train.learning_rate=interval(0,1)"]))


def test_smoke_preset_is_every_strategy_by_every_dataset_by_two_seeds_and_tiny():
    jobs, sweep_id, cfg = plan(["experiment=smoke"])
    grid = {key: set(value.split(",")) for key, value in cfg.hydra.sweeper.params.items()}
    bundled = bundled_datasets()
    assert grid == {"strategy": options("strategy"), "dataset": bundled, "seed": {"0", "1"}}
    assert len(jobs) == len({job.config_hash for job in jobs}) == 5 * 3 * 2
    assert sweep_id.startswith("smoke-")
    for dataset in bundled:
        small = li.compose(["experiment=smoke", f"dataset={dataset}"])
        assert small.train.epochs <= 2 and small.model.units <= 8 and small.dataset.seq_len <= 32


def test_compare_preset_is_every_strategy_by_every_dataset_by_five_seeds_and_composes():
    params = compose_with_hydra("config", ["experiment=compare"]).hydra.sweeper.params
    assert set(params.strategy.split(",")) == options("strategy")
    assert set(params.dataset.split(",")) == bundled_datasets()
    assert len(set(params.seed.split(","))) >= 5
    for dataset in bundled_datasets():  # every cell composes and passes the schema (seeds change nothing else)
        for strategy in options("strategy"):
            cfg = li.compose(["experiment=compare", f"dataset={dataset}", f"strategy={strategy}"])
            assert cfg.dataset.name == dataset and cfg.strategy.name == strategy


def test_long_range_preset_is_nine_arms_by_two_tasks_by_ten_paired_seeds():
    cfg = compose_with_hydra("config", ["experiment=long_range"])
    grid = {key: value.split(",") for key, value in cfg.hydra.sweeper.params.items()}
    assert options("arm") - set(grid["arm"]) == {"uniform_stretched"} and len(grid["arm"]) == 9  # edition 2's arm
    assert grid["workload"] == ["long_range/adding", "long_range/copy"] and grid["seed"] == ["range(10)"]
    assert cfg.tracking.experiment == "long-range"
    # planned on two of the ten seeds (planning composes every job): each job distinct
    jobs, sweep_id, _ = plan(["experiment=long_range", "hydra.sweeper.params.seed='0,1'"])
    assert len(jobs) == len({job.config_hash for job in jobs}) == 9 * 2 * 2
    assert sweep_id.startswith("long_range-")
    adding = li.compose(["experiment=long_range", "workload=long_range/adding", "arm=chrono"])
    copy = li.compose(["experiment=long_range", "workload=long_range/copy", "arm=chrono"])
    assert (adding.dataset.task, adding.dataset.seq_len, adding.train.epochs) == ("adding", 200, 20)
    assert (copy.dataset.task, copy.dataset.seq_len, copy.dataset.copy_symbols) == ("copy", 120, 10)
    # chrono's t_max follows the task: T for adding, 3/2 of the copy delay (120 - 2 * 10 = 100) for copy
    assert dependency_horizon(adding.dataset) is None and dependency_horizon(copy.dataset) == 150
    # every arm sees the same data: only the arm's own keys differ between two arms' configs
    plain = li.compose(["experiment=long_range", "workload=long_range/adding", "arm=baseline"])
    assert plain.dataset == adding.dataset and plain.train == adding.train and plain.seed == adding.seed
    doubled = li.compose(["experiment=long_range", "workload=long_range/adding", "arm=baseline_lr2"])
    assert doubled.train.learning_rate == 2 * plain.train.learning_rate


def test_long_range_2_preset_is_six_arms_on_adding_by_ten_seeds_each_pair_with_its_own_data():
    cfg = compose_with_hydra("config", ["experiment=long_range_2"])
    grid = {key: value.split(",") for key, value in cfg.hydra.sweeper.params.items()}
    assert grid == {
        "workload": ["long_range_2/adding"],
        "arm": ["baseline", "chrono", "uniform", "uniform_stretched", "baseline_lr2", "extra_full"],
        "seed": ["range(10)"],
    }
    assert cfg.tracking.experiment == "long-range-2"
    jobs, sweep_id, _ = plan(["experiment=long_range_2", "hydra.sweeper.params.seed='0,1'"])
    assert len(jobs) == len({job.config_hash for job in jobs}) == 6 * 2 and sweep_id.startswith("long_range_2-")

    def arm(name: str, seed: int):
        return li.compose(["experiment=long_range_2", "workload=long_range_2/adding", f"arm={name}", f"seed={seed}"])

    plain, stretched = arm("baseline", 3), arm("uniform_stretched", 3)
    assert (plain.dataset.task, plain.dataset.seq_len, plain.train.epochs) == ("adding", 200, 40)
    assert plain.dataset == stretched.dataset and plain.train == stretched.train  # a pair shares its data
    assert plain.dataset.data_seed == 3 and arm("baseline", 4).dataset.data_seed == 4  # pairs draw anew
    assert stretched.strategy.preset == "uniform_stretched" and stretched.strategy.t_max is None  # T_max = T
    assert arm("baseline_lr2", 0).train.learning_rate == 2 * arm("baseline", 0).train.learning_rate


def test_sweep_id_is_the_grid_not_the_command_line_and_jobs_hash_as_they_will_run():
    base = ["experiment=smoke", "hydra.sweeper.params.strategy=baseline", "hydra.sweeper.params.dataset=synthetic"]
    jobs, first, _ = plan([*base, "hydra.sweeper.params.seed='0,1'"])
    _, reordered, _ = plan([*base, "hydra.sweeper.params.seed='1,0'"])
    _, bigger, _ = plan([*base, "hydra.sweeper.params.seed='0,1,2'"])
    _, named, _ = plan([*base, "hydra.sweeper.params.seed='0,1'", "sweep.id=mine"])
    assert first == reordered != bigger and named == "mine"
    for job in jobs:  # the hash the plan expects is the hash the job computes from its own config
        assert config_hash(li.compose(list(job.overrides))) == job.config_hash


JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
RAY = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"


@pytest.mark.parametrize(
    ("launcher", "threads", "n_jobs", "expected"),
    [
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, None, 30, JobShare()),
        ({"_target_": JOBLIB, "n_jobs": 2}, None, 30, JobShare(parallel_jobs=2)),
        ({"_target_": JOBLIB, "n_jobs": 2}, None, 1, JobShare(parallel_jobs=1)),  # no more workers than jobs
        ({"_target_": JOBLIB, "n_jobs": -1}, None, 1000, JobShare(parallel_jobs=len(os.sched_getaffinity(0)))),
        ({"_target_": JOBLIB, "n_jobs": 2}, 3, 30, JobShare(threads=3)),
        ({"_target_": RAY, "ray": {"remote": {}}}, None, 9, JobShare(cores=1)),
        ({"_target_": RAY, "ray": {"remote": {"num_cpus": 2}}}, None, 9, JobShare(cores=2)),
    ],
)
def test_each_job_gets_its_share_of_the_cores(launcher, threads, n_jobs, expected):
    cfg = OmegaConf.create({"sweep": {"threads": threads}, "hydra": {"launcher": launcher}})
    assert job_share(cfg, n_jobs) == expected


def test_a_job_share_gives_small_models_one_thread_and_big_ones_their_share_of_the_cores():
    from lstm_influence.training.threads import resolve_threads

    def threads(units, share):
        return resolve_threads("auto", units=units, input_dim=2, batch_size=128, share=share)

    eight_cores_two_jobs = JobShare(parallel_jobs=2, cores=8)
    assert threads(64, eight_cores_two_jobs) == 1  # one thread is faster for a small model, whatever the share
    assert threads(256, eight_cores_two_jobs) == 4  # cores ÷ parallel jobs
    assert threads(256, JobShare(cores=3)) == 3  # a Ray task's reserved CPUs
    assert threads(256, JobShare(parallel_jobs=4, cores=2)) == 1
    assert threads(16, JobShare(threads=3)) == 3  # sweep.threads fixes it, even against the rule
    assert resolve_threads(5, units=256, input_dim=2, batch_size=128, share=JobShare(threads=2)) == 2
    with pytest.raises(ConfigError, match=r"sweep\.threads=0"):
        threads(64, JobShare(threads=0))
    with pytest.raises(ConfigError, match=r"sweep\.threads=0"):
        job_share(OmegaConf.create({"sweep": {"threads": 0}, "hydra": {"launcher": {}}}), 4)


# ---------------------------------------------------------------------------------------------------------------
# fast: what sweeps and tuning share, and how a job learns about its sweep


def test_a_job_finds_its_sweep_in_its_own_hydra_config_and_a_plain_run_finds_none():
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    from lstm_influence.orchestration.plan import Job
    from lstm_influence.orchestration.sweep import SweepJob, hand_to_jobs, sweep_job

    assert sweep_job() is None  # no Hydra at all: li.run(cfg) from Python
    planned = [Job(0, ("seed=0",), "0123456789abcdef"), Job(1, ("seed=1",), "00000000000000ff")]
    with packaged_hydra():
        cfg = compose("config", return_hydra_config=True)
        hand_to_jobs(cfg, "a" * 32, JobShare(parallel_jobs=2), planned)
        # the launcher composes each job from the sweep's overrides, as here
        job_cfg = GlobalHydra.instance().config_loader().load_sweep_config(cfg, ["seed=1"])
    with open_dict(job_cfg):
        job_cfg.hydra.job.num = 1
        job_cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(job_cfg)
    try:
        job = sweep_job()
        with read_write(job_cfg.hydra):
            job_cfg.hydra.mode = RunMode.RUN
        HydraConfig.instance().set_config(job_cfg)
        assert sweep_job() is None  # the same config, not a -m job
    finally:
        HydraConfig.instance().cfg = None
    assert job == SweepJob(
        num=1,
        parent_run_id="a" * 32,
        share=JobShare(parallel_jobs=2),
        plan=("0123456789abcdef", "00000000000000ff"),
        cwd=os.getcwd(),
    )
    with read_write(job_cfg), open_dict(job_cfg):
        del job_cfg["hydra"]
    assert config_hash(job_cfg) == config_hash(li.compose(["seed=1"]))  # what is handed changes no job's hash


def test_a_parent_run_is_created_once_and_reopened_by_the_next_attempt(tmp_path):
    from lstm_influence.orchestration.jobs import ParentRun

    uri = store_uri(tmp_path)
    client = tracking.make_client(uri)
    experiment_id = tracking.get_or_create_experiment(client, "parents")
    described = []

    def open_parent(existing):
        tags = {names.RUN_TYPE: names.RUN_SWEEP}
        return ParentRun.open(
            client, uri, experiment_id, existing=existing, name="mine", tags=tags, describe=described.append
        )

    first = open_parent(None)
    assert first.created and len(described) == 1 and client.get_run(first.run_id).info.run_name == "mine"
    first.close("FAILED", "1 of 2 jobs have no FINISHED run")
    again = open_parent(first.run_id)
    assert (again.created, again.run_id, len(described)) == (False, first.run_id, 1)
    assert client.get_run(first.run_id).info.status == "RUNNING"
    again.mark({"sweep_attempt": 2})
    again.close("FINISHED")
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED" and "error" not in run.data.tags and run.data.tags["sweep_attempt"] == "2"
    client.delete_run(first.run_id)
    fresh = open_parent(first.run_id)  # a parent that is gone is replaced, not reopened
    assert fresh.created and fresh.run_id != first.run_id and len(described) == 2


def test_resume_finds_a_finished_config_by_its_hash_and_force_keeps_one_finished_run(tmp_path):
    from lstm_influence.orchestration.jobs import Resume

    client = tracking.make_client(store_uri(tmp_path))
    experiment_id = tracking.get_or_create_experiment(client, "resume")

    def ended(digest, status):
        run = client.create_run(experiment_id, tags={names.RUN_TYPE: names.RUN_TRAIN, names.CONFIG_HASH: digest})
        client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    old = ended("h1", "FINISHED")
    ended("h2", "FAILED")
    resume = Resume(client, experiment_id)
    assert resume.done("h1").info.run_id == old and resume.done("h2") is None and set(resume.finished()) == {"h1"}
    forced = Resume(client, experiment_id, force=True)
    assert forced.done("h1") is None
    new = ended("h1", "FINISHED")
    forced.keep_only("h1", new)
    assert resume.done("h1").info.run_id == new
    assert client.get_run(old).info.lifecycle_stage == "deleted"


def test_the_package_uses_no_private_hydra_module():
    sources = Path(li.__file__).parent.rglob("*.py")
    assert [path.name for path in sources if "hydra._internal" in path.read_text()] == []


# ---------------------------------------------------------------------------------------------------------------
# fast: progress lines and the summary table


def job(name, status, value=None, seconds=None, arm="bias_init", dataset="synthetic", error=""):
    return JobResult(f"id-{name}", name, arm, dataset, status, value, seconds, error)


def test_progress_line_states_k_of_n_status_metric_times_and_eta():
    line = progress_line(3, 10, job("bias_init-synthetic-s1", "FINISHED", 0.41234, 12.34), elapsed=90, ran=3)
    # 90 s for 3 jobs that ran: 30 s a job, 7 jobs to go
    assert line == "[3/10] bias_init-synthetic-s1 FINISHED test/norm_loss 0.4123, 12.3 s, elapsed 1:30, ETA 3:30"
    skipped = progress_line(1, 10, job("baseline-text-s0", "SKIPPED", 1.0), elapsed=2, ran=0)
    assert skipped.endswith("SKIPPED test/norm_loss 1, skipped, elapsed 0:02, ETA ?")  # no job ran yet: no rate
    crashed = job("x-s0", "FAILED", None, 3.0, error="ValueError: units=0\nmore")
    failed = progress_line(10, 10, crashed, elapsed=7, ran=9)
    assert failed.endswith("FAILED test/norm_loss n/a, 3.0 s, elapsed 0:07, ETA 0:00 (ValueError: units=0)")
    assert progress_line(2, None, job("y", "FINISHED", 0.5, 1.0), elapsed=5, ran=2).startswith("[2/?] y")
    assert clock(3725) == "1:02:05"


def test_summary_table_counts_each_arm_and_dataset_and_takes_the_median_of_finished_runs():
    jobs = [
        job("a", "FINISHED", 0.2),
        job("b", "SKIPPED", 0.4),
        job("c", "DIVERGED", 50.0),
        job("d", "FAILED"),
        job("e", "FINISHED", 0.9, arm="baseline"),
    ]
    lines = summary_table(jobs, missing=2).splitlines()
    assert lines[0].split() == ["arm", "dataset", "jobs", "finished", "failed", "diverged", "median", "test/norm_loss"]
    assert lines[2].split() == ["baseline", "synthetic", "1", "1", "0", "0", "0.9"]  # the control first
    assert lines[3].split() == ["bias_init", "synthetic", "4", "2", "1", "1", "0.3"]  # median of 0.2 and 0.4
    assert lines[4] == "2 job(s) of the grid never started"
    # a user's arms keep the order they reported in, after the control, whatever their names
    mine = [job("f", "FINISHED", 0.1, arm="zz_mine"), job("g", "FINISHED", 0.2, arm="aa_mine"), jobs[-1]]
    assert [line.split()[0] for line in summary_table(mine).splitlines()[2:]] == ["baseline", "zz_mine", "aa_mine"]


def test_progress_reports_skips_first_then_each_ended_run_once(tmp_path):
    client = tracking.make_client(store_uri(tmp_path))
    experiment_id = tracking.get_or_create_experiment(client, "progress")

    def child(name, status, **metrics):
        run = client.create_run(experiment_id, run_name=name, tags={names.DATASET: "synthetic", names.ARM: "arm"})
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        if status:
            client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    earlier = client.get_run(child("done-before", "FINISHED", **{"test/norm_loss": 0.25}))
    ids = [child("first", "FINISHED", **{"test/norm_loss": 0.5}), child("second", None)]
    stream = io.StringIO()
    progress = SweepProgress(
        lambda: [client.get_run(i) for i in ids if client.get_run(i).info.status != "RUNNING"],
        3,
        [earlier],
        stream=stream,
        poll_s=3600,
    )
    progress.poll()
    progress.poll()  # nothing new: nothing printed twice
    client.log_metric(ids[1], DIVERGED_METRIC, 1.0)
    client.set_terminated(ids[1], "FINISHED")
    results = progress.stop()
    lines = stream.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["[1/3]", "done-before", "SKIPPED"],
        ["[2/3]", "first", "FINISHED"],
        ["[3/3]", "second", "DIVERGED"],
    ]
    assert "\x1b[" not in stream.getvalue()  # not a terminal: plain text
    assert [r.status for r in results] == ["SKIPPED", "FINISHED", "DIVERGED"]


def test_progress_counts_each_job_once_however_many_watchers_and_workers_race():
    import random
    import threading
    from types import SimpleNamespace

    def fake_run(num: int, status: str) -> SimpleNamespace:
        info = SimpleNamespace(run_id=f"r{num}", run_name=f"job-{num}", status=status, start_time=1, end_time=2 + num)
        return SimpleNamespace(info=info, data=SimpleNamespace(tags={}, metrics={}))

    ended: list[SimpleNamespace] = []
    lock = threading.Lock()

    def fetch_ended() -> list[SimpleNamespace]:
        with lock:
            snapshot = list(ended)
        time.sleep(random.random() / 1000)  # a slow query: runs end while it is in flight
        return snapshot

    stream = io.StringIO()
    progress = SweepProgress(fetch_ended, 60, stream=stream, poll_s=0.0005)
    progress.start()

    def worker(nums: range) -> None:
        for num in nums:
            time.sleep(random.random() / 2000)
            with lock:
                ended.append(fake_run(num, "FINISHED" if num % 7 else "FAILED"))

    workers = [threading.Thread(target=worker, args=(range(start, 60, 3),)) for start in range(3)]
    pollers = [threading.Thread(target=lambda: [progress.poll() for _ in range(50)]) for _ in range(2)]
    for thread in workers + pollers:
        thread.start()
    for thread in workers + pollers:
        thread.join()
    records = progress_records(progress.stop())
    assert [record["k"] for record in records] == list(range(1, 61))
    assert sorted(record["run_id"] for record in records) == sorted(f"r{num}" for num in range(60))
    lines = stream.getvalue().splitlines()
    assert sorted(int(line.split("/")[0][1:]) for line in lines) == list(range(1, 61))


# ---------------------------------------------------------------------------------------------------------------
# slow: real sweeps


@pytest.mark.slow
def test_failed_job_does_not_stop_the_sweep_and_resume_reruns_only_what_did_not_finish(tmp_path):
    uri = store_uri(tmp_path)
    args = [*TINY, f"tracking.uri={uri}", "model.units=0,8"]  # job #0 raises (units=0), job #1 trains

    first = sweep(args, tmp_path)
    assert first.returncode != 0, "a sweep with a failed job exits non-zero"
    (parent,), children = runs_of(uri)
    by_units = {run.data.params["model.units"]: run for run in children}
    assert by_units["0"].info.status == "FAILED" and "model.units=0" in by_units["0"].data.tags["error"]
    assert by_units["8"].info.status == "FINISHED"  # ran after the failure
    assert parent.info.status == "FAILED" and "did not finish" in parent.data.tags["error"]
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["sweep_id"] == parent.data.tags["sweep_id"]
    parent_id = parent.info.run_id
    assert metric_by_step(uri, parent_id, "sweep/failed") == {1: 1}
    assert metric_by_step(uri, parent_id, "sweep/finished") == {1: 1}

    second = sweep(args, tmp_path)  # resume: the FINISHED job is skipped, the FAILED one runs again
    assert second.returncode != 0
    assert "already FINISHED" in second.stderr + second.stdout
    (parent,), children = runs_of(uri)
    assert parent.info.run_id == parent_id and parent.data.tags["sweep_attempt"] == "2"
    assert sorted(run.data.params["model.units"] for run in children) == ["0", "0", "8"]
    assert metric_by_step(uri, parent_id, "sweep/skipped") == {1: 0, 2: 1}
    assert metric_by_step(uri, parent_id, "sweep/failed") == {1: 1, 2: 1}

    # sweep.force re-runs a FINISHED config (here in a new, one-job sweep); the config keeps one FINISHED run
    (done,) = [run for run in children if run.info.status == "FINISHED"]
    forced = sweep([*TINY, f"tracking.uri={uri}", "seed=0", "sweep.force=true"], tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    parents, children = runs_of(uri)
    assert len(parents) == 2
    finished = [run for run in children if run.data.tags["config_hash"] == done.data.tags["config_hash"]]
    assert len(finished) == 1 and finished[0].info.run_id != done.info.run_id
    old = tracking.make_client(uri).get_run(done.info.run_id)
    assert old.info.lifecycle_stage == "deleted" and old.data.tags["superseded_by"] == finished[0].info.run_id


@pytest.mark.slow
def test_twenty_jobs_on_two_joblib_workers_into_the_default_sqlite_store_lose_nothing(tmp_path):
    # XLA off: compiling is most of a tiny job's time, and the store, not the compiler, is under test here
    args = [*TINY, "train.jit_compile=false", "seed=range(20)", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    first = sweep(args, tmp_path)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-3000:]
    logs = "".join(path.read_text() for path in tmp_path.glob("multirun/**/*.log"))
    assert "database is locked" not in output + logs
    uri = store_uri(tmp_path)  # the default store, in the working directory
    (parent,), children = runs_of(uri)
    assert parent.info.status == "FINISHED"
    assert len(children) == 20 and all(run.info.status == "FINISHED" for run in children)
    assert sorted(int(run.data.tags["seed"]) for run in children) == list(range(20))
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {parent.info.run_id}
    assert len({run.data.tags["pid"] for run in children}) <= 2  # joblib reused its two workers
    # the runner's rule within each job's share: a TINY model trains on one thread (and never more than the share)
    assert {run.data.tags["tf_threads"] for run in children} == {str(threads_for(8, 2, 32, parallel_jobs=2))} == {"1"}
    assert metric_by_step(uri, parent.info.run_id, "sweep/finished") == {1: 20}
    assert f"#/experiments/{parent.info.experiment_id}/runs" in first.stderr
    # one [k/N] per job, k counted across both workers: read from the parent's record, not from interleaved output
    progress = artifact_json(uri, parent.info.run_id, "attempts/1-progress.json")
    assert [record["k"] for record in progress] == list(range(1, 21))
    assert sorted(record["run_id"] for record in progress) == sorted(run.info.run_id for run in children)
    assert {record["status"] for record in progress} == {"FINISHED"}

    again = sweep(args, tmp_path)  # the same sweep again adds no run
    assert again.returncode == 0, again.stderr[-3000:]
    skipped = artifact_json(uri, parent.info.run_id, "attempts/2-progress.json")  # skips count too
    assert [record["k"] for record in skipped] == list(range(1, 21))
    assert {record["status"] for record in skipped} == {"SKIPPED"}
    assert {record["run_id"] for record in skipped} == {run.info.run_id for run in children}
    (parent_again,), children_again = runs_of(uri)
    assert parent_again.info.run_id == parent.info.run_id and parent_again.info.status == "FINISHED"
    assert {run.info.run_id for run in children_again} == {run.info.run_id for run in children}
    assert metric_by_step(uri, parent.info.run_id, "sweep/skipped") == {1: 0, 2: 20}


@pytest.mark.slow
def test_a_job_killed_mid_training_is_not_finished_and_the_next_resume_completes_the_sweep(tmp_path):
    uri = store_uri(tmp_path)
    args = [
        *without(TINY, "train.epochs"),
        "train.epochs=60",
        f"tracking.uri={uri}",
        "seed=0,1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "lstm_influence", "-m", *args],
        cwd=tmp_path,
        env=clean_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    victim = None
    try:
        deadline = time.monotonic() + 240
        while victim is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            victim = _training_run(tmp_path / "mlflow.db")
        assert victim is not None, "no job reached its first epoch"
        victim_id, pid = victim
        os.kill(int(pid), signal.SIGKILL)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    client = tracking.make_client(uri)
    assert client.get_run(victim_id).info.status != "FINISHED"
    (parent,), _ = runs_of(uri)
    assert parent.info.status != "FINISHED" and parent.info.status != "RUNNING"

    resumed = sweep(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (parent,), children = runs_of(uri)
    assert parent.info.status == "FINISHED"
    assert client.get_run(victim_id).info.status == "KILLED"
    finished = [run for run in children if run.info.status == "FINISHED"]
    assert sorted(run.data.tags["seed"] for run in finished) == ["0", "1"]  # one FINISHED run per config
    assert all(run.info.status in ("FINISHED", "KILLED") for run in children)


def _training_run(db: Path) -> tuple[str, str] | None:
    """(run id, pid) of a RUNNING job that has logged an epoch, or None.

    Read with sqlite3, read-only: an MlflowClient here could race the sweep to create (migrate) the new store.
    """
    if not db.exists():
        return None
    query = """
        SELECT r.run_uuid, t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'pid'
        WHERE r.status = 'RUNNING'
          AND EXISTS (SELECT 1 FROM metrics m WHERE m.run_uuid = r.run_uuid AND m.key = 'val/loss')
        LIMIT 1
    """
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as connection:
            return connection.execute(query).fetchone()
    except sqlite3.Error:  # the sweep is still creating its tables
        return None
