"""``lstm_influence.layers`` used as a new user would, on stock Keras layers, on the TensorFlow and JAX backends.

Every test here is backend-neutral (``keras.ops``, ``model.fit``): the suite runs them in-process on the default
backend, and ``test_layer_tests_and_doctests_pass_on_jax`` runs this file again, with the package's doctests, in a
subprocess with ``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import lstm_influence.layers as layers
from lstm_influence.layers import (
    ChronoBias,
    ExtraVariableLSTM,
    ExtraVariableLSTMCell,
    FeatureAffine,
    GateConstantBias,
    GateTargetInitializer,
    UniformGateBias,
)
from tests.helpers import run_python

UNITS, FEATURES, STEPS = 16, 3, 6
X = np.random.default_rng(0).normal(size=(32, STEPS, FEATURES)).astype("float32")
Y = X[:, :, :1].sum(axis=1) - X[:, :, 2:].sum(axis=1)
PACKAGE = Path(layers.__file__).parent
ON_JAX_SUBPROCESS = "test_layer_tests_and_doctests_pass_on_jax"


def numpy(value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def built_lstm(units: int = UNITS, **kwargs) -> keras.layers.LSTM:
    layer = keras.layers.LSTM(units, **kwargs)
    layer.build((None, STEPS, FEATURES))
    return layer


def block_means(bias: np.ndarray, units: int = UNITS) -> list[float]:
    return [float(b) for b in numpy(bias).reshape(4, units).mean(axis=1)]


GATE_BIASES = {
    "GateConstantBias": lambda u: GateConstantBias(u, forget=2.0),
    "ChronoBias": lambda u: ChronoBias(u, t_max=50.0),
    "UniformGateBias": lambda u: UniformGateBias(u),
    "GateTargetInitializer(bias)": lambda u: GateTargetInitializer(
        "zeros", "bias", [{"gate": "forget", "value": 2.0}], units=u
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# the package


def test_exports_and_imports_nothing_but_keras_and_numpy():
    assert sorted(layers.__all__) == sorted(
        [
            "ExtraVariableLSTM",
            "ExtraVariableLSTMCell",
            "GateTargetInitializer",
            "GateConstantBias",
            "ChronoBias",
            "UniformGateBias",
            "FeatureAffine",
        ]
    )
    code = (
        "import sys, lstm_influence.layers\n"
        "print([m for m in ('hydra', 'omegaconf', 'mlflow', 'lstm_influence.config.schema', "
        "'lstm_influence.strategies')"
        " if m in sys.modules])"
    )
    done = run_python("-c", code, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    for path in PACKAGE.glob("*.py"):  # backend-specific work goes through Keras, never TensorFlow directly
        assert not re.search(r"^\s*(import|from)\s+tensorflow", path.read_text(), re.MULTILINE), path


def test_doctests_run():
    modules = [layers] + [
        importlib.import_module(f"{layers.__name__}.{m.name}") for m in pkgutil.iter_modules([PACKAGE])
    ]
    attempted = 0
    for module in modules:
        result = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 10


def test_readme_examples_run_as_written():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    section = readme.split("## Use the layers in your own model", 1)[1].split("\n## ", 1)[0]
    section = re.sub(r"^```.*$", "", section, flags=re.MULTILINE)  # a fence would read as expected output
    test = doctest.DocTestParser().get_doctest(section, {}, "README: Use the layers in your own model", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 15


# ---------------------------------------------------------------------------------------------------------------
# bias initializers on a stock keras.layers.LSTM


@pytest.mark.parametrize("units", [UNITS, 6])  # a multiple of 4 is where a shape-reading initializer is fooled
@pytest.mark.parametrize("name", sorted(GATE_BIASES))
def test_gate_biases_refuse_unit_forget_bias_true(name, units):
    with pytest.raises(ValueError, match=r"unit_forget_bias=False"):
        built_lstm(units, bias_initializer=GATE_BIASES[name](units))  # Keras's default unit_forget_bias=True


@pytest.mark.parametrize("name", sorted(GATE_BIASES))
def test_gate_biases_refuse_another_layer_size(name):
    with pytest.raises(ValueError, match=r"\(64,\).*unit_forget_bias=False"):
        built_lstm(UNITS, bias_initializer=GATE_BIASES[name](2 * UNITS), unit_forget_bias=False)


def test_constant_bias_writes_exactly_its_gates():
    layer = built_lstm(
        bias_initializer=GateConstantBias(UNITS, input=-1.0, forget=2.0, output=0.5), unit_forget_bias=False
    )
    np.testing.assert_array_equal(numpy(layer.cell.bias), np.repeat(np.float32([-1.0, 2.0, 0.0, 0.5]), UNITS))
    targeted = built_lstm(bias_initializer=GATE_BIASES["GateTargetInitializer(bias)"](UNITS), unit_forget_bias=False)
    assert block_means(targeted.cell.bias) == [0.0, 2.0, 0.0, 0.0]


def test_chrono_bias_blocks():
    bias = numpy(built_lstm(bias_initializer=ChronoBias(UNITS, t_max=50.0, seed=3), unit_forget_bias=False).cell.bias)
    b_i, b_f, b_c, b_o = np.split(bias, 4)
    assert np.all(b_f >= 0) and np.all(b_f <= np.log(49) + 1e-6) and b_f.std() > 0.1
    np.testing.assert_array_equal(b_i, -b_f)
    assert not b_c.any() and not b_o.any()


def test_uniform_gate_bias_spreads_forget_activations_uniformly():
    units = 400
    bias = numpy(UniformGateBias(units, seed=0)((4 * units,)))
    b_i, b_f, b_c, b_o = np.split(bias, 4)
    forget = 1.0 / (1.0 + np.exp(-b_f))
    low, high = 1.0 / units, 1.0 - 1.0 / units
    assert forget.min() >= low - 1e-6 and forget.max() <= high + 1e-6
    # Kolmogorov–Smirnov distance to U[1/d, 1 − 1/d]: about 0.03 for 400 draws; a logistic or constant is far off.
    ranks = np.sort((forget - low) / (high - low))
    assert np.max(np.abs(ranks - (np.arange(units) + 0.5) / units)) < 0.08
    np.testing.assert_allclose(b_i, -b_f, atol=0)
    assert not b_c.any() and not b_o.any()
    with pytest.raises(ValueError, match="units >= 2"):
        UniformGateBias(1)


def test_stretched_uniform_gate_bias_spreads_over_the_horizons_interval():
    units, t_max = 400, 1000  # T_max past d: the paper's interval would stop at time scales of 400 steps
    b_i, b_f, _, _ = np.split(numpy(UniformGateBias(units, seed=0, t_max=t_max)((4 * units,))), 4)
    forget = 1.0 / (1.0 + np.exp(-b_f.astype(np.float64)))
    low, high = 1.0 / t_max, 1.0 - 1.0 / t_max
    assert forget.min() >= low - 1e-6 and forget.max() <= high + 1e-6
    ranks = np.sort((forget - low) / (high - low))  # uniform on the stretched interval (KS distance, as above)
    assert np.max(np.abs(ranks - (np.arange(units) + 0.5) / units)) < 0.08
    # the paper's draw for the same seed, mapped onto the wider interval: the two differ only in the interval
    plain = 1.0 / (1.0 + np.exp(-numpy(UniformGateBias(units, seed=0)((4 * units,)))[units : 2 * units]))
    np.testing.assert_allclose((forget - low) / (high - low), (plain - 1 / units) / (1 - 2 / units), atol=2e-3)
    np.testing.assert_allclose(b_i, -b_f, atol=0)
    assert UniformGateBias.from_config(UniformGateBias(8, seed=1, t_max=50).get_config()).t_max == 50.0
    for bad in (2, 1.5, "200", True):
        with pytest.raises(ValueError, match="t_max="):
            UniformGateBias(8, t_max=bad)


@pytest.mark.parametrize("name", ["ChronoBias", "UniformGateBias"])
def test_seeds_follow_keras(name):
    make = {
        "ChronoBias": lambda seed: ChronoBias(UNITS, 50.0, seed=seed),
        "UniformGateBias": lambda seed: UniformGateBias(UNITS, seed=seed),
    }[name]

    def bias(init):
        return numpy(built_lstm(bias_initializer=init, unit_forget_bias=False).cell.bias)

    np.testing.assert_array_equal(bias(make(7)), bias(make(7)))
    assert not np.array_equal(bias(make(7)), bias(make(8)))
    assert not np.array_equal(bias(make(None)), bias(make(None)))  # two stacked layers differ
    shared = make(None)
    assert not np.array_equal(bias(shared), bias(shared))  # even through one shared instance
    keras.utils.set_random_seed(1)
    first = bias(make(None))
    keras.utils.set_random_seed(1)
    np.testing.assert_array_equal(first, bias(make(None)))  # and Keras's global seed reproduces it
    with pytest.raises(ValueError, match="seed="):
        make(1.5)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ChronoBias(UNITS, t_max=1.5), "t_max=1.5"),
        (lambda: GateConstantBias(UNITS, forget=float("nan")), "forget=nan"),
        (lambda: GateConstantBias(0), "units=0"),
        (lambda: GateTargetInitializer("zeros", "bias", [{"gate": "forget", "value": 1.0}]), "units="),
        (lambda: GateTargetInitializer("zeros", "bias", [{"gate": "forgt", "value": 1.0}], units=4), "forgt"),
        (lambda: GateTargetInitializer("zeros", "kernel", [{"gate": "cell", "value": 1.0, "op": "mul"}]), "op='mul'"),
        (lambda: GateTargetInitializer("zeros", "bias", [{"gate": "cell", "value": [1, 2]}], units=4), r"\[2\]"),
        (
            lambda: GateTargetInitializer("zeros", "bias", [{"gate": "cell", "value": 1, "features": [0]}], units=4),
            "features",
        ),
    ],
)
def test_initializer_arguments_are_checked_when_constructed(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_gate_target_kernel_initializer_writes_rows_and_blocks_of_any_shape():
    init = GateTargetInitializer(
        "glorot_uniform", "kernel", [{"gate": "forget", "op": "add", "value": 1.0, "features": [1], "units": [0, 2]}]
    )
    layer = built_lstm(kernel_initializer=init)  # 3 features ≠ 16 units
    kernel = numpy(layer.cell.kernel)
    delta = kernel - numpy(init.counterfactual((FEATURES, 4 * UNITS)))
    expected = np.zeros_like(delta)
    expected[1, [UNITS, UNITS + 2]] = 1.0
    np.testing.assert_allclose(delta, expected, atol=1e-6)


def test_gate_block_means_on_a_stock_lstm():
    means = {
        name: block_means(built_lstm(bias_initializer=make(UNITS), unit_forget_bias=False).cell.bias)
        for name, make in GATE_BIASES.items()
    }
    assert means["GateConstantBias"] == [0.0, 2.0, 0.0, 0.0]
    for name in ("ChronoBias", "UniformGateBias"):
        i, f, c, o = means[name]
        assert i == pytest.approx(-f) and c == 0.0 and o == 0.0
    assert 1.5 < means["ChronoBias"][1] < np.log(49)  # E[log U[1, 49]] ≈ 2.98
    assert abs(means["UniformGateBias"][1]) < 1.0  # logit of a uniform around 1/2: mean near 0


# ---------------------------------------------------------------------------------------------------------------
# FeatureAffine


def test_feature_affine_negative_index_is_the_last_feature_and_round_trips(tmp_path):
    inputs = keras.Input((STEPS, FEATURES))
    model = keras.Model(inputs, FeatureAffine(scale={-1: 2.0}, shift={0: -1.0}, name="affine")(inputs))
    out = numpy(model(X[:2]))
    np.testing.assert_allclose(out, X[:2] * [1.0, 1.0, 2.0] + [-1.0, 0.0, 0.0], rtol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(numpy(loaded(X[:2])), out)


def test_feature_affine_learned_and_errors():
    layer = FeatureAffine(scale=[1.0, 2.0, 3.0], shift=0.5, learned=True)
    layer.build((None, STEPS, FEATURES))
    np.testing.assert_array_equal(numpy(layer.gain), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(numpy(layer.offset), [0.5, 0.5, 0.5])
    assert [w.name for w in layer.trainable_weights] == ["gain", "offset"]
    with pytest.raises(ValueError, match=r"index -4 .*valid 0\.\.2, or -3\.\.-1"):
        FeatureAffine(scale={-4: 2.0}).build((None, STEPS, FEATURES))
    with pytest.raises(ValueError, match="one value per input feature"):
        FeatureAffine(scale=[1.0, 2.0]).build((None, STEPS, FEATURES))
    with pytest.raises(ValueError, match="same feature 2"):
        FeatureAffine(scale={-1: 2.0, 2: 3.0}).build((None, STEPS, FEATURES))
    with pytest.raises(ValueError, match="finite"):
        FeatureAffine(shift=float("inf"))


# ---------------------------------------------------------------------------------------------------------------
# ExtraVariableLSTM


def stock_model(layer: keras.layers.Layer) -> keras.Model:
    inputs = keras.Input((STEPS, FEATURES))
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(layer(inputs)))


def test_extra_variable_layer_state_is_a_plain_lstms_plus_its_own():
    ours = ExtraVariableLSTM(UNITS, target_gates=["forget"], rank=2, dropout=0.1, return_sequences=True, name="lstm")
    plain = keras.layers.LSTM(UNITS, dropout=0.1, return_sequences=True, name="lstm")
    assert set(vars(ours)) == set(vars(plain))
    assert type(ours.cell) is ExtraVariableLSTMCell
    added = {"mode", "matrix", "target_gates", "init", "init_seed", "l2", "trainable_base", "rank", "alpha"}
    assert set(vars(ours.cell)) - set(vars(plain.cell)) == added | {"extra", "lora_a", "lora_b", "_frozen"}
    lstm_args = set(keras.layers.LSTM(1).get_config())
    config = ours.get_config()
    assert lstm_args <= set(config) and added <= set(config)
    again = ExtraVariableLSTM.from_config(config)
    assert again.get_config() == config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "gain", "init": -1.0}, "init > -1"),
        ({"mode": "lora"}, "mode='lora'"),
        ({"matrix": "bias"}, "matrix='bias'"),
        ({"target_gates": ["forgt"]}, "forgt"),
        ({"l2": -0.1}, "l2=-0.1"),
        ({"init": "no_such_initializer"}, "no_such_initializer"),
        ({"rank": 0}, "rank=0"),
        ({"rank": 2, "mode": "gain"}, "additive mode only"),
        ({"rank": 2, "init": 0.5}, "init must be 0"),
        ({"alpha": 4.0}, "give a rank"),
        ({"rank": 2, "alpha": -1.0}, "alpha=-1.0"),
    ],
)
def test_the_cell_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message) if "(" in message else message):
        ExtraVariableLSTMCell(UNITS, **kwargs)
    with pytest.raises(ValueError):
        ExtraVariableLSTM(UNITS, **kwargs)


def test_lora_rank_shapes_start_at_zero_and_combine_as_documented():
    layer = ExtraVariableLSTM(
        UNITS, target_gates=["input", "cell"], rank=3, alpha=6.0, trainable_base=False, init_seed=0
    )
    layer.build((None, STEPS, FEATURES))
    cell = layer.cell
    assert [(w.name, tuple(w.shape)) for w in cell.extra_weights] == [
        ("kernel_lora_a", (FEATURES, 3)),
        ("kernel_lora_b", (3, 4 * UNITS)),
    ]
    assert numpy(cell.lora_a).std() > 0 and not numpy(cell.lora_b).any()
    np.testing.assert_array_equal(numpy(cell.kernel), numpy(cell.base_kernel))  # Δ starts at exactly 0
    assert not cell.base_kernel.trainable
    assert {w.name for w in layer.trainable_weights} == {"recurrent_kernel", "bias", "kernel_lora_a", "kernel_lora_b"}
    b = np.random.default_rng(1).normal(size=(3, 4 * UNITS)).astype("float32")
    cell.lora_b.assign(b)
    mask = np.repeat(np.float32([1, 0, 1, 0]), UNITS)
    expected = numpy(cell.base_kernel) + (6.0 / 3) * (numpy(cell.lora_a) @ b) * mask
    np.testing.assert_allclose(numpy(cell.kernel), expected, rtol=1e-5, atol=1e-6)


def test_lora_trains_only_the_targeted_blocks_and_round_trips(tmp_path):
    model = stock_model(ExtraVariableLSTM(UNITS, target_gates=["forget"], rank=2, trainable_base=False, name="lstm"))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    cell = model.get_layer("lstm").cell
    w0 = numpy(cell.base_kernel)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    delta = numpy(cell.extra_value())
    assert np.abs(delta[:, UNITS : 2 * UNITS]).sum() > 0
    assert not delta[:, :UNITS].any() and not delta[:, 2 * UNITS :].any()
    np.testing.assert_array_equal(numpy(cell.base_kernel), w0)
    model.save(tmp_path / "lora.keras")
    loaded = keras.models.load_model(tmp_path / "lora.keras")
    assert type(loaded.get_layer("lstm")) is ExtraVariableLSTM and loaded.get_layer("lstm").cell.rank == 2
    np.testing.assert_array_equal(numpy(loaded(X)), numpy(model(X)))


@pytest.mark.parametrize(
    "extra_args",
    [
        {},
        {"rank": 2, "trainable_base": False},
        {"mode": "gain", "target_gates": ["forget"]},
        {"matrix": "recurrent_kernel"},
    ],
    ids=["full", "lora", "gain", "recurrent"],
)
def test_from_lstm_keeps_a_pretrained_layers_outputs(extra_args):
    stock = keras.layers.LSTM(UNITS, return_sequences=True, name="pretrained")
    stock(X[:1])
    stock.cell.bias.assign(np.random.default_rng(2).normal(size=4 * UNITS).astype("float32"))
    ours = ExtraVariableLSTM.from_lstm(stock, **extra_args)
    assert type(ours) is ExtraVariableLSTM and ours.name == "pretrained" and ours.return_sequences
    for name in ("kernel", "recurrent_kernel"):
        np.testing.assert_array_equal(numpy(getattr(ours.cell, f"base_{name}")), numpy(getattr(stock.cell, name)))
    np.testing.assert_array_equal(numpy(ours.cell.bias), numpy(stock.cell.bias))
    np.testing.assert_array_equal(numpy(ours(X)), numpy(stock(X)))
    if extra_args.get("trainable_base") is False:
        assert not ours.cell.base_kernel.trainable


def test_from_lstm_refuses_what_it_cannot_copy():
    with pytest.raises(ValueError, match="not built"):
        ExtraVariableLSTM.from_lstm(keras.layers.LSTM(UNITS))
    with pytest.raises(ValueError, match=r"keras\.layers\.LSTM"):
        ExtraVariableLSTM.from_lstm(keras.layers.GRU(UNITS))


def test_a_stock_weights_file_reaches_the_new_class_through_clone_model(tmp_path):
    pretrained = stock_model(keras.layers.LSTM(UNITS, name="lstm"))
    pretrained.compile(optimizer="adam", loss="mse")
    pretrained.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    pretrained.save_weights(tmp_path / "stock.weights.h5")
    # Keras addresses the file's variables by class name: it does not load into the new class, and says so.
    with pytest.raises(ValueError, match="could not be loaded"):
        stock_model(ExtraVariableLSTM(UNITS, name="lstm")).load_weights(tmp_path / "stock.weights.h5")
    # The documented route: load into the stock architecture, then convert.
    stock = stock_model(keras.layers.LSTM(UNITS, name="lstm"))
    stock.load_weights(tmp_path / "stock.weights.h5")
    tuned = keras.models.clone_model(
        stock,
        clone_function=lambda layer: (
            ExtraVariableLSTM.from_lstm(layer, rank=2, trainable_base=False)
            if isinstance(layer, keras.layers.LSTM)
            else layer
        ),
    )
    assert type(tuned.get_layer("lstm")) is ExtraVariableLSTM
    np.testing.assert_array_equal(numpy(tuned(X)), numpy(pretrained(X)))


def test_full_rank_delta_under_adam_is_twice_the_learning_rate():
    """W + Δ (Δ₀ = 0, full mask, no L2) under Adam(lr) = W under Adam(2·lr), step for step, on those entries."""
    rng = np.random.default_rng(3)
    start = {
        "kernel": rng.normal(scale=0.3, size=(FEATURES, 4 * UNITS)),
        "recurrent_kernel": rng.normal(scale=0.3, size=(UNITS, 4 * UNITS)),
        "bias": rng.normal(scale=0.1, size=4 * UNITS),
    }
    steps, lr = 40, 0.01

    def train(layer: keras.layers.LSTM, rate: float) -> np.ndarray:
        model = stock_model(layer)
        cell = layer.cell
        weights = {
            "kernel": cell.base_kernel if isinstance(cell, ExtraVariableLSTMCell) else cell.kernel,
            "recurrent_kernel": cell.recurrent_kernel,
            "bias": cell.bias,
        }
        for name, variable in weights.items():
            variable.assign(start[name].astype("float32"))
        # Only the kernel's entries move: the claim is about them (every other weight would keep the plain rate).
        weights["recurrent_kernel"].trainable = weights["bias"].trainable = False
        head = model.get_layer("head")
        head.set_weights([np.full((UNITS, 1), 0.1, "float32"), np.zeros(1, "float32")])
        head.trainable = False
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="mse")
        model.fit(X, Y, batch_size=8, epochs=steps // 4, verbose=0, shuffle=False)  # 4 steps an epoch
        return numpy(cell.kernel)

    extra = train(ExtraVariableLSTM(UNITS), lr)
    twice = train(keras.layers.LSTM(UNITS), 2 * lr)
    once = train(keras.layers.LSTM(UNITS), lr)
    kernel = start["kernel"]
    gap = float(np.max(np.abs(extra - twice)))
    moved = float(np.max(np.abs(twice - kernel)))
    print(f"Adam 2x-rate equivalence after {steps} steps: max |W+Δ − W(2·lr)| = {gap:.3g} (W moved {moved:.3g})")
    assert moved > 0.1 and gap < 1e-4
    assert float(np.max(np.abs(extra - once))) > 100 * gap  # at the same rate they differ


# ---------------------------------------------------------------------------------------------------------------
# the same tests on JAX


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the in-process run is the TensorFlow one")
def test_layer_tests_and_doctests_pass_on_jax():
    pytest.importorskip("jax")
    command = [
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        __file__,
        "-k",
        f"not {ON_JAX_SUBPROCESS}",
        "--doctest-modules",
        str(PACKAGE),
    ]
    start = time.perf_counter()
    done = run_python(*command, env={"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}, timeout=300)
    seconds = time.perf_counter() - start
    print(f"JAX subprocess: {seconds:.1f} s")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\d+ passed", done.stdout) and " failed" not in done.stdout
