"""The monitoring pieces on hand-built inputs: step recorder, gate probe (against hand-computed gates), run summary."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from lstm_influence.datasets.base import Dataset
from lstm_influence.training.monitoring import GateProbe, StepRecorder, describe_run, gate_statistics
from lstm_influence.training.monitoring import gate_note as monitoring_note


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# One unit, one feature: every weight is a 4-vector in Keras's gate order (input, forget, cell, output), with a
# different value per gate so that any other order gives other numbers.
KERNEL = [0.5, -1.0, 0.25, 0.2]
RECURRENT = [0.3, 0.6, -0.2, 0.1]
BIAS = [0.1, 0.2, 0.0, -4.0]
X = [1.0, 2.0]  # two time steps of one sequence


def hand_computed_gates() -> dict[str, float]:
    """The LSTM equations written out for the two steps."""
    h = c = 0.0
    forget, inputs, saturated = [], [], []
    for x in X:
        z = [x * k + h * r + b for k, r, b in zip(KERNEL, RECURRENT, BIAS)]
        i, f, o = sigmoid(z[0]), sigmoid(z[1]), sigmoid(z[3])
        c = f * c + i * math.tanh(z[2])
        h = o * math.tanh(c)
        forget.append(f)
        inputs.append(i)
        saturated.append(sum(not 0.05 <= g <= 0.95 for g in (i, f, o)) / 3)
    return {
        "gates/forget_mean": sum(forget) / 2,
        "gates/input_mean": sum(inputs) / 2,
        "gates/saturated_frac": sum(saturated) / 2,
    }


def constant_lstm_model(order=(0, 1, 2, 3), layer=keras.layers.LSTM) -> keras.Model:
    """The hand-computed LSTM as a Keras model, its gate blocks stored in ``order`` (Keras's own: 0, 1, 2, 3)."""
    inputs = keras.Input((len(X), 1))
    permute = list(order)
    lstm = layer(
        1,
        kernel_initializer=keras.initializers.Constant(np.array([KERNEL])[..., permute]),
        recurrent_initializer=keras.initializers.Constant(np.array([RECURRENT])[..., permute]),
        bias_initializer=keras.initializers.Constant(np.array(BIAS)[permute]),
        unit_forget_bias=False,
        name="lstm",
    )
    return keras.Model(inputs, keras.layers.Dense(1)(lstm(inputs)))


PROBE_X = np.array([[[x] for x in X]], np.float32)


def test_the_gate_probe_matches_hand_computed_gate_activations():
    expected = hand_computed_gates()
    # the output gate of this bias is saturated at both steps, the others never: 1/3 of the gates
    assert expected["gates/saturated_frac"] == pytest.approx(1 / 3)
    probe = GateProbe(constant_lstm_model(), PROBE_X)
    measured = probe()
    for key, value in expected.items():
        assert measured[key] == pytest.approx(value, rel=1e-5), key


@pytest.mark.parametrize("order", [[1, 0, 2, 3], [0, 2, 1, 3], [3, 1, 2, 0]], ids=["f-i-c-o", "i-c-f-o", "o-f-c-i"])
def test_the_hand_computed_gates_catch_another_gate_order(order):
    permuted = GateProbe(constant_lstm_model(order), PROBE_X)()
    assert permuted != pytest.approx(hand_computed_gates(), rel=1e-3)


def test_the_extra_variable_lstm_reports_its_gates_on_the_effective_kernel():
    from lstm_influence.layers import ExtraVariableLSTM

    expected = hand_computed_gates()
    model = constant_lstm_model(layer=lambda units, **kw: ExtraVariableLSTM(units, target_gates=["forget"], **kw))
    assert GateProbe(model, PROBE_X)() == pytest.approx(expected, rel=1e-5)  # Δ = 0: the same gates
    model.get_layer("lstm").cell.extra.assign(np.array([[0.0, 3.0, 0.0, 0.0]], np.float32))  # masked to forget
    moved = GateProbe(model, PROBE_X)()
    assert moved["gates/forget_mean"] > expected["gates/forget_mean"] + 0.1
    # c_0 = 0, so h_1 does not depend on f_1: the input gate stays what it was at both steps
    assert moved["gates/input_mean"] == pytest.approx(expected["gates/input_mean"], rel=1e-5)


def test_read_gates_rejects_an_input_without_time_steps():
    from lstm_influence.layers.gate_reading import read_gates

    layer = constant_lstm_model().get_layer("lstm")
    with pytest.raises(ValueError, match=r"\(batch, time >= 1, features\)"):
        read_gates(layer, np.zeros((2, 0, 1)))


def test_gate_statistics_summarise_what_the_layer_reports():
    forget = np.array([[[0.01], [0.5]]])
    assert gate_statistics({"forget": forget}) == {"gates/forget_mean": 0.255, "gates/saturated_frac": 0.5}
    assert gate_statistics({"candidate": forget}) == {}
    assert monitoring_note(["forget"]) == (
        "partial: the recurrent layer reports the gates forget, so gates/input_mean is not logged"
    )
    assert monitoring_note(["input", "forget", "output"]) == ""


def test_a_layer_that_reports_no_gates_is_named_with_the_reason():
    from lstm_influence.layers.gate_reading import GatesUnavailable

    inputs = keras.Input((len(X), 1))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(2, name="lstm")(inputs)))
    with pytest.raises(GatesUnavailable, match=r"GRU \(cell GRUCell\) does not report its gates"):
        GateProbe(model, PROBE_X)


def test_the_step_recorder_keeps_one_epoch_and_overwrites_its_last_slot():
    recorder = StepRecorder(3)
    for step in range(4):
        recorder.record(float(step), 10.0 + step)
    loss, grad = recorder.read()
    assert loss.tolist() == [0.0, 1.0, 3.0] and grad.tolist() == [10.0, 11.0, 13.0]
    recorder.reset()
    recorder.record(7.0, 8.0)
    assert [a.tolist() for a in recorder.read()] == [[7.0], [8.0]]
    with pytest.raises(ValueError, match="capacity"):
        StepRecorder(0)


def tiny_dataset(**overrides) -> Dataset:
    split = (np.zeros((4, 3, 1), np.float32), np.zeros((4, 1), np.float32))
    fields = {
        "name": "synthetic",
        "train": split,
        "val": split,
        "test": split,
        "loss": "mse",
        "baseline_loss": {"val": 0.2, "test": 0.25},
        "feature_names": ["x"],
        "metadata": {"baseline": "always predict 1"},
        "reference_losses": {"ridge": {"val": 0.18, "test": 0.2}},
    }
    return Dataset(**{**fields, **overrides})


def test_the_run_summary_reads_the_losses_against_the_trivial_predictor():
    summary = {
        "final/epoch": 4.0,
        "final/val_loss": 0.05,
        "test/loss": 0.1,
        "test/norm_loss": 0.4,
        "conv/epochs_to_target": 3.0,
        "stab/diverged": 0.0,
        "influence/retention": 0.75,
    }
    text = describe_run(summary, tiny_dataset(), target=0.3, epochs=4, seconds=9.0)
    assert "4 of 4 epochs in 9.0 s" in text
    assert "always predict 1" in text and "1 = no better than it" in text
    assert "validation 0.25 (loss 0.05), test 0.4 (loss 0.1)" in text
    assert "ridge reference: 0.8 (test)" in text
    assert "reached at epoch 3" in text and "No divergence" in text
    assert "Influence retention: 0.75" in text


def test_the_run_summary_of_a_diverged_trial_names_the_reason_and_leaves_out_test():
    summary = {"final/epoch": 2.0, "final/val_loss": float("nan"), "stab/diverged": 1.0}
    text = describe_run(summary, tiny_dataset(), target=0.1, epochs=5, seconds=1.0, divergence_reason="non-finite")
    assert "2 of 5 epochs" in text and "validation nan" in text and "test" not in text
    assert "ridge reference: 0.9 (val)" in text
    assert "not reached in 2 epochs" in text and "Diverged (non-finite)" in text


def test_the_gate_probe_replays_on_one_blas_thread(monkeypatch):
    # idle BLAS threads spinning beside TensorFlow's made a probe 25x slower on a loaded machine
    import lstm_influence.training.monitoring as monitoring

    seen = []

    def recording(*args, **kwargs):
        seen.extend(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
        return gate_statistics(*args, **kwargs)

    monkeypatch.setattr(monitoring, "gate_statistics", recording)
    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    measured = GateProbe(constant_lstm_model(), np.array([[[x] for x in X]], np.float32))()
    assert seen and set(seen) == {1}
    assert [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"] == before  # restored
    assert measured["gates/saturated_frac"] == pytest.approx(1 / 3)
