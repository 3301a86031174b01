"""Influence strategies: every influence lands exactly where configured, is proven by ``verify``, and survives.

Models are tiny (3 input features ≠ 16 units, 8 steps) and built at most once per configuration
(``build`` caches them per module), so the file stays within a few tens of seconds on two CPU cores.
"""

from __future__ import annotations

import inspect
import json
import math

import keras
import numpy as np
import pytest

import lstm_influence as li
from lstm_influence.config.schema import ConfigError
from lstm_influence.datasets.base import Dataset
from lstm_influence.layers import ChronoBias, ExtraVariableLSTM
from lstm_influence.strategies import Strategy, make_strategy, strategy_class, verify_influence
from lstm_influence.training.trainable import build_model
from tests.helpers import CONF

INPUT_DIM, UNITS, SEQ_LEN = 3, 16, 8
# jit off: XLA compilation would dominate these few-step fits (one test trains with XLA on purpose).
COMMON = [f"model.units={UNITS}", "train.jit_compile=false", "train.learning_rate=0.05", "seed=3"]
STRATEGY_CONF = CONF / "strategy"


def make_data() -> Dataset:
    """A 3-feature regression task: y = sum over time of feature 0 minus feature 2 (needs memory)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, SEQ_LEN, INPUT_DIM)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) - x[:, :, 2].sum(axis=1))[:, None].astype("float32") / SEQ_LEN
    return Dataset(
        name="synthetic",
        train=(x, y),
        val=(x[:16], y[:16]),
        test=(x[:16], y[:16]),
        loss="mse",
        baseline_loss={"val": 1.0, "test": 1.0},
        feature_names=["a", "b", "c"],
    )


DATA = make_data()
_CACHE: dict[tuple[str, ...], tuple] = {}


def build(*overrides: str, fresh: bool = False):
    """``(cfg, strategy, model)`` for these overrides on top of :data:`COMMON`, cached unless ``fresh``."""
    key = tuple(overrides)
    if fresh or key not in _CACHE:
        cfg = li.compose([*COMMON, *overrides])
        strategy = make_strategy(cfg, input_dim=INPUT_DIM, units=UNITS, seq_len=SEQ_LEN)
        model = build_model(cfg, DATA, strategy)
        if fresh:
            return cfg, strategy, model
        _CACHE[key] = (cfg, strategy, model)
    return _CACHE[key]


def weights(model) -> dict[str, np.ndarray]:
    cell = model.get_layer("lstm").cell
    return {m: keras.ops.convert_to_numpy(getattr(cell, m)) for m in ("kernel", "recurrent_kernel", "bias")}


def fit_steps(model, steps: int = 5) -> None:
    x, y = DATA.train
    model.fit(x[: 8 * steps], y[: 8 * steps], batch_size=8, epochs=1, verbose=0, shuffle=False)


def targets_override(*targets: str) -> str:
    return "strategy.targets=[" + ", ".join(targets) + "]"


# ---------------------------------------------------------------------------------------------------------------
# registry and configs


BUILT_INS = sorted(p.stem for p in STRATEGY_CONF.glob("*.yaml"))


def test_every_config_names_its_class_in_the_module_of_the_same_name():
    assert BUILT_INS == ["baseline", "bias_init", "custom_init", "extra_variable", "input_transform"]
    for name in BUILT_INS:
        cfg = li.compose([f"strategy={name}"])
        cls = strategy_class(cfg.strategy)
        assert cfg.strategy.name == name and issubclass(cls, Strategy)
        assert cfg.strategy._target_ == f"{cls.__module__}.{cls.__name__}"
        assert inspect.getmodule(cls).__name__ == f"lstm_influence.strategies.{name}"


@pytest.mark.parametrize("name", BUILT_INS)
def test_the_class_signature_is_the_schema_and_its_defaults_are_the_yaml_values(name):
    from lstm_influence.config import plugins
    from lstm_influence.strategies import SUPPLIED

    node = li.compose([f"strategy={name}"]).strategy
    params, takes_more = plugins.parameters(strategy_class(node), stop_at=Strategy)
    assert not takes_more  # the chain ends at Strategy.__init__, which takes no **kwargs: no key slips through
    assert set(node) - {"_target_"} == set(params) - set(SUPPLIED)
    # Where a setting has a plain default, the YAML states the same value (custom_init's example target and the
    # YAML's explicit gate lists are the exceptions the None defaults stand for).
    for key, param in params.items():
        if key in node and param.default is not None and param.default is not param.empty and key != "name":
            assert node[key] == param.default, key


@pytest.mark.parametrize("name", BUILT_INS)
def test_default_configs_build_and_verify(name):
    cfg, strategy, model = build(f"strategy={name}")
    report = strategy.verify(model)
    assert report["passed"], [c for c in report["checks"] if not c["passed"]]
    assert report["strategy"] == name
    assert all({"name", "passed", "asked", "found"} <= set(c) for c in report["checks"])
    json.dumps(report)
    # The public entry point rebuilds the strategy from (model, cfg) alone and agrees.
    public = li.verify_influence(model, cfg)
    assert public["passed"] and len(public["checks"]) == len(report["checks"])


# ---------------------------------------------------------------------------------------------------------------
# custom_init


class ArticleInitializer(keras.initializers.Initializer):
    """The seed article's initializer, as published: writes only when ``shape[1] == shape[0] * 4``."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        w = np.array(keras.initializers.GlorotUniform(seed=1)(shape, dtype=dtype))
        input_size, num_gates = shape[0], 4
        if shape[1] == input_size * num_gates:  # true only when units == input_dim
            units = shape[1] // 4
            w[:, units : 2 * units] = self.value
        return w


def test_article_regression_writes_for_input_dim_not_units():
    # The article's own test misses this layer (3 features, 16 units) ...
    article = ArticleInitializer(0.5)((INPUT_DIM, 4 * UNITS))
    assert not np.any(article[:, UNITS : 2 * UNITS] == 0.5)
    assert np.all(ArticleInitializer(0.5)((UNITS, 4 * UNITS))[:, UNITS : 2 * UNITS] == 0.5)  # only when equal
    # ... ours writes there, and only there.
    _, _, model = build(
        "strategy=custom_init", targets_override("{matrix: kernel, gate: forget, op: constant, value: 0.5}")
    )
    kernel = weights(model)["kernel"]
    assert kernel.shape == (INPUT_DIM, 4 * UNITS)
    assert np.all(kernel[:, UNITS : 2 * UNITS] == 0.5)
    _, _, plain = build("strategy=baseline")
    untouched = np.r_[0:UNITS, 2 * UNITS : 4 * UNITS]
    np.testing.assert_array_equal(kernel[:, untouched], weights(plain)["kernel"][:, untouched])


def test_custom_init_without_targets_is_the_baseline_weight_for_weight():
    _, _, plain = build("strategy=baseline")
    _, _, custom = build("strategy=custom_init", "strategy.targets=[]")
    assert len(plain.weights) == len(custom.weights)
    for a, b in zip(plain.weights, custom.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


# One target per gate and per matrix, every value shape, and an overlap (the last two touch bias[63]).
TARGETS = (
    "{{matrix: kernel, gate: input, units: [0, 5], features: [2], op: {op}, value: 0.5}}",
    "{{matrix: kernel, gate: forget, op: {op}, value: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]}}",
    "{{matrix: recurrent_kernel, gate: cell, units: [3], op: {op}, "
    "value: [[1], [2], [3], [4], [5], [6], [7], [8], [9], [10], [11], [12], [13], [14], [15], [16]]}}",
    "{{matrix: bias, gate: output, op: {op}, value: 2.0}}",
    "{{matrix: bias, gate: all, units: [15], op: {op}, value: [1, 2, 3, 4]}}",
)


@pytest.mark.parametrize("op", ["constant", "add", "scale"])
def test_custom_init_exact_values_in_exact_blocks(op):
    _, strategy, model = build("strategy=custom_init", targets_override(*(t.format(op=op) for t in TARGETS)))
    _, _, plain = build("strategy=baseline")
    base = weights(plain)  # the base initialisers' draws (Keras defaults, same seed)
    expected = {m: v.copy() for m, v in base.items()}

    def apply(array, index, value):
        value = np.asarray(value, dtype=np.float32)
        if op == "constant":
            array[index] = value
        elif op == "add":
            array[index] = array[index] + value
        else:
            array[index] = array[index] * value

    apply(expected["kernel"], (2, [0, 5]), 0.5)
    apply(expected["kernel"], (slice(None), slice(16, 32)), np.arange(16))
    apply(expected["recurrent_kernel"], (slice(None), 32 + 3), np.arange(1, 17))
    apply(expected["bias"], slice(48, 64), 2.0)
    apply(expected["bias"], [15, 31, 47, 63], [1, 2, 3, 4])
    found = weights(model)
    for matrix in expected:
        np.testing.assert_allclose(found[matrix], expected[matrix], rtol=1e-6, atol=0, err_msg=matrix)
    if op == "constant":  # exact, and the later target wins on the overlap
        assert found["bias"][63] == 4.0 and found["recurrent_kernel"][15, 35] == 16.0
    assert strategy.verify(model)["passed"]


def test_keras_unit_forget_bias_overrides_the_forget_block_of_a_bias_initializer():
    # The Keras fact behind the seed article's second bug: with the default unit_forget_bias=True, a constant
    # bias initializer reaches every block but the forget block, which is set to exactly 1.
    layer = keras.layers.LSTM(4, bias_initializer=keras.initializers.Constant(3.0))
    layer.build((None, SEQ_LEN, INPUT_DIM))
    np.testing.assert_array_equal(layer.cell.bias.numpy(), np.repeat(np.float32([3, 1, 3, 3]), 4))


def test_custom_init_bias_targets_are_not_overridden_by_unit_forget_bias():
    _, _, model = build(
        "strategy=custom_init", targets_override("{matrix: bias, gate: forget, op: constant, value: 3.0}")
    )
    cell = model.get_layer("lstm").cell
    assert not cell.unit_forget_bias
    bias = weights(model)["bias"]
    assert np.all(bias[16:32] == 3.0) and np.all(bias[:16] == 0) and np.all(bias[32:] == 0)


def test_custom_init_add_on_the_default_forget_bias():
    _, _, model = build("strategy=custom_init")  # the YAML default: forget bias 1 (Keras) + 1
    assert np.all(weights(model)["bias"][16:32] == 2.0)


def test_custom_init_base_initializer_is_configurable():
    _, strategy, model = build("strategy=custom_init", "strategy.targets=[]", "strategy.base_initializer.kernel=zeros")
    assert np.all(weights(model)["kernel"] == 0.0)
    assert strategy.verify(model)["passed"]


# ---------------------------------------------------------------------------------------------------------------
# bias_init


@pytest.mark.parametrize(
    ("preset", "blocks"),
    [
        ("keras_default", (0, 1, 0, 0)),
        ("zeros", (0, 0, 0, 0)),
        ("forget_one", (0, 1, 0, 0)),
        ("forget_two", (0, 2, 0, 0)),
    ],
)
def test_bias_presets_write_the_whole_vector(preset, blocks):
    _, strategy, model = build("strategy=bias_init", f"strategy.preset={preset}")
    bias = weights(model)["bias"]
    np.testing.assert_array_equal(bias, np.repeat(np.asarray(blocks, dtype=np.float32), UNITS))
    assert model.get_layer("lstm").cell.unit_forget_bias == (preset == "keras_default")
    assert strategy.verify(model)["passed"]


def test_bias_custom_gates():
    _, _, model = build(
        "strategy=bias_init",
        "strategy.preset=custom",
        "strategy.gates={input: -1.5, forget: 3.0, cell: 0.25, output: 0.5}",
    )
    np.testing.assert_array_equal(weights(model)["bias"], np.repeat(np.float32([-1.5, 3.0, 0.25, 0.5]), UNITS))


@pytest.mark.parametrize("t_max", [None, 100.0, 2.0])
def test_chrono_range_and_input_is_minus_forget(t_max):
    overrides = ["strategy=bias_init", "strategy.preset=chrono"]
    if t_max is not None:
        overrides.append(f"strategy.t_max={t_max}")
    _, strategy, model = build(*overrides)
    bias = weights(model)["bias"]
    b_i, b_f, b_c, b_o = np.split(bias, 4)
    upper = math.log((t_max or SEQ_LEN) - 1)
    assert np.all(b_f >= 0) and np.all(b_f <= upper + 1e-6)
    np.testing.assert_array_equal(b_i, -b_f)
    assert np.all(b_c == 0) and np.all(b_o == 0)
    if t_max != 2.0:
        assert b_f.std() > 0.05 * upper  # a spread of time scales, not one constant
    assert strategy.verify(model)["passed"]


def test_chrono_draw_follows_the_seed_and_only_the_seed():
    draw = lambda seed: keras.ops.convert_to_numpy(ChronoBias(16, 50, seed=seed)((64,)))  # noqa: E731
    np.testing.assert_array_equal(draw(1), draw(1))
    assert not np.array_equal(draw(1), draw(2))
    # Chrono leaves every other weight as the baseline's of the same seed (paired comparisons).
    _, _, chrono = build("strategy=bias_init", "strategy.preset=chrono")
    _, _, plain = build("strategy=baseline")
    for matrix in ("kernel", "recurrent_kernel"):
        np.testing.assert_array_equal(weights(chrono)[matrix], weights(plain)[matrix])
    np.testing.assert_array_equal(chrono.get_layer("head").kernel.numpy(), plain.get_layer("head").kernel.numpy())


def test_uniform_preset_spreads_forget_activations_and_ties_the_input_gate():
    _, strategy, model = build("strategy=bias_init", "strategy.preset=uniform")
    assert not model.get_layer("lstm").cell.unit_forget_bias
    b_i, b_f, b_c, b_o = np.split(weights(model)["bias"], 4)
    forget = 1.0 / (1.0 + np.exp(-b_f.astype(np.float64)))
    assert forget.min() >= 1 / UNITS - 1e-6 and forget.max() <= 1 - 1 / UNITS + 1e-6 and forget.std() > 0.1
    np.testing.assert_array_equal(b_i, -b_f)
    assert not b_c.any() and not b_o.any()
    report = strategy.verify(model)
    assert report["passed"] and any("logit U[1/units" in c["name"] for c in report["checks"])
    # The kernels stay the baseline's of the same seed.
    _, _, plain = build("strategy=baseline")
    np.testing.assert_array_equal(weights(model)["kernel"], weights(plain)["kernel"])


def test_uniform_stretched_maps_uniforms_draw_onto_the_horizons_interval():
    _, strategy, model = build("strategy=bias_init", "strategy.preset=uniform_stretched", "strategy.t_max=40")
    _, _, plain = build("strategy=bias_init", "strategy.preset=uniform")
    b_i, b_f, b_c, b_o = np.split(weights(model)["bias"], 4)
    forget = 1.0 / (1.0 + np.exp(-b_f.astype(np.float64)))
    assert forget.min() >= 1 / 40 - 1e-6 and forget.max() <= 1 - 1 / 40 + 1e-6
    np.testing.assert_array_equal(b_i, -b_f)
    assert not b_c.any() and not b_o.any()
    # the same uniforms as uniform's, mapped affinely from (1/d, 1 - 1/d) onto (1/40, 1 - 1/40)
    plain_forget = 1.0 / (1.0 + np.exp(-np.split(weights(plain)["bias"], 4)[1].astype(np.float64)))
    unit_interval = lambda f, reach: (f - 1 / reach) / (1 - 2 / reach)  # noqa: E731
    np.testing.assert_allclose(unit_interval(forget, 40), unit_interval(plain_forget, UNITS), atol=1e-5)
    report = strategy.verify(model)
    assert report["passed"] and any("logit U[1/t_max" in c["name"] for c in report["checks"])
    # null t_max is the task's horizon, as for chrono
    _, by_horizon, _ = build("strategy=bias_init", "strategy.preset=uniform_stretched")
    assert by_horizon.t_max == SEQ_LEN
    with pytest.raises(ConfigError, match=r"strategy.t_max=2.*uniform_stretched needs t_max > 2"):
        make_strategy(
            li.compose([*COMMON, "strategy=bias_init", "strategy.preset=uniform_stretched", "strategy.t_max=2"]),
            input_dim=INPUT_DIM,
            units=UNITS,
            seq_len=SEQ_LEN,
        )


def test_extra_variable_lora_rank_builds_verifies_and_trains():
    _, strategy, model = build(
        "strategy=extra_variable",
        "strategy.rank=2",
        "strategy.trainable_base=false",
        "strategy.target_gates=[forget]",
        fresh=True,
    )
    cell = model.get_layer("lstm").cell
    assert [w.name for w in cell.extra_weights] == ["kernel_lora_a", "kernel_lora_b"] and cell.rank == 2
    report = strategy.verify(model)
    assert report["passed"], [c for c in report["checks"] if not c["passed"]]
    fit_steps(model)
    after, metrics = strategy.after_training(model, report)
    assert after["after"]["passed"], after["after"]["checks"]
    assert metrics["influence/extra_norm_ratio"] > 0 and "influence/retention" not in metrics


# ---------------------------------------------------------------------------------------------------------------
# input_transform


def test_fixed_input_transform_maps_each_feature():
    _, strategy, model = build(
        "strategy=input_transform", "strategy.scale={1: 5.0}", "strategy.shift=-0.5", "strategy.learned=false"
    )
    layer = model.get_layer("input_transform")
    assert layer.weights == [] and model.get_layer("lstm").input is layer.output
    x = np.ones((1, 2, INPUT_DIM), dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x))[0, 0], [0.5, 4.5, 0.5])
    report = strategy.verify(model)
    assert report["passed"]
    _, metrics = strategy.after_training(model, report)
    assert metrics == {}  # a fixed transform has nothing to retain


def test_input_transform_negative_index_is_the_last_feature():
    _, strategy, model = build("strategy=input_transform", "strategy.scale={-1: 2.0}", "strategy.learned=false")
    np.testing.assert_array_equal(strategy.scale, [1.0, 1.0, 2.0])
    x = np.ones((1, 2, INPUT_DIM), dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.get_layer("input_transform")(x))[0, 0], [1.0, 1.0, 2.0])
    assert strategy.verify(model)["passed"]


def test_learned_input_transform_has_trainable_gain_and_offset():
    _, strategy, model = build("strategy=input_transform", "strategy.scale=[1.0, 2.0, 3.0]", "strategy.learned=true")
    layer = model.get_layer("input_transform")
    trainable = [w.path for w in model.trainable_weights]
    assert "input_transform/gain" in trainable and "input_transform/offset" in trainable
    np.testing.assert_array_equal(layer.gain.numpy(), [1.0, 2.0, 3.0])
    assert strategy.verify(model)["passed"]


# ---------------------------------------------------------------------------------------------------------------
# extra_variable


def test_extra_variable_with_zero_init_is_function_identical_to_the_baseline():
    _, _, plain = build("strategy=baseline")
    _, _, extra = build("strategy=extra_variable")
    x = DATA.val[0]
    np.testing.assert_array_equal(plain.predict(x, verbose=0), extra.predict(x, verbose=0))


def test_extra_variable_is_a_named_trainable_weight_that_gets_gradient_only_on_its_gates():
    import tensorflow as tf

    _, _, model = build("strategy=extra_variable", "strategy.target_gates=[forget]", "strategy.init=0.1")
    cell = model.get_layer("lstm").cell
    delta = cell.extra
    assert delta.name == "kernel_delta" and delta.path == "lstm/lstm_cell/kernel_delta"
    assert any(w is delta for w in model.trainable_weights)
    x, y = DATA.train
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y[:16], model(x[:16], training=True))
    grad = tape.gradient(loss, delta).numpy()
    assert np.abs(grad[:, 16:32]).sum() > 0
    assert np.all(grad[:, :16] == 0) and np.all(grad[:, 32:] == 0)
    # The effective kernel is W + Δ on the forget block only.
    effective = keras.ops.convert_to_numpy(cell.kernel)
    np.testing.assert_allclose(effective[:, 16:32], cell.base_kernel.numpy()[:, 16:32] + 0.1, rtol=1e-6)
    np.testing.assert_array_equal(effective[:, :16], cell.base_kernel.numpy()[:, :16])


def test_effective_kernel_is_formed_once_per_call_not_per_step(monkeypatch):
    _, _, model = build("strategy=extra_variable", "strategy.target_gates=[forget]", "strategy.init=0.1")
    cell = model.get_layer("lstm").cell
    calls = []
    original = cell.effective_matrix
    monkeypatch.setattr(cell, "effective_matrix", lambda: calls.append(1) or original())
    model.get_layer("lstm")(DATA.val[0][:2])  # eager, CPU path: the cell runs once per time step
    assert len(calls) == 1


def test_extra_variable_training_l2_and_frozen_base():
    _, strategy, model = build(
        "strategy=extra_variable",
        "strategy.target_gates=[input, cell]",
        "strategy.trainable_base=false",
        "strategy.l2=0.01",
        fresh=True,
    )
    cell = model.get_layer("lstm").cell
    assert not any(w is cell.base_kernel for w in model.trainable_weights)
    delta = cell.extra
    delta.assign(np.full(delta.shape, 0.0, dtype="float32") + 0.5 * cell.column_mask)
    np.testing.assert_allclose(float(sum(model.losses)), 0.01 * (0.5**2) * INPUT_DIM * 2 * UNITS, rtol=1e-5)
    delta.assign(np.zeros(delta.shape, dtype="float32"))
    report = strategy.verify(model)
    assert report["passed"]
    w0 = cell.base_kernel.numpy().copy()
    fit_steps(model)
    d = delta.numpy()
    assert np.abs(d[:, 0:16]).sum() > 0 and np.abs(d[:, 32:48]).sum() > 0
    assert np.all(d[:, 16:32] == 0) and np.all(d[:, 48:] == 0)
    np.testing.assert_array_equal(cell.base_kernel.numpy(), w0)
    after, metrics = strategy.after_training(model, report)
    assert after["after"]["passed"], after["after"]["checks"]
    assert metrics["influence/extra_norm_ratio"] > 0 and "influence/retention" not in metrics


@pytest.mark.parametrize(
    ("overrides", "name", "shape"),
    [
        (("strategy.mode=gain",), "kernel_gain", (4 * UNITS,)),
        (("strategy.matrix=recurrent_kernel",), "recurrent_kernel_delta", (UNITS, 4 * UNITS)),
        (("strategy.mode=gain", "strategy.matrix=recurrent_kernel"), "recurrent_kernel_gain", (4 * UNITS,)),
    ],
)
def test_extra_variable_modes_and_matrices(overrides, name, shape):
    _, strategy, model = build("strategy=extra_variable", "strategy.init=0.2", *overrides)
    cell = model.get_layer("lstm").cell
    assert cell.extra.name == name and tuple(cell.extra.shape) == shape
    matrix = "recurrent_kernel" if "recurrent" in name else "kernel"
    base = getattr(cell, f"base_{matrix}").numpy()
    expected = base * 1.2 if "gain" in name else base + 0.2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(getattr(cell, matrix)), expected, rtol=1e-6)
    assert strategy.verify(model)["passed"]


def test_extra_variable_random_prior_is_seeded_and_masked():
    _, strategy, model = build(
        "strategy=extra_variable", "strategy.init=random_normal", "strategy.target_gates=[output]"
    )
    d = model.get_layer("lstm").cell.extra.numpy()
    assert np.all(d[:, :48] == 0) and d[:, 48:].std() > 0
    assert strategy.verify(model)["passed"]


def test_extra_variable_save_load_round_trip(tmp_path):
    _, _, model = build("strategy=extra_variable", "strategy.target_gates=[forget]", "strategy.init=0.3", fresh=True)
    fit_steps(model, steps=2)  # a trained variable (and a built optimiser) is what must survive
    path = tmp_path / "x.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("lstm")
    assert type(layer) is ExtraVariableLSTM and layer.cell.target_gates == ("forget",)
    x = DATA.val[0]
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    np.testing.assert_array_equal(layer.cell.extra.numpy(), model.get_layer("lstm").cell.extra.numpy())
    assert not np.all(layer.cell.extra.numpy()[:, 16:32] == 0.3)


def test_extra_variable_trains_under_xla():
    _, strategy, model = build("strategy=extra_variable", "train.jit_compile=true", fresh=True)
    report = strategy.verify(model)
    fit_steps(model, steps=2)
    assert np.abs(model.get_layer("lstm").cell.extra.numpy()).sum() > 0
    assert strategy.after_training(model, report)[0]["after"]["passed"]


def test_extra_variable_keeps_the_cudnn_conditions():
    _, strategy, model = build("strategy=extra_variable")
    check = next(c for c in strategy.verify(model)["checks"] if c["name"] == "fused cuDNN path still eligible")
    assert check["passed"] and all(check["found"].values())


# ---------------------------------------------------------------------------------------------------------------
# every strategy's model saves and loads (serialisable initialisers and layers)


@pytest.mark.parametrize(
    "overrides",
    [
        ("strategy=custom_init", targets_override("{matrix: kernel, gate: cell, features: [0], op: add, value: 1}")),
        ("strategy=bias_init", "strategy.preset=chrono"),
        ("strategy=bias_init", "strategy.preset=custom", "strategy.gates.output=-1"),
        ("strategy=input_transform", "strategy.scale={2: 3.0}", "strategy.learned=false"),
        ("strategy=input_transform", "strategy.shift=0.5", "strategy.learned=true"),
        ("strategy=extra_variable", "strategy.mode=gain", "strategy.init=random_normal"),
        ("strategy=extra_variable", "strategy.rank=2"),
        ("strategy=bias_init", "strategy.preset=uniform"),
    ],
)
def test_models_save_and_load_with_identical_predictions_and_still_verify(overrides, tmp_path):
    _, strategy, model = build(*overrides)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    x = DATA.val[0]
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert strategy.verify(loaded)["passed"]


# ---------------------------------------------------------------------------------------------------------------
# verify fails on tampered weights; retention


def _tamper_bias(model):
    bias = model.get_layer("lstm").cell.bias
    bias.assign(bias.numpy() + 0.25)


def _tamper_kernel_forget(model):
    kernel = model.get_layer("lstm").cell.kernel
    w = kernel.numpy()
    w[:, 20] += 1.0
    kernel.assign(w)


def _tamper_untouched_kernel(model):
    cell = model.get_layer("lstm").cell
    w = cell.kernel.numpy()
    w[0, 0] += 1.0
    cell.kernel.assign(w)


def _tamper_transform(model):
    model.get_layer("input_transform").gain.assign([1.0, 1.0, 9.0])


def _tamper_delta_outside(model):
    d = model.get_layer("lstm").cell.extra
    value = d.numpy()
    value[0, 0] = 1.0
    d.assign(value)


@pytest.mark.parametrize(
    ("overrides", "tamper"),
    [
        (("strategy=baseline",), _tamper_bias),
        (
            ("strategy=custom_init", targets_override("{matrix: kernel, gate: forget, op: add, value: 1.0}")),
            _tamper_kernel_forget,
        ),
        (("strategy=custom_init",), _tamper_untouched_kernel),
        (("strategy=bias_init", "strategy.preset=forget_two"), _tamper_bias),
        (("strategy=bias_init", "strategy.preset=chrono"), _tamper_bias),
        (("strategy=bias_init", "strategy.preset=uniform"), _tamper_bias),
        (("strategy=bias_init", "strategy.preset=uniform_stretched"), _tamper_bias),
        (("strategy=input_transform", "strategy.learned=true"), _tamper_transform),
        (("strategy=extra_variable", "strategy.target_gates=[forget]"), _tamper_delta_outside),
    ],
)
def test_verify_fails_when_weights_are_tampered_with(overrides, tamper):
    cfg, strategy, model = build(*overrides, fresh=True)
    assert strategy.verify(model)["passed"]
    tamper(model)
    report = strategy.verify(model)
    assert not report["passed"]
    assert not verify_influence(model, cfg)["passed"]
    json.dumps(report)


def test_verify_fails_on_a_model_built_without_the_strategy():
    cfg = li.compose([*COMMON, "strategy=bias_init", "strategy.preset=forget_two"])
    _, _, plain = build("strategy=baseline")
    assert not verify_influence(plain, cfg)["passed"]


@pytest.mark.parametrize(
    "overrides",
    [
        ("strategy=custom_init", targets_override("{matrix: recurrent_kernel, gate: forget, op: scale, value: 3.0}")),
        ("strategy=bias_init", "strategy.preset=chrono"),
        ("strategy=bias_init", "strategy.preset=uniform"),
        ("strategy=input_transform", "strategy.scale=2.0", "strategy.shift=0.5", "strategy.learned=true"),
        ("strategy=extra_variable", "strategy.init=0.5"),
    ],
)
def test_retention_is_one_at_init_and_moves_with_training(overrides):
    _, strategy, model = build(*overrides, fresh=True)
    before = strategy.verify(model)
    assert before["passed"]
    _, metrics = strategy.after_training(model, before)
    assert metrics["influence/retention"] == pytest.approx(1.0, abs=1e-6)
    fit_steps(model)
    report, metrics = strategy.after_training(model, before)
    assert math.isfinite(metrics["influence/retention"])
    assert metrics["influence/retention"] != pytest.approx(1.0, abs=1e-6)
    assert report["stage"] == "after" and report["after"]["retention"] == metrics["influence/retention"]
    json.dumps(report)


def test_retention_works_from_a_fresh_strategy_instance():
    cfg, strategy, model = build("strategy=bias_init", "strategy.preset=forget_two", fresh=True)
    before = strategy.verify(model)
    fresh = make_strategy(cfg, input_dim=INPUT_DIM, units=UNITS, seq_len=SEQ_LEN)  # never saw verify
    assert fresh.after_training(model, before)[1]["influence/retention"] == pytest.approx(1.0)


def test_baseline_and_keras_default_inject_nothing():
    for overrides in (("strategy=baseline",), ("strategy=bias_init", "strategy.preset=keras_default")):
        _, strategy, model = build(*overrides)
        _, metrics = strategy.after_training(model, strategy.verify(model))
        assert metrics == {}


# ---------------------------------------------------------------------------------------------------------------
# bad configurations fail before anything is built


BAD = [
    (
        ["strategy=custom_init", targets_override("{matrix: kernel, gate: forget, units: [16], op: add, value: 1}")],
        ["units", "16", "0..15"],
    ),
    (
        ["strategy=custom_init", targets_override("{matrix: kernel, gate: forget, features: [3], op: add, value: 1}")],
        ["features", "3", "0..2"],
    ),
    (
        ["strategy=custom_init", targets_override("{matrix: bias, gate: forget, features: [0], op: add, value: 1}")],
        ["features", "matrix=kernel"],
    ),
    (
        ["strategy=custom_init", targets_override("{matrix: bias, gate: forget, op: constant, value: [1, 2, 3]}")],
        ["value", "[3]", "16"],
    ),
    (
        ["strategy=custom_init", targets_override("{matrix: bias, gate: forget, op: constant, value: nan}")],
        ["value", "finite"],
    ),
    (
        ["strategy=custom_init", "strategy.base_initializer.kernel=glorot_uniformm"],
        ["base_initializer.kernel", "glorot_uniformm"],
    ),
    (["strategy=bias_init", "strategy.preset=chrono", "strategy.t_max=1.5"], ["t_max", "1.5", ">= 2"]),
    (["strategy=bias_init", "strategy.preset=custom", "strategy.gates.forget=inf"], ["gates.forget", "finite"]),
    (
        ["strategy=bias_init", "strategy.preset=custom", "+strategy.gates.forgets=1"],
        ["forgets", "input, forget, cell, output"],
    ),
    (["strategy=input_transform", "strategy.scale={5: 2.0}"], ["strategy.scale", "5", "0..2"]),
    (["strategy=input_transform", "strategy.shift=nan"], ["strategy.shift", "finite"]),
    (["strategy=input_transform", "strategy.scale=[1.0, 2.0]"], ["strategy.scale", "3"]),
    (["strategy=extra_variable", "strategy.l2=-1"], ["l2", "-1", ">= 0"]),
    (["strategy=extra_variable", "strategy.init=nan"], ["init", "finite"]),
    (["strategy=extra_variable", "strategy.init=no_such_init"], ["init", "no_such_init"]),
    (["strategy=extra_variable", "strategy.mode=gain", "strategy.init=-1"], ["strategy.init", "-1", "init > -1"]),
    (["strategy=extra_variable", "strategy.rank=2", "strategy.mode=gain"], ["strategy.rank", "additive"]),
    (["strategy=extra_variable", "strategy.rank=2", "strategy.init=0.5"], ["strategy.rank", "init must be 0"]),
    (["strategy=extra_variable", "strategy.rank=0"], ["strategy.rank", "positive integer"]),
    (["strategy=extra_variable", "strategy.alpha=2"], ["strategy.alpha", "rank"]),
    (["strategy=input_transform", "strategy.scale={-4: 2.0}"], ["strategy.scale", "-4", "-3..-1"]),
    (["strategy=bias_init", "strategy.preset=uniform", "model.units=1"], ["uniform", "units >= 2"]),
]

# Closed choices are typed in the classes' signatures: refused before anything is built, naming the key, the value and
# the valid values.
CHOICE_BAD = [
    (
        ["strategy=custom_init", targets_override("{matrix: kernal, gate: forget, op: add, value: 1}")],
        ["matrix", "kernal", "recurrent_kernel"],
    ),
    (
        ["strategy=custom_init", targets_override("{matrix: kernel, gate: forgt, op: add, value: 1}")],
        ["forgt", "forget"],
    ),
    (
        ["strategy=custom_init", targets_override("{matrix: kernel, gate: forget, op: multiply, value: 1}")],
        ["multiply", "constant, add, scale"],
    ),
    (["strategy=bias_init", "strategy.preset=chrono2"], ["chrono2", "keras_default", "uniform"]),
    (["strategy=extra_variable", "strategy.mode=lora"], ["lora", "additive, gain"]),
    (["strategy=extra_variable", "strategy.matrix=bias"], ["bias", "kernel, recurrent_kernel"]),
    (["strategy=extra_variable", "strategy.target_gates=[forgt]"], ["forgt", "forget"]),
    (["strategy=extra_variable", "strategy.rank=two"], ["strategy.rank", "two", "an integer or null"]),
    (["strategy=bias_init", "strategy.t_max=soon"], ["strategy.t_max", "soon", "a number or null"]),
    (["strategy=input_transform", "strategy.learned=maybe"], ["strategy.learned", "maybe", "true or false"]),
    (["strategy=bias_init", "+strategy.tmax=20"], ["strategy.tmax", "valid keys: gates, name, preset, t_max"]),
    (
        ["strategy=custom_init", targets_override("{matrix: bias, gate: forget, op: add, value: 1, unit: [0]}")],
        ["targets[0]", "unit", "valid keys", "units"],
    ),
    (["strategy=bias_init", "+strategy.units=4"], ["strategy.units", "set by the framework"]),
]
BAD += CHOICE_BAD


def test_a_target_must_name_its_op():
    cfg = li.compose([*COMMON, "strategy=custom_init", targets_override("{matrix: bias, gate: forget, value: 1}")])
    with pytest.raises(ConfigError, match=r"strategy.targets\[0\]: missing op"):
        li.build_model(cfg, DATA)


@pytest.mark.parametrize(("overrides", "fragments"), BAD, ids=[" ".join(o[1:]) for o, _ in BAD])
def test_bad_configs_raise_before_anything_is_built(overrides, fragments):
    cfg = li.compose([*COMMON, *overrides])
    with pytest.raises(ConfigError) as err:
        li.build_model(cfg, DATA)  # validates before any layer exists
    message = str(err.value)
    assert "strategy." in message
    for fragment in fragments:
        assert fragment in message, message


def test_chrono_default_t_max_is_the_sequence_length():
    cfg = li.compose([*COMMON, "strategy=bias_init", "strategy.preset=chrono"])
    assert make_strategy(cfg, input_dim=3, units=4, seq_len=40).t_max == 40
    with pytest.raises(ConfigError, match=r"t_max=null \(the sequence length, 1\)"):
        make_strategy(cfg, input_dim=3, units=4, seq_len=1)
