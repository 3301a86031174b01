"""The metric definitions on small hand-made histories with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_influence.training import curves as m


def test_best_epoch_ignores_non_finite_and_takes_the_first_minimum():
    assert m.best_epoch([0.5, float("nan"), 0.2, 0.3, 0.2]) == (0.2, 3)
    assert m.best_epoch([float("nan")]) is None


def test_epochs_to_target_is_one_based_and_none_when_missed():
    assert m.epochs_to_target([0.9, 0.4, 0.1, 0.05], 0.1) == 3
    assert m.epochs_to_target([0.9, 0.4], 0.1) is None
    assert m.epochs_to_target([float("nan"), 0.05], 0.1) == 2


def test_aulc_is_the_mean_normalised_loss():
    assert m.aulc([1.0, 0.5, 0.25, 0.25]) == pytest.approx(0.5)
    assert math.isnan(m.aulc([]))


def test_spikes_need_a_full_window():
    flat = [1.0] * 5
    # window 3: steps 3 and 4 have full windows of ones; 3.5 > 3 x 1 is a spike, 2.9 is not.
    assert m.spike_mask([*flat[:3], 3.5, 2.9], factor=3.0, window=3).tolist() == [False, False, False, True, False]
    # a large value early (no full window yet) is not a spike
    assert m.count_spikes([10.0, 1.0, 1.0], factor=3.0, window=3) == 0
    # medians roll: after [1, 1, 4] the median is 1, so 3.1 is a spike; after [1, 4, 4] it is 4, so 5 is not
    assert m.spike_mask([1.0, 1.0, 4.0, 3.1, 4.0, 5.0], 3.0, 3).tolist() == [False, False, False, True, False, False]


def test_non_finite_values_are_spikes():
    assert m.count_spikes([1.0, float("inf"), float("nan")], 3.0, 20) == 2


def test_divergence_rule():
    assert not m.loss_diverged(10.0, 0.1, 100.0)
    assert m.loss_diverged(10.01, 0.1, 100.0)
    assert m.loss_diverged(float("inf"), 0.1, 100.0)
    assert m.weights_finite([np.ones(3), np.zeros((2, 2))])
    assert not m.weights_finite([np.ones(3), np.array([0.0, np.nan])])


def test_summary_metrics_names_and_values():
    summary = m.summary_metrics(
        [0.3, 0.2, 0.25],
        [0.9, 0.08, 0.1],
        [1.0] * 4 + [9.0],
        [2.0] * 5,
        target=0.1,
        spike_factor=3.0,
        spike_window=4,
        diverged=False,
    )
    assert summary == {
        "best/val_loss": 0.2,
        "best/epoch": 2.0,
        "conv/reached_target": 1.0,
        "conv/epochs_to_target": 2.0,
        "conv/aulc": pytest.approx((0.9 + 0.08 + 0.1) / 3),
        "stab/loss_spikes": 1.0,
        "stab/grad_spikes": 0.0,
        "stab/diverged": 0.0,
    }
    missed = m.summary_metrics([0.3], [0.9], [], [], target=0.1, spike_factor=3, spike_window=20, diverged=True)
    assert "conv/epochs_to_target" not in missed
    assert missed["conv/reached_target"] == 0.0 and missed["stab/diverged"] == 1.0


def test_gradient_summary():
    assert m.gradient_summary([1.0, 3.0, 2.0]) == (2.0, 3.0)
    assert all(math.isnan(v) for v in m.gradient_summary([]))


def test_the_summary_and_reference_metrics_are_declared():
    from lstm_influence import metrics

    summary = m.summary_metrics(
        [0.3, 0.2], [0.9, 0.05], [1.0] * 3, [2.0] * 3, target=0.1, spike_factor=3.0, spike_window=2, diverged=False
    )
    assert set(summary) <= set(metrics.of_kind(metrics.Kind.SUMMARY))
    references = m.reference_metrics({"val": 0.5, "test": 0.25}, {"ridge": {"val": 0.1, "test": 0.2}})
    assert all(metrics.declaration(name).kind is metrics.Kind.BEFORE_TRAINING for name in references)
