"""The configuration schema: one structured-config dataclass per config group and per strategy.

Hydra composes the YAML files under ``conf/``; every YAML file starts from one of the schemas registered here
(its defaults list names ``/schema/<group>/<name>@_here_``), so a misspelt key or a value of the wrong type is an
error that names the key, raised before anything is built or trained.

This module must stay free of TensorFlow imports: ``--help`` and the analysis scripts import it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# ---------------------------------------------------------------------------------------------------------------
# strategy/


class Matrix(StrEnum):
    """An LSTM weight, by its Keras name."""

    kernel = "kernel"
    recurrent_kernel = "recurrent_kernel"
    bias = "bias"


class ExtraMatrix(StrEnum):
    """The LSTM weights an extra variable can combine with."""

    kernel = "kernel"
    recurrent_kernel = "recurrent_kernel"


class Gate(StrEnum):
    """A gate block of an LSTM weight (Keras order i, f, c, o), or all four."""

    input = "input"
    forget = "forget"
    cell = "cell"
    output = "output"
    all = "all"


class InitOp(StrEnum):
    """What a custom_init target does to its entries."""

    constant = "constant"
    add = "add"
    scale = "scale"


class BiasPreset(StrEnum):
    """The bias_init presets (see ``lstm_influence/strategies/bias_init.py``)."""

    keras_default = "keras_default"
    zeros = "zeros"
    forget_one = "forget_one"
    forget_two = "forget_two"
    chrono = "chrono"
    uniform = "uniform"
    custom = "custom"


class ExtraMode(StrEnum):
    """How an extra variable combines with its matrix."""

    additive = "additive"
    gain = "gain"


@dataclass
class TargetConfig:
    """Where in the LSTM's weights an influence goes.

    An element of a list (``custom_init``'s ``targets``) has no YAML file of its own to state defaults in, so its
    optional keys keep theirs here: a target given on the command line names only what it needs.

    Attributes:
        matrix: ``kernel`` (input_dim, 4u), ``recurrent_kernel`` (u, 4u) or ``bias`` (4u,).
        gate: ``input``, ``forget``, ``cell``, ``output`` or ``all``.
        units: the unit (column) indices inside the gate block; null for all.
        features: the input-feature (row) indices; ``kernel`` only; null for all rows.
    """

    matrix: Matrix = MISSING
    gate: Gate = MISSING
    units: list[int] | None = None
    features: list[int] | None = None


@dataclass
class InitTargetConfig(TargetConfig):
    """A target plus what to write there: ``constant`` sets, ``add`` adds, ``scale`` multiplies by ``value``.

    ``value`` is a number, or a list that fits the block (its length the number of selected entries, or
    a nested list of shape rows × columns).
    """

    op: InitOp = MISSING
    value: Any = MISSING


@dataclass
class StrategyConfig:
    """Keys every strategy has."""

    name: str = MISSING


@dataclass
class BaselineConfig(StrategyConfig):
    """The plain Keras LSTM with Keras defaults: the control."""


@dataclass
class BaseInitializers:
    """Keras initializer names, one per LSTM weight.

    Attributes:
        kernel: the kernel's (input_dim, 4u) initializer.
        recurrent_kernel: the recurrent kernel's (u, 4u) initializer.
        bias: the bias's (4u,) initializer.
    """

    kernel: str = MISSING
    recurrent_kernel: str = MISSING
    bias: str = MISSING


@dataclass
class CustomInitConfig(StrategyConfig):
    """Random base initialisers, then chosen values written into chosen gate blocks.

    Attributes:
        base_initializer: Keras initialiser names per matrix. θ_cf for retention is what these draw with the
            run's seed.
        unit_forget_bias: the base bias gets 1 on the forget block as Keras gives it (drawn by us, so targets on
            the bias act on top of it instead of being overridden by Keras).
        targets: the writes, applied in order on top of the base initialisation.
    """

    base_initializer: BaseInitializers = field(default_factory=BaseInitializers)
    unit_forget_bias: bool = MISSING
    targets: list[InitTargetConfig] = MISSING


@dataclass
class InputTransformConfig(StrategyConfig):
    """``x' = scale * x + shift`` per input feature before the LSTM.

    Attributes:
        scale: a number for every feature, a mapping feature index -> value (others 1; negative indices count
            from the end, -1 the last feature), or one value per feature.
        shift: the same for the offset (others 0).
        learned: false: a fixed transform; true: a trainable per-feature gain and offset initialised there.
    """

    scale: Any = MISSING
    shift: Any = MISSING
    learned: bool = MISSING


@dataclass
class GateBiases:
    """One constant per gate block of the bias.

    Attributes:
        input: the input gate's bias.
        forget: the forget gate's bias.
        cell: the cell candidate's bias.
        output: the output gate's bias.
    """

    input: float = MISSING
    forget: float = MISSING
    cell: float = MISSING
    output: float = MISSING


@dataclass
class BiasInitConfig(StrategyConfig):
    """Gate-aware bias initialisation; what is configured is exactly what ends in the bias.

    Attributes:
        preset: ``keras_default`` (zeros, forget 1 via unit_forget_bias), ``zeros``, ``forget_one``,
            ``forget_two``, ``chrono`` (Tallec & Ollivier 2018: b_f = log U[1, t_max - 1], b_i = -b_f),
            ``uniform`` (Gu et al. 2020: b_f = logit U[1/units, 1 - 1/units], b_i = -b_f) or ``custom``
            (``gates``).
        gates: per-gate constant biases for ``custom``.
        t_max: chrono's longest dependency (>= 2); null: the dataset's sequence length.
    """

    preset: BiasPreset = MISSING
    gates: GateBiases = field(default_factory=GateBiases)
    t_max: float | None = MISSING


@dataclass
class ExtraVariableConfig(StrategyConfig):
    """A new trainable variable combined with an LSTM weight matrix in the forward pass.

    Attributes:
        mode: ``additive`` (W_eff = W + delta) or ``gain`` (W_eff = W * (1 + g), g per gate unit).
        matrix: ``kernel`` or ``recurrent_kernel``.
        target_gates: the gate blocks the variable may touch (input, forget, cell, output, or all).
        init: the variable's initial value on the targeted gates: a number, or a Keras initialiser name
            (a random prior, seeded from ``seed``). Entries outside the targeted gates are always 0.
        l2: L2 penalty ``l2 · Σ Δ²`` pulling the variable to zero (with ``rank``: on both LoRA factors).
        trainable_base: false freezes W and trains only the variable (as LoRA does).
        rank: null: a full delta; r: delta = (alpha / r) · A·B, LoRA's low-rank form (additive mode, init 0).
        alpha: LoRA's scale numerator; null: the rank (a scale of 1).
    """

    mode: ExtraMode = MISSING
    matrix: ExtraMatrix = MISSING
    target_gates: list[Gate] = MISSING
    init: Any = MISSING
    l2: float = MISSING
    trainable_base: bool = MISSING
    rank: int | None = MISSING
    alpha: float | None = MISSING


STRATEGY_SCHEMAS: dict[str, type[StrategyConfig]] = {
    "baseline": BaselineConfig,
    "custom_init": CustomInitConfig,
    "input_transform": InputTransformConfig,
    "bias_init": BiasInitConfig,
    "extra_variable": ExtraVariableConfig,
}

# ---------------------------------------------------------------------------------------------------------------
# dataset/


@dataclass
class DatasetConfig:
    """Keys every dataset has.

    Attributes:
        name: the family: synthetic, financial or text.
        seq_len: sequence (window) length fed to the LSTM.
        data_seed: fixes the data, so every strategy and seed of a comparison sees the same data.
        target_norm_loss: the normalised validation loss that counts as "converged".
    """

    name: str = MISSING
    seq_len: int = 100
    data_seed: int = 0
    target_norm_loss: float = 0.1


@dataclass
class SyntheticConfig(DatasetConfig):
    """Long-range synthetic tasks with known trivial baselines.

    Attributes:
        task: ``adding`` (Hochreiter 1997 / Arjovsky 2016), ``copy`` (remember K symbols over a delay) or
            ``sine`` (noisy sum of sines, predict the next value).
        seq_len: the sequence length; for copy the whole input, ``delay + 2 * copy_symbols``.
        n_train, n_val, n_test: sample counts.
        copy_symbols: K, the number of symbols to remember (copy).
        copy_alphabet: how many distinct symbols (copy); two more ids are the blank and the marker.
        sine_components: number of sines in the sum (sine).
        sine_noise: standard deviation of the additive noise (sine); its square is the loss floor.
        sine_min_period, sine_max_period: each sine's period in steps is drawn uniformly between these.
    """

    name: str = "synthetic"
    task: str = "adding"
    seq_len: int = 50
    n_train: int = 5000
    n_val: int = 1000
    n_test: int = 1000
    copy_symbols: int = 10
    copy_alphabet: int = 8
    sine_components: int = 3
    sine_noise: float = 0.05
    sine_min_period: float = 4.0
    sine_max_period: float = 40.0


@dataclass
class FinancialConfig(DatasetConfig):
    """A daily market series: the bundled S&P 500 1950-2018, or the user's CSV at ``path``.

    Attributes:
        path: a user's CSV (gzip allowed); null: the bundled series.
        date_column, price_column: the date and closing-price columns (required).
        high_column, low_column, volume_column: optional OHLCV columns, needed only by the features
            ``range`` and ``volume``.
        features: any of ``returns`` (daily log return), ``range`` (log high/low), ``volume`` (change of
            log(1 + volume)).
        target: ``return`` (next-day log return) or ``volatility`` (realised volatility over the next
            ``vol_window`` days: the root of the summed squared log returns).
        vol_window: the horizon for the volatility target; at most ``seq_len``.
        train_frac, val_frac, test_frac: chronological split fractions; they must add up to 1.
        stride: step between window starts.
        target_norm_loss: 1.0, "no worse than the train-mean predictor": next-day returns are close to
            unpredictable (the baseline LSTM measured 1.01-1.04 over 10 epochs), so a lower bar is not met.
    """

    name: str = "financial"
    path: str | None = None
    date_column: str = "Date"
    price_column: str = "Close"
    high_column: str = "High"
    low_column: str = "Low"
    volume_column: str = "Volume"
    seq_len: int = 60
    features: list[str] = field(default_factory=lambda: ["returns"])
    target: str = "return"
    vol_window: int = 5
    train_frac: float = 0.7
    val_frac: float = 0.15
    test_frac: float = 0.15
    stride: int = 1
    target_norm_loss: float = 1.0


@dataclass
class TextConfig(DatasetConfig):
    """Character-level next-character prediction on the bundled corpus, or the user's text at ``path``.

    Attributes:
        path: a user's UTF-8 text file; null: the bundled corpus (Python's ``pydoc_data.topics``).
        max_chars: use at most the first this many characters of the corpus (null: all).
        train_frac, val_frac, test_frac: contiguous split fractions; they must add up to 1.
        stride: step between window starts in the training split (val and test use seq_len).
        min_count: characters seen fewer times in train map to UNK.
        target_norm_loss: 0.7 (about 2.3 nats, 3.4 bits per character on the bundled corpus): the baseline
            LSTM measured 0.82 after 10 epochs with stride 100 and 0.65 with stride 25 (passing 0.7 at epoch
            7), so 0.7 is reachable and still separates faster from slower strategies.
    """

    name: str = "text"
    path: str | None = None
    seq_len: int = 100
    max_chars: int | None = 400_000
    train_frac: float = 0.8
    val_frac: float = 0.1
    test_frac: float = 0.1
    stride: int = 25
    min_count: int = 1
    target_norm_loss: float = 0.7


DATASET_SCHEMAS: dict[str, type[DatasetConfig]] = {
    "synthetic": SyntheticConfig,
    "financial": FinancialConfig,
    "text": TextConfig,
}

# ---------------------------------------------------------------------------------------------------------------
# model/, train/, tracking/


@dataclass
class ModelConfig:
    """The network: inputs -> [input transform] -> LSTM named ``lstm`` -> Dense head.

    Attributes:
        units: LSTM units.
        dropout: dropout on the LSTM's inputs (keeps the fused cuDNN path; recurrent dropout would not).
    """

    name: str = "lstm"
    units: int = 64
    dropout: float = 0.0


@dataclass
class TrainConfig:
    """The training loop and the definitions of convergence and stability.

    Attributes:
        name: the option of the ``train`` group.
        epochs: epochs to run (a fixed budget: no early stopping, so runs compare at equal cost).
        batch_size: minibatch size.
        learning_rate: Adam's step size.
        optimizer: ``adam``, ``rmsprop`` or ``sgd``.
        clip_norm: clip gradients to this global norm; null: off.
        jit_compile: ``auto`` (XLA on CPU where it wins, off where cuDNN runs), true or false.
        target_norm_loss: ``val/norm_loss`` that counts as converged (default: the dataset's).
        spike_factor: a step is a spike when its value exceeds this × the median of the previous window.
        spike_window: the number of previous steps in that median.
        divergence_norm_loss: a training loss above this × the trivial-baseline loss stops the run.
        gate_probe_batch: sequences of the fixed validation batch used for the gate diagnostics.
        verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch).
    """

    name: str = "default"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    clip_norm: float | None = None
    jit_compile: Any = "auto"
    target_norm_loss: float = "${dataset.target_norm_loss}"  # type: ignore[assignment]
    spike_factor: float = 3.0
    spike_window: int = 20
    divergence_norm_loss: float = 100.0
    gate_probe_batch: int = 64
    verbose: int = 2


@dataclass
class TrackingConfig:
    """Where runs are logged (values in ``conf/tracking/<name>.yaml``). Not part of ``config_hash``.

    Attributes:
        name: the option of the ``tracking`` group: ``local`` (an embedded SQLite store) or ``server`` (a
            running MLflow server); a file of your own under ``conf/tracking/`` is an option too.
        uri: the MLflow tracking URI: ``sqlite:///<file>`` (relative to the working directory, or
            ``sqlite:////absolute/path``; a query such as ``?timeout=30`` is allowed) or ``http(s)://host:port``.
        experiment: the MLflow experiment name.
    """

    name: str = MISSING
    uri: str = MISSING
    experiment: str = MISSING


@dataclass
class SweepConfig:
    """How a multirun sweep (``-m``) treats its jobs (values in ``conf/sweep/default.yaml``); see
    :mod:`lstm_influence.sweep`. Not part of ``config_hash``.

    Attributes:
        id: the sweep's ``sweep_id`` tag and parent run name; null: ``<preset>-<hash of the jobs' configs>``, so
            the same command resumes the same sweep.
        force: re-run jobs whose config already has a FINISHED run; the older run is then soft-deleted
            (``mlflow runs restore`` brings it back), so each config keeps one FINISHED run.
        threads: TensorFlow CPU threads per job; null: the cores divided by the jobs that run at once.
    """

    id: str | None = MISSING
    force: bool = MISSING
    threads: int | None = MISSING


@dataclass
class Config:
    """The whole run (values in ``conf/config.yaml`` and the groups it selects).

    Attributes:
        seed: drives weight initialisation, shuffling and dropout (``dataset.data_seed`` fixes the data).
        arm: the named arm the run belongs to, set by an option of the ``arm`` group; null: the run's arm is its
            strategy's name. It names the run (``{arm}-{dataset}-s{seed}``) and its ``arm`` tag.
        strategy, dataset, model, train: the groups of the same names.
        tracking: where the run is logged.
        sweep: how a ``-m`` sweep treats its jobs.
    """

    seed: int = MISSING
    arm: str | None = MISSING
    strategy: Any = MISSING
    dataset: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


# ---------------------------------------------------------------------------------------------------------------
# tune/ (python -m lstm_influence.tune; never part of a training run's config)


@dataclass
class ParamSpec:
    """One hyperparameter of the tuning search space.

    Attributes:
        key: the dotted config key a sampled value is written to, e.g. ``train.learning_rate``.
        type: ``float``, ``int`` or ``categorical``.
        low, high: the range, both ends included (float, int).
        log: sample uniformly in log space (float, int; needs ``low > 0``).
        step: a grid step (float, int; not together with ``log``); null: continuous (float) or 1 (int).
        choices: the options (categorical); null is an option too, e.g. ``train.clip_norm`` off.
        when: sample this key only for configs that match, nested like the config, a list meaning "any of", e.g.
            ``{strategy: {name: bias_init, preset: chrono}}``; empty: always. This is how a strategy adds its own
            keys to the search, inside the same trial budget.
    """

    key: str = MISSING
    type: str = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None
    when: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuneConfig:
    """Equal-budget hyperparameter tuning of one strategy on one dataset (``python -m lstm_influence.tune``).

    Attributes:
        name: the preset (``conf/tune/<name>.yaml``).
        trials: the budget: finished trials (complete or pruned) per strategy × dataset, the default-config
            trial included; a resumed study runs only the trials still missing.
        objective: what a trial scores, from its per-epoch ``val/norm_loss`` (the validation split; the test
            split is never read): ``final`` (after the last epoch: the weights a study run is tested with),
            ``best`` (the lowest epoch) or ``aulc`` (the mean over epochs). Lower is better.
        seed: the TPE sampler's seed; each trial's sampler is seeded from it and the trial number, so a
            resumed study samples what an uninterrupted one would.
        startup_trials: TPE's random trials before it models the space.
        pruner: ``median`` (stop a trial whose best ``val/norm_loss`` so far is worse than the median of earlier
            trials at the same epoch) or ``none``.
        pruner_startup_trials: trials that finish before any is pruned.
        pruner_warmup_epochs: epochs every trial runs before it can be pruned.
        storage: the Optuna storage URL; null: ``optuna.db`` beside the MLflow SQLite store (in the working
            directory for a tracking server).
        config_dir: the config directory the best configuration is written to, as ``<config_dir>/tuned/<label>.yaml``;
            null: the packaged ``conf/`` of a source checkout (editable install), else ``./conf``.
        label: the tuned file's name, selected with ``+tuned=<label>``; null: ``<strategy>-<dataset>``.
        space: the search space by parameter name (the Optuna parameter and the trial run's ``trial.<name>`` param).
    """

    name: str = "default"
    trials: int = 20
    objective: str = "final"
    seed: int = 0
    startup_trials: int = 10
    pruner: str = "median"
    pruner_startup_trials: int = 5
    pruner_warmup_epochs: int = 2
    storage: str | None = None
    config_dir: str | None = None
    label: str | None = None
    space: dict[str, ParamSpec] = field(default_factory=dict)


@dataclass
class TuningConfig(Config):
    """The tuning app's root (``conf/tuning.yaml``): a training config plus its ``tune`` node."""

    tune: TuneConfig = field(default_factory=TuneConfig)


def register_configs() -> None:
    """Register every schema with Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    # Schemas live in their own "schema/" groups so that `--help` lists only real options; a YAML file
    # pulls its schema in with `- /schema/<group>/<name>@_here_`.
    cs.store(group="schema", name="config", node=Config)
    for name, schema in STRATEGY_SCHEMAS.items():
        cs.store(group="schema/strategy", name=name, node=schema)
    for name, schema in DATASET_SCHEMAS.items():
        cs.store(group="schema/dataset", name=name, node=schema)
    cs.store(group="schema/model", name="lstm", node=ModelConfig)
    cs.store(group="schema/train", name="default", node=TrainConfig)
    cs.store(group="schema/tracking", name="tracking", node=TrackingConfig)
    cs.store(group="schema/tune", name="tune", node=TuneConfig)
    # Merged after conf/config.yaml: the inherited fields are MISSING, so the training config's values stay and
    # only the root's type changes, to one that declares ``tune``.
    cs.store(group="schema", name="tuning", node=TuningConfig(**{f.name: MISSING for f in dataclasses.fields(Config)}))
    cs.store(group="schema/sweep", name="default", node=SweepConfig)


register_configs()


# ---------------------------------------------------------------------------------------------------------------
# helpers over composed configs


class ConfigError(ValueError):
    """A configuration value that cannot work; raised before anything is trained."""


def check_keys(cfg: DictConfig) -> None:
    """Reject keys that no schema declares, e.g. ones appended with ``+dataset.typo=1``.

    Hydra's ``+key=value`` deliberately bypasses the schema; a run must not silently ignore such a key.
    """
    root = OmegaConf.get_type(cfg)  # Config, or a config that extends it (the tuning app's)
    groups = {field_.name for field_ in dataclasses.fields(root if dataclasses.is_dataclass(root) else Config)}
    unknown = [key for key in cfg if key not in groups and key != "hydra"]
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}: valid keys are {sorted(groups)}")
    for group in groups:
        node = cfg[group]
        schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
        if schema is None or not dataclasses.is_dataclass(schema):
            continue
        allowed = {field_.name for field_ in dataclasses.fields(schema)}
        for key in node:
            if key not in allowed:
                raise ConfigError(f"{group}.{key}: unknown key for {schema.__name__}; valid keys: {sorted(allowed)}")


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python containers (enum values as their strings), without Hydra's own node."""
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True, enum_to_str=True)
    container.pop("hydra", None)
    return container


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys; lists stay whole (as JSON) so a param is one value; enums become their
    strings."""
    flat: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}." if prefix or key else ""))
        return flat
    name = prefix[:-1]
    if isinstance(tree, (list, tuple)):
        flat[name] = json.dumps(tree, default=_plain)
    else:
        flat[name] = _plain(tree) if isinstance(tree, Enum) else tree
    return flat


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else str(value)


# Keys that say where and how a run is recorded, not what it is: two runs differing only there are the same run.
UNHASHED_KEYS = ("tracking", "sweep")


def config_hash(cfg: DictConfig) -> str:
    """A stable hash of the resolved config without :data:`UNHASHED_KEYS`; an arm left null is not hashed either,
    so configs written before the ``arm`` key existed keep their hash."""
    container = to_container(cfg)
    for key in UNHASHED_KEYS:
        container.pop(key, None)
    if container.get("arm", "") is None:
        container.pop("arm")
    payload = json.dumps(container, sort_keys=True, default=_plain)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def arm_name(cfg: DictConfig) -> str:
    """The run's arm: ``cfg.arm`` when an arm is selected, else the strategy's name."""
    return str(cfg.get("arm") or cfg.strategy.name)


def run_name(cfg: DictConfig) -> str:
    """``{arm}-{dataset}-s{seed}``: the MLflow run name (the arm is the strategy's name unless one is selected)."""
    return f"{arm_name(cfg)}-{cfg.dataset.name}-s{cfg.seed}"
