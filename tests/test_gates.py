"""The gate layout and target arithmetic (pure numpy: no TensorFlow import, runs in well under a second)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_influence import gates
from tests.helpers import run_python

INPUT_DIM, UNITS = 3, 16


def test_gate_order_is_keras_i_f_c_o():
    assert gates.GATES == ("input", "forget", "cell", "output")
    assert [gates.gate_slice(g, UNITS) for g in gates.GATES] == [
        slice(0, 16),
        slice(16, 32),
        slice(32, 48),
        slice(48, 64),
    ]


def test_matrix_shapes_follow_keras():
    assert gates.matrix_shape("kernel", INPUT_DIM, UNITS) == (3, 64)
    assert gates.matrix_shape("recurrent_kernel", INPUT_DIM, UNITS) == (16, 64)
    assert gates.matrix_shape("bias", INPUT_DIM, UNITS) == (64,)


def test_split_gates_returns_the_four_blocks():
    bias = np.arange(64)
    blocks = gates.split_gates(bias, UNITS)
    assert blocks["forget"].tolist() == list(range(16, 32))
    assert blocks["output"].tolist() == list(range(48, 64))


def test_resolve_kernel_target_with_units_and_features():
    target = gates.resolve_target("kernel", "forget", input_dim=3, units=16, unit_indices=[0, 2], features=[1])
    assert target.rows.tolist() == [1]
    assert target.cols.tolist() == [16, 18]
    assert target.block_shape == (1, 2)
    mask = target.mask()
    assert mask.sum() == 2 and mask[1, 16] and mask[1, 18]


def test_all_selects_every_block_in_order():
    target = gates.resolve_target("bias", "all", input_dim=3, units=16, unit_indices=[15])
    assert target.cols.tolist() == [15, 31, 47, 63]
    assert target.rows is None and target.block_shape == (4,)


def test_recurrent_kernel_rows_are_the_units():
    target = gates.resolve_target("recurrent_kernel", "cell", input_dim=3, units=16)
    assert target.rows.tolist() == list(range(16))
    assert target.cols.tolist() == list(range(32, 48))


def test_gate_lists_expand_in_keras_order():
    assert gates.expand_gates(["output", "input"]) == ("input", "output")
    assert gates.expand_gates("all") == gates.GATES
    assert gates.gate_columns_mask(["forget"], 2).tolist() == [0, 0, 1, 1, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"matrix": "kernal", "gate": "forget"}, "matrix='kernal'"),
        ({"matrix": "kernel", "gate": "forgt"}, "gate='forgt'"),
        ({"matrix": "kernel", "gate": "forget", "unit_indices": [16]}, "index 16 is outside the layer's 16 units"),
        ({"matrix": "kernel", "gate": "forget", "unit_indices": [-1]}, "index -1"),
        ({"matrix": "kernel", "gate": "forget", "features": [3]}, "index 3 is outside the layer's 3 input features"),
        ({"matrix": "bias", "gate": "forget", "features": [0]}, "only matrix=kernel"),
        ({"matrix": "recurrent_kernel", "gate": "input", "features": [0]}, "only matrix=kernel"),
        ({"matrix": "kernel", "gate": "forget", "unit_indices": [1, 1]}, "listed twice"),
        ({"matrix": "kernel", "gate": "forget", "unit_indices": []}, "at least one index"),
    ],
)
def test_bad_targets_name_field_value_and_choices(kwargs, fragment):
    matrix = kwargs.pop("matrix")
    gate = kwargs.pop("gate")
    with pytest.raises(gates.TargetError) as err:
        gates.resolve_target(matrix, gate, input_dim=3, units=16, field="strategy.targets[0]", **kwargs)
    assert fragment in str(err.value)
    assert "strategy.targets[0]" in str(err.value)


def test_unknown_gate_lists_the_choices():
    with pytest.raises(gates.TargetError, match="expected one of input, forget, cell, output, all"):
        gates.resolve_target("bias", "gate_x", input_dim=3, units=16)


class TestFitValue:
    kernel = gates.resolve_target("kernel", "forget", input_dim=3, units=16, unit_indices=[0, 1])  # block 3 × 2

    def test_number_fills_the_block(self):
        assert gates.fit_value(0.5, self.kernel).tolist() == [[0.5, 0.5]] * 3

    def test_one_value_per_entry_row_major(self):
        assert gates.fit_value([1, 2, 3, 4, 5, 6], self.kernel).tolist() == [[1, 2], [3, 4], [5, 6]]

    def test_one_value_per_column(self):
        assert gates.fit_value([7, 8], self.kernel).tolist() == [[7, 8]] * 3

    def test_nested_rows_by_columns(self):
        assert gates.fit_value([[1, 2], [3, 4], [5, 6]], self.kernel).tolist() == [[1, 2], [3, 4], [5, 6]]

    @pytest.mark.parametrize("value", [[1, 2, 3], [[1, 2, 3]], [1] * 5])
    def test_a_list_that_does_not_fit_is_an_error(self, value):
        with pytest.raises(gates.TargetError, match=r"does not fit the block of shape \[3, 2\]"):
            gates.fit_value(value, self.kernel, "strategy.targets[0].value")

    @pytest.mark.parametrize("value", [math.nan, math.inf, [1.0, -math.inf]])
    def test_non_finite_values_are_errors(self, value):
        with pytest.raises(gates.TargetError, match="finite"):
            gates.fit_value(value, self.kernel)

    @pytest.mark.parametrize("value", ["half", True, None])
    def test_non_numbers_are_errors(self, value):
        with pytest.raises(gates.TargetError, match="expected a number"):
            gates.fit_value(value, self.kernel)


def test_gates_imports_numpy_alone_and_its_errors_are_value_errors():
    # lstm_influence.layers builds on this module, so it must not pull in the config schema (Hydra, OmegaConf).
    code = "import sys, lstm_influence.gates; print([m for m in ('hydra', 'omegaconf', 'keras') if m in sys.modules])"
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    assert issubclass(gates.TargetError, ValueError)
