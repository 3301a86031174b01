"""Config composition: the packaged defaults, and schema errors that name the bad key."""

from __future__ import annotations

import dataclasses
import json
import typing
from enum import Enum, StrEnum

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import MISSING, OmegaConf

import lstm_influence as li
from lstm_influence.config import schema as config_module
from lstm_influence.config.identity import arm_name, config_hash, flatten, run_name, to_container
from lstm_influence.config.schema import ConfigError, check_keys
from tests.helpers import CONF, compose_with_hydra


def test_defaults_match_the_contract():
    cfg = li.compose()
    assert cfg.strategy.name == "baseline"
    assert cfg.dataset.name == "synthetic" and cfg.dataset.task == "adding"
    assert cfg.seed == 0
    assert cfg.tracking.uri == "sqlite:///mlflow.db"
    assert cfg.tracking.experiment == "lstm-influence"
    assert cfg.train.target_norm_loss == pytest.approx(0.1)
    assert run_name(cfg) == "baseline-adding-s0"  # the synthetic family has tasks: the task names the run
    for key in ("train.epochs", "train.batch_size", "train.learning_rate", "model.units", "dataset.seq_len"):
        assert OmegaConf.select(cfg, key) is not None, key


@pytest.mark.parametrize("group", ["strategy", "dataset", "model", "train", "tracking"])
def test_every_group_has_a_name_key(group):
    cfg = li.compose()
    assert isinstance(cfg[group].name, str) and cfg[group].name


def test_overrides_reach_the_config():
    cfg = li.compose(["train.epochs=3", "model.units=16", "seed=7", "dataset.seq_len=20"])
    assert (cfg.train.epochs, cfg.model.units, cfg.seed, cfg.dataset.seq_len) == (3, 16, 7, 20)
    assert run_name(cfg) == "baseline-adding-s7"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=2", "train.epoch"),
        ("train.epochs=abc", "train.epochs"),
        ("model.units=1.5", "model.units"),
        ("dataset.n_trian=3", "dataset.n_trian"),
        ("strategy=no_such_strategy", "no_such_strategy"),
        ("tracking=nowhere", "nowhere"),
    ],
)
def test_schema_errors_name_the_key(override, message):
    with pytest.raises(ConfigCompositionException) as info:
        li.compose([override])
    text = str(info.value) + str(info.value.__cause__ or "")
    assert message in text


def test_appended_unknown_keys_are_rejected_before_training():
    cfg = li.compose(["+dataset.typo=1"])
    with pytest.raises(ConfigError, match=r"dataset\.typo=1: unknown key .*valid keys: .*copy_alphabet"):
        li.load_dataset(cfg)  # a plug-in group: its loader's signature is the schema
    cfg = li.compose(["+model.typo=1"])
    with pytest.raises(ConfigError, match=r"model\.typo"):
        check_keys(cfg)
    cfg = li.compose(["+sede=1"])
    with pytest.raises(ConfigError, match="sede"):
        check_keys(cfg)


def test_flatten_and_hash():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "[1, 2]", "d": None}
    base = li.compose()
    assert config_hash(base) == config_hash(li.compose(["tracking.uri=sqlite:///elsewhere.db"]))
    assert config_hash(base) != config_hash(li.compose(["seed=1"]))
    assert "hydra" not in to_container(base)


# ---------------------------------------------------------------------------------------------------------------
# every default stated once: values in conf/*.yaml, types and docs in the schema dataclasses

# chosen by experiment=... / written by the tuner / read by compare.py --preset: not options of a run to pick
SELECTED_THROUGH_OTHERS = {"workload", "tuned", "analysis"}


def schema_classes() -> list[type]:
    """Every structured-config dataclass of lstm_influence.config.schema."""
    return [
        obj
        for obj in vars(config_module).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == config_module.__name__
    ]


def element_schemas() -> set[type]:
    """Schemas used only as list items or dict values (``custom_init.targets``, ``tune.space``): no YAML node of
    their own states defaults for their optional keys, so those keys keep theirs in the dataclass."""
    elements: set[type] = set()
    for schema in schema_classes():
        for hint in typing.get_type_hints(schema).values():
            if typing.get_origin(hint) in (list, dict):
                elements.update(arg for arg in typing.get_args(hint) if dataclasses.is_dataclass(arg))
    return {cls for cls in schema_classes() if any(issubclass(element, cls) for element in elements)} | elements


def leaves_with_values(schema: type, prefix: str = "") -> list[str]:
    """``Class.key`` of every leaf field of ``schema`` whose default is a value instead of MISSING."""
    found = []
    for field_ in dataclasses.fields(schema):
        key = f"{prefix}{schema.__name__}.{field_.name}"
        if field_.default_factory is not dataclasses.MISSING:
            default = field_.default_factory()
            if dataclasses.is_dataclass(default):
                found += [f"{key} -> {leaf}" for leaf in leaves_with_values(type(default))]
                continue
            found.append(key)
        elif field_.default is not MISSING:
            found.append(key)
    return found


def test_every_schema_leaf_default_is_missing_so_the_yaml_is_the_one_place_a_value_is_written():
    exempt = element_schemas()
    stated_twice = [leaf for schema in schema_classes() if schema not in exempt for leaf in leaves_with_values(schema)]
    assert stated_twice == [], f"defaults written in the dataclass instead of conf/*.yaml: {stated_twice}"


def group_options() -> list[tuple[str, str, str]]:
    """(config name, group, option) for every option file of every selectable group under conf/."""
    found = []
    for group in sorted(path for path in CONF.iterdir() if path.is_dir() and path.name not in SELECTED_THROUGH_OTHERS):
        for option in sorted(group.glob("*.yaml")):
            found.append(("tuning" if group.name == "tune" else "config", group.name, option.stem))
    return found


@pytest.mark.parametrize(("config_name", "group", "option"), group_options())
def test_every_option_of_every_group_composes_with_no_missing_value(config_name, group, option):
    cfg = compose_with_hydra(config_name, [f"{group}={option}"], return_hydra_config=False)
    assert OmegaConf.missing_keys(cfg) == set(), f"{group}={option} leaves keys without a value"
    check_keys(cfg)
    container = to_container(cfg)  # every interpolation resolves
    assert json.loads(json.dumps(container)) == container  # plain values only: enums came out as strings


def test_a_bad_closed_choice_is_rejected_before_anything_is_built_naming_the_key_and_the_valid_values():
    from lstm_influence.strategies import make_strategy

    with pytest.raises(ConfigError) as info:
        make_strategy(li.compose(["strategy=bias_init", "strategy.preset=chrno"]), input_dim=2, units=4, seq_len=8)
    text = str(info.value)
    assert "strategy.preset" in text and "chrno" in text
    for preset in ("keras_default", "zeros", "forget_one", "forget_two", "chrono", "custom"):
        assert preset in text


def test_enums_reach_params_and_hash_as_their_plain_strings():
    cfg = li.compose(["train.optimizer=sgd"])
    optimizer = OmegaConf.to_object(cfg.train).optimizer
    assert isinstance(optimizer, Enum) and optimizer == "sgd"  # typed in the config, equal to its string
    container = to_container(cfg)
    assert type(container["train"]["optimizer"]) is str
    params = flatten(container)
    assert type(params["train.optimizer"]) is str and params["train.optimizer"] == "sgd"
    assert flatten({"gates": [BiasPresetLike.zeros]}) == {"gates": '["zeros"]'}
    assert config_hash(cfg) == config_hash(li.compose(["train.optimizer=sgd"]))
    assert config_hash(cfg) != config_hash(li.compose(["train.optimizer=adam"]))


def test_the_hash_leaves_out_which_code_a_plugin_yaml_names():
    cfg = li.compose(["strategy=bias_init"])
    moved = li.compose(
        ["strategy=bias_init", "strategy._target_=elsewhere.BiasInit", "dataset._target_=elsewhere.load"]
    )
    assert config_hash(cfg) == config_hash(moved)
    assert flatten(to_container(cfg))["strategy._target_"] == "lstm_influence.strategies.bias_init.BiasInit"
    # Hashes of runs in the shipped stores (results/*/runs.csv), made before the YAML files named their classes.
    assert (
        config_hash(li.compose(["experiment=long_range", "workload=long_range/adding", "arm=chrono", "seed=0"]))
        == (KNOWN_HASHES["long_range adding chrono s0"])
    )
    assert (
        config_hash(li.compose(["experiment=compare", "strategy=extra_variable", "dataset=text", "seed=3"]))
        == (KNOWN_HASHES["compare extra_variable text s3"])
    )


KNOWN_HASHES = {"long_range adding chrono s0": "12d9bb451fd1a232", "compare extra_variable text s3": "9e79bd4af5d44464"}


class BiasPresetLike(StrEnum):
    zeros = "zeros"


# ---------------------------------------------------------------------------------------------------------------
# named arms


def test_without_an_arm_the_arm_is_the_strategy_and_the_hash_ignores_the_empty_key():
    cfg = li.compose(["strategy=bias_init"])
    assert cfg.arm is None and arm_name(cfg) == "bias_init" and run_name(cfg) == "bias_init-adding-s0"
    without_key = OmegaConf.create(to_container(cfg))
    del without_key["arm"]
    assert config_hash(cfg) == config_hash(without_key)  # runs logged before the arm key existed keep their hash


def test_an_arm_option_selects_its_strategy_and_names_the_run(tmp_path):
    arms = tmp_path / "arm"
    arms.mkdir()
    (arms / "zeros.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /strategy: bias_init\narm: zeros\nstrategy:\n  preset: zeros\n"
    )
    cfg = li.compose([f"hydra.searchpath=[file://{tmp_path}]", "arm=zeros", "seed=3"])
    assert (cfg.arm, cfg.strategy.name, cfg.strategy.preset) == ("zeros", "bias_init", "zeros")
    assert arm_name(cfg) == "zeros" and run_name(cfg) == "zeros-adding-s3"
    assert config_hash(cfg) != config_hash(li.compose(["strategy=bias_init", "strategy.preset=zeros", "seed=3"]))

    from lstm_influence.tracking import run_tags

    tags = run_tags(cfg)
    assert (tags["arm"], tags["strategy"]) == ("zeros", "bias_init")
    assert tags["task"] == "adding" and "task" not in run_tags(li.compose(["dataset=financial"]))


def test_run_names_are_unique_within_a_sweep_over_tasks():
    params = compose_with_hydra("config", ["experiment=long_range"]).hydra.sweeper.params
    arms = str(params.arm).split(",")
    names = [
        run_name(li.compose(["experiment=long_range", f"workload={workload}", f"arm={arm}", "seed=0"]))
        for workload in str(params.workload).split(",")
        for arm in arms
    ]
    assert len(set(names)) == len(names) == 2 * len(arms)
    assert {"chrono-adding-s0", "chrono-copy-s0"} <= set(names)


# ---------------------------------------------------------------------------------------------------------------
# validate: the one check of a run's config


def test_validate_checks_keys_values_and_plugins_and_returns_the_checked_plugins():
    from lstm_influence.config import ValidConfig, validate
    from lstm_influence.datasets import synthetic
    from lstm_influence.strategies.bias_init import BiasInit

    valid = validate(li.compose(["strategy=bias_init", "strategy.preset=chrono"]))
    assert isinstance(valid, ValidConfig)
    assert valid.strategy_class is BiasInit and valid.strategy_settings["preset"] == "chrono"
    assert valid.dataset_loader is synthetic.load and valid.dataset_settings["task"] == "adding"
    for overrides, message in [
        (["+model.typo=1"], r"model\.typo"),
        (["train.epochs=0"], r"train\.epochs=0: expected a positive integer"),
        (["train.learning_rate=0"], r"train\.learning_rate=0.0: expected a positive number"),
        (["train.clip_norm=-1"], r"train\.clip_norm=-1.0: expected a positive number or null \(off\)"),
        (["model.dropout=1.0"], r"model\.dropout=1.0: expected a value in \[0, 1\)"),
        (["train.jit_compile=xla"], r"train\.jit_compile='xla': expected auto, true or false"),
        (["strategy=bias_init", "strategy.preset=chrno"], r"strategy\.preset='chrno'"),
        (["+dataset.typo=1"], r"dataset\.typo=1: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=message):
            validate(li.compose(overrides))


def test_a_strategy_target_that_is_no_strategy_is_refused_by_validate():
    from lstm_influence.config import validate

    cfg = li.compose(["strategy._target_=lstm_influence.datasets.synthetic.load"])
    with pytest.raises(ConfigError, match=r"strategy\._target_=.*not a subclass of lstm_influence\.Strategy"):
        validate(cfg)
