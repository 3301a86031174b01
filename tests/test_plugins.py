"""Plug-ins from outside the package: a strategy, a GRU in the LSTM's place and a dataset, each one class or
function (``tests/plugins/``) plus one YAML file in a config folder of the user's, selected like the built-ins."""

from __future__ import annotations

from pathlib import Path

import pytest

import lstm_influence as li
from lstm_influence import names, tracking
from lstm_influence.config.identity import run_name
from lstm_influence.strategies import make_strategy
from tests.helpers import TINY

YAML = {
    "strategy/forget_three.yaml": "_target_: tests.plugins.nudges.ForgetThree\nname: forget_three\nforget: 3.0\n",
    "strategy/gru.yaml": "_target_: tests.plugins.nudges.GRUInstead\nname: gru\n",
    "dataset/running_sign.yaml": (
        "_target_: tests.plugins.data.running_sign\nname: running_sign\nseq_len: 8\nn: 96\ndata_seed: 0\n"
        "target_norm_loss: 0.5\n"
    ),
    "arm/forget_three_two.yaml": (
        "# @package _global_\ndefaults:\n  - override /strategy: forget_three\narm: forget_three_two\n"
        "strategy:\n  forget: 2.0\n"
    ),
}


@pytest.fixture(scope="module")
def conf(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("myconf")
    for relative, text in YAML.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def compose(conf: Path, *overrides: str):
    return li.compose([f"hydra.searchpath=[file://{conf}]", *overrides])


def test_a_users_strategy_and_arm_are_selected_like_the_built_ins(conf):
    cfg = compose(conf, "arm=forget_three_two", "seed=2")
    strategy = make_strategy(cfg, input_dim=2, units=4, seq_len=10)
    assert (strategy.name, strategy.forget, strategy.units) == ("forget_three", 2.0, 4)
    assert run_name(cfg) == "forget_three_two-adding-s2"


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("+strategy.forgt=2", ["strategy.forgt=2", "unknown key", "ForgetThree", "valid keys: forget, name"]),
        ("strategy.forget=lots", ["strategy.forget='lots'", "expected a number"]),
        ("strategy.forget=-1", ["strategy.forget=-1", "positive"]),  # the plug-in's own validate()
    ],
)
def test_a_users_strategy_refuses_bad_keys_before_anything_is_built(conf, override, fragments):
    with pytest.raises(li.ConfigError) as info:
        make_strategy(compose(conf, "strategy=forget_three", override), input_dim=2, units=4, seq_len=10)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_users_dataset_loads_and_is_checked_against_its_signature(conf):
    data = li.load_dataset(compose(conf, "dataset=running_sign"))
    assert (data.name, data.seq_len, len(data.train[0])) == ("running_sign", 8, 48)
    with pytest.raises(li.ConfigError, match=r"dataset.m=5: unknown key .*valid keys: .*n, name, seq_len"):
        li.load_dataset(compose(conf, "dataset=running_sign", "+dataset.m=5"))
    with pytest.raises(li.DatasetError, match=r"dataset.n=4"):
        li.load_dataset(compose(conf, "dataset=running_sign", "dataset.n=4"))


def test_a_users_strategy_builds_verifies_and_trains_on_a_users_dataset(conf, tracking_uri):
    cfg = compose(conf, "strategy=forget_three", "dataset=running_sign", *TINY[4:], f"tracking.uri={tracking_uri}")
    model = li.build_model(cfg, li.load_dataset(cfg))
    assert li.verify_influence(model, cfg)["passed"]
    summary = li.run(cfg)
    run = tracking.make_client(tracking_uri).get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "forget_three-running_sign-s0"
    assert "gates/forget_mean" in run.data.metrics and names.GATE_METRICS not in run.data.tags
    assert run.data.params["strategy._target_"] == "tests.plugins.nudges.ForgetThree"


def test_a_gru_in_the_lstms_place_runs_to_the_end_and_says_why_gate_metrics_are_absent(conf, tracking_uri):
    cfg = compose(conf, "strategy=gru", *TINY, f"tracking.uri={tracking_uri}")
    summary = li.run(cfg)
    run = tracking.make_client(tracking_uri).get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert {"val/loss", "test/norm_loss", "grad/global_norm", "conv/aulc"} <= set(run.data.metrics)
    assert not [key for key in run.data.metrics if key.startswith("gates/")]
    assert run.data.tags[names.GATE_METRICS].startswith("absent: the recurrent layer GRU (cell GRUCell)")


def test_a_sweep_with_a_value_its_plug_in_refuses_stops_before_any_run(conf, tmp_path):
    from tests.helpers import REPO, store_uri, sweep

    uri = store_uri(tmp_path)
    args = ["--config-dir", str(conf), "strategy=forget_three", "strategy.forget=three", "seed=0,1"]
    result = sweep([*args, *TINY, f"tracking.uri={uri}"], tmp_path, env={"PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode != 0
    assert "Cannot start the sweep" in result.stderr and "strategy.forget='three'" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()  # no run, no parent: nothing to clean up


def test_tuning_selects_a_plug_in_by_the_file_the_command_chose_not_by_its_name(conf):
    from hydra.core.hydra_config import HydraConfig

    from lstm_influence.orchestration.tuning.tuned_files import config_options
    from tests.helpers import compose_with_hydra, packaged_hydra

    (conf / "strategy" / "my_file.yaml").write_text(YAML["strategy/forget_three.yaml"])  # name: forget_three
    assert config_options("forget_three", "synthetic") == ("forget_three", "synthetic")  # outside a command
    with packaged_hydra():
        cfg = compose_with_hydra("config", [f"hydra.searchpath=[file://{conf}]", "strategy=my_file"])
        HydraConfig.instance().set_config(cfg)
        try:
            assert cfg.strategy.name == "forget_three"
            assert config_options("forget_three", "synthetic") == ("my_file", "synthetic")
        finally:
            HydraConfig.instance().cfg = None


def test_a_users_arm_joins_the_long_range_battery_beside_the_built_ins(conf):
    from hydra import compose as hydra_compose

    from lstm_influence.config.identity import config_hash
    from lstm_influence.orchestration.plan import plan_jobs
    from tests.helpers import packaged_hydra

    overrides = [
        f"hydra.searchpath=[file://{conf}]",
        "experiment=long_range",
        "hydra.sweeper.params.arm='baseline,chrono,forget_three_two'",  # as -m ... arm=a,b,c replaces the list
        "hydra.sweeper.params.seed='0,1'",
    ]
    with packaged_hydra():
        jobs = plan_jobs(hydra_compose("config", overrides=overrides, return_hydra_config=True))
    assert len(jobs) == len({job.config_hash for job in jobs}) == 2 * 3 * 2  # tasks x arms x seeds
    mine = [job for job in jobs if "arm=forget_three_two" in job.overrides]
    assert len(mine) == 4
    cfg = compose(conf, *[o for o in mine[0].overrides if not o.startswith("hydra.")])
    assert config_hash(cfg) == mine[0].config_hash
    assert (cfg.strategy.name, cfg.train.epochs, cfg.dataset.seq_len) == ("forget_three", 20, 200)
    names_ = {run_name(compose(conf, *[o for o in job.overrides if not o.startswith("hydra.")])) for job in jobs}
    assert len(names_) == 12 and "forget_three_two-adding-s1" in names_ and "forget_three_two-copy-s0" in names_
