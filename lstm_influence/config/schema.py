"""The configuration schema: one structured-config dataclass per framework config group, and the checks of a
composed config that those types cannot express.

Hydra composes the YAML files under ``conf/``; the YAML files of the model, train, tracking, sweep and tune groups
start from one of the schemas registered here (their defaults list names ``/schema/<group>/<name>@_here_``), so a
misspelt key or a value of the wrong type is an error that names the key, raised before anything is built or
trained. The ``strategy`` and ``dataset`` groups are plug-ins: each YAML names its class or function with
``_target_``, and that target's signature is the schema (:mod:`lstm_influence.config.plugins` checks a node against it
before anything is built).

The schemas stay together here, rather than beside the code each one types (training, tracking, the sweep, the
tuner): the root :class:`Config` is made of them and Hydra must have them registered before it composes anything,
from :mod:`~lstm_influence.config.compose` at the bottom of the package, so a schema kept upstairs would make the
config stage import upwards.

:func:`check_keys` is the first step of :func:`lstm_influence.config.validate`, the one check a run's config gets.
This module must stay free of TensorFlow imports: ``--help`` and the analysis scripts import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lstm_influence.config.errors import ConfigError

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
            :data:`lstm_influence.training.performance.XLA_BREAK_EVEN_BATCH_STEPS` training batch time steps
            (epochs × batches an epoch × time steps), where its faster steps repay its compilation, and off on a GPU
            (cuDNN).
        threads: TensorFlow's intra- and inter-op CPU threads: ``auto`` (the rule in :mod:`~.threads`,
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
    :mod:`lstm_influence.orchestration.sweep`. Not part of ``config_hash``.

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
        strategy, dataset: plug-ins, each a node naming its class or function with ``_target_`` plus that target's
            keyword arguments (see :mod:`lstm_influence.config.plugins`).
        model, train: the groups of the same names.
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
    """Equal-budget hyperparameter tuning of one strategy on one dataset (``python -m lstm_influence.tune``);
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
            search trials take the Sobol' design's points (see :mod:`lstm_influence.orchestration.tuning.sampling`).
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
# checks of a composed config


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
