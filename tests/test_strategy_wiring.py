"""How strategies meet the rest: found by `_target_` alone; chrono's t_max and the task."""

import math

import numpy as np
import pytest

import lstm_influence as li
from lstm_influence import gates
from lstm_influence.datasets import dependency_horizon
from lstm_influence.strategies import make_strategy


def test_the_copy_task_horizon_is_three_halves_of_its_delay_and_other_tasks_have_none():
    copy = li.compose(["dataset.task=copy", "dataset.seq_len=120", "dataset.copy_symbols=10"])
    assert dependency_horizon(copy.dataset) == pytest.approx(1.5 * 100)
    assert dependency_horizon(li.compose(["dataset.seq_len=120"]).dataset) is None
    assert dependency_horizon(li.compose(["dataset=text"]).dataset) is None


@pytest.mark.parametrize(("task", "t_max"), [("adding", 120.0), ("copy", 150.0)])
def test_chrono_with_t_max_null_draws_its_forget_bias_below_log_of_the_horizon(task, t_max):
    cfg = li.compose(["arm=chrono", f"dataset.task={task}", "dataset.seq_len=120", "model.units=256"])
    strategy = make_strategy(cfg, input_dim=2, units=256, seq_len=120)
    assert strategy.t_max == pytest.approx(t_max)
    bias = np.asarray(strategy.bias_initializer()((4 * 256,)))
    forget = gates.split_gates(bias, 256)["forget"]
    assert forget.min() >= 0.0
    assert forget.max() <= math.log(t_max - 1.0) + 1e-6
    # with 256 draws the largest comes close to the bound, so the two horizons are told apart
    assert forget.max() > math.log(0.9 * (t_max - 1.0))


def test_an_explicit_t_max_wins_over_the_horizon():
    cfg = li.compose(["arm=chrono", "dataset.task=copy", "dataset.seq_len=120", "strategy.t_max=30"])
    assert make_strategy(cfg, input_dim=10, units=8, seq_len=120).t_max == 30.0


def test_there_is_no_registry_a_yaml_target_is_the_only_way_in():
    import lstm_influence.strategies as strategies

    tables = [name for name, value in vars(strategies).items() if isinstance(value, dict) and name[0] != "_"]
    assert tables == []
    cfg = li.compose(["strategy=bias_init", "strategy._target_=lstm_influence.strategies.baseline.Baseline"])
    with pytest.raises(li.ConfigError, match=r"preset=.*unknown key for strategy.*Baseline; valid keys: name$"):
        make_strategy(cfg, input_dim=2, units=4, seq_len=10)
