"""Config composition: the packaged defaults, and schema errors that name the bad key."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import lstm_influence as li
from lstm_influence.config import ConfigError, check_keys, config_hash, flatten, run_name, to_container


def test_defaults_match_the_contract():
    cfg = li.compose()
    assert cfg.strategy.name == "baseline"
    assert cfg.dataset.name == "synthetic" and cfg.dataset.task == "adding"
    assert cfg.seed == 0
    assert cfg.tracking.uri == "sqlite:///mlflow.db"
    assert cfg.tracking.experiment == "lstm-influence"
    assert cfg.train.target_norm_loss == pytest.approx(0.1)
    assert run_name(cfg) == "baseline-synthetic-s0"
    for key in ("train.epochs", "train.batch_size", "train.learning_rate", "model.units", "dataset.seq_len"):
        assert OmegaConf.select(cfg, key) is not None, key


@pytest.mark.parametrize("group", ["strategy", "dataset", "model", "train", "tracking"])
def test_every_group_has_a_name_key(group):
    cfg = li.compose()
    assert isinstance(cfg[group].name, str) and cfg[group].name


def test_overrides_reach_the_config():
    cfg = li.compose(["train.epochs=3", "model.units=16", "seed=7", "dataset.seq_len=20"])
    assert (cfg.train.epochs, cfg.model.units, cfg.seed, cfg.dataset.seq_len) == (3, 16, 7, 20)
    assert run_name(cfg) == "baseline-synthetic-s7"


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
    with pytest.raises(ConfigError, match=r"dataset\.typo"):
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
