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
from enum import Enum, StrEnum
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
        t_max: chrono's longest dependency (>= 2); null: the task's horizon (the sequence length; 3/2 of the
            copy task's delay).
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


class SyntheticTask(StrEnum):
    """The synthetic tasks (see ``lstm_influence/datasets/synthetic.py``)."""

    adding = "adding"
    copy = "copy"
    sine = "sine"


class FinancialFeature(StrEnum):
    """The daily features of a market series (see ``lstm_influence/datasets/financial.py``)."""

    returns = "returns"
    range = "range"
    volume = "volume"


# "return" is a Python keyword, so this enum is built with the functional API (a member named exactly as its value).
FinancialTarget = StrEnum("FinancialTarget", {"return": "return", "volatility": "volatility"})
FinancialTarget.__doc__ = "What a financial sample predicts: the next-day log return or the realised volatility."


@dataclass
class DatasetConfig:
    """Keys every dataset has. Values live in ``conf/dataset/<name>.yaml``.

    Attributes:
        name: the family: synthetic, financial or text.
        seq_len: sequence (window) length fed to the LSTM.
        data_seed: fixes the data, so every strategy and seed of a comparison sees the same data.
        target_norm_loss: the normalised validation loss that counts as "converged".
    """

    name: str = MISSING
    seq_len: int = MISSING
    data_seed: int = MISSING
    target_norm_loss: float = MISSING


@dataclass
class SyntheticConfig(DatasetConfig):
    """Long-range synthetic tasks with known trivial baselines (``conf/dataset/synthetic.yaml``).

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

    task: SyntheticTask = MISSING
    n_train: int = MISSING
    n_val: int = MISSING
    n_test: int = MISSING
    copy_symbols: int = MISSING
    copy_alphabet: int = MISSING
    sine_components: int = MISSING
    sine_noise: float = MISSING
    sine_min_period: float = MISSING
    sine_max_period: float = MISSING


@dataclass
class FinancialConfig(DatasetConfig):
    """A daily market series: the bundled S&P 500 1950-2018, or the user's CSV at ``path``
    (``conf/dataset/financial.yaml``).

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
    """

    path: str | None = MISSING
    date_column: str = MISSING
    price_column: str = MISSING
    high_column: str = MISSING
    low_column: str = MISSING
    volume_column: str = MISSING
    features: list[FinancialFeature] = MISSING
    target: FinancialTarget = MISSING
    vol_window: int = MISSING
    train_frac: float = MISSING
    val_frac: float = MISSING
    test_frac: float = MISSING
    stride: int = MISSING


@dataclass
class TextConfig(DatasetConfig):
    """Character-level next-character prediction on the bundled corpus, or the user's text at ``path``
    (``conf/dataset/text.yaml``).

    Attributes:
        path: a user's UTF-8 text file; null: the bundled corpus (CPython 3.11.7's ``pydoc_data`` topics, frozen
            in ``lstm_influence/datasets/data/python_doc_topics.txt.gz``).
        max_chars: use at most the first this many characters of the corpus (null: all).
        train_frac, val_frac, test_frac: contiguous split fractions; they must add up to 1.
        stride: step between window starts in the training split (val and test use seq_len).
        min_count: characters seen fewer times in train map to UNK.
    """

    path: str | None = MISSING
    max_chars: int | None = MISSING
    train_frac: float = MISSING
    val_frac: float = MISSING
    test_frac: float = MISSING
    stride: int = MISSING
    min_count: int = MISSING


DATASET_SCHEMAS: dict[str, type[DatasetConfig]] = {
    "synthetic": SyntheticConfig,
    "financial": FinancialConfig,
    "text": TextConfig,
}

# ---------------------------------------------------------------------------------------------------------------
# model/, train/, tracking/


class Optimizer(StrEnum):
    """``train.optimizer``: the Keras optimiser the run trains with."""

    adam = "adam"
    rmsprop = "rmsprop"
    sgd = "sgd"


@dataclass
class ModelConfig:
    """The network: inputs -> [input transform] -> LSTM named ``lstm`` -> Dense head (values: ``conf/model/``).

    Attributes:
        name: the option of the ``model`` group.
        units: LSTM units (a positive integer).
        dropout: dropout on the LSTM's inputs, in [0, 1) (keeps the fused cuDNN path; recurrent dropout would not).
    """

    name: str = MISSING
    units: int = MISSING
    dropout: float = MISSING


@dataclass
class TrainConfig:
    """The training loop and the definitions of convergence and stability (values: ``conf/train/``).

    Attributes:
        name: the option of the ``train`` group.
        epochs: epochs to run (a fixed budget: no early stopping, so runs compare at equal cost).
        batch_size: minibatch size.
        learning_rate: the optimiser's step size (positive).
        optimizer: ``adam``, ``rmsprop`` or ``sgd``.
        clip_norm: clip gradients to this global norm; null: off.
        jit_compile: ``auto``, true or false. ``auto`` turns XLA on on CPU for runs of at least
            :data:`lstm_influence.model.XLA_BREAK_EVEN_BATCH_STEPS` training batch time steps (epochs × batches an
            epoch × time steps), where its faster steps repay its compilation, and off on a GPU (cuDNN).
        threads: TensorFlow's intra- and inter-op CPU threads: ``auto`` (the rule in :mod:`lstm_influence.threads`,
            from the model's size, within a sweep job's share of the cores) or a positive integer. ``sweep.threads``
            takes precedence.
        target_norm_loss: ``val/norm_loss`` that counts as converged (default: the dataset's).
        spike_factor: a step is a spike when its value exceeds this × the median of the previous window (> 1).
        spike_window: the number of previous steps in that median (>= 1).
        divergence_norm_loss: a training loss above this × the trivial-baseline loss stops the run.
        gate_probe_batch: sequences of the fixed validation batch used for the gate diagnostics; 0: none.
        verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch).
    """

    name: str = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    learning_rate: float = MISSING
    optimizer: Optimizer = MISSING
    clip_norm: float | None = MISSING
    jit_compile: Any = MISSING
    threads: Any = MISSING
    target_norm_loss: float = MISSING
    spike_factor: float = MISSING
    spike_window: int = MISSING
    divergence_norm_loss: float = MISSING
    gate_probe_batch: int = MISSING
    verbose: int = MISSING


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
        threads: TensorFlow CPU threads per job; null: ``train.threads``, whose ``auto`` rule chooses within the
            cores divided by the jobs that run at once.
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
# tune/ (python -m lstm_influence.tuning; never part of a training run's config)


class ParamType(StrEnum):
    """How a tuned parameter is sampled."""

    float = "float"
    int = "int"
    categorical = "categorical"


class TuneObjective(StrEnum):
    """What a trial scores, from its per-epoch ``val/norm_loss``."""

    final = "final"
    best = "best"
    aulc = "aulc"


class TunePruner(StrEnum):
    """Whether trials that trail are stopped early."""

    median = "median"
    none = "none"


@dataclass
class ParamSpec:
    """One hyperparameter of the tuning search space.

    An entry of ``tune.space`` (a mapping, so it has no YAML file of its own to state defaults in): ``key`` and
    ``type`` are required, and the keys a type does not use keep their neutral defaults here, so a space entry names
    only what it needs.

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
    type: ParamType = MISSING
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None
    when: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuneConfig:
    """Equal-budget hyperparameter tuning of one strategy on one dataset (``python -m lstm_influence.tuning``);
    values in ``conf/tune/default.yaml``.

    Attributes:
        name: the preset (``conf/tune/<name>.yaml``).
        trials: the budget: finished trials (complete or pruned) per strategy × dataset, the default-config
            trial included; a resumed study runs only the trials still missing.
        objective: what a trial scores, from its per-epoch ``val/norm_loss`` (the validation split; the test
            split is never read): ``final`` (after the last epoch: the weights a study run is tested with),
            ``best`` (the lowest epoch) or ``aulc`` (the mean over epochs). Lower is better.
        seed: seeds the start-up design (scrambled Sobol') and TPE; the same for every study, so every strategy
            draws the same start-up values (common random numbers). TPE's sampler is seeded from it and the trial
            number, so a resumed study samples what an uninterrupted one would.
        startup_trials: finished trials (the default one included) before TPE models the space; until then the
            search trials take the Sobol' design's points (see :mod:`lstm_influence.tuning.sampling`).
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

    name: str = MISSING
    trials: int = MISSING
    objective: TuneObjective = MISSING
    seed: int = MISSING
    startup_trials: int = MISSING
    pruner: TunePruner = MISSING
    pruner_startup_trials: int = MISSING
    pruner_warmup_epochs: int = MISSING
    storage: str | None = MISSING
    config_dir: str | None = MISSING
    label: str | None = MISSING
    space: dict[str, ParamSpec] = MISSING


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
