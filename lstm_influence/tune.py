"""Equal-budget hyperparameter tuning per strategy × dataset with Optuna; every trial is an MLflow run.

Usage::

    python -m lstm_influence.tune strategy=bias_init dataset=financial tune.trials=20
    python -m lstm_influence.tune -m tune=all experiment=compare   # every strategy × dataset, compare's sizes
    python -m lstm_influence +tuned=bias_init-financial seed=1     # train one tuned configuration
    python -m lstm_influence -m experiment=compare_tuned           # every tuned configuration × fresh seeds

The protocol:

* Every strategy × dataset gets the same search space (``conf/tune/default.yaml``) and the same number of trials,
  ``tune.trials``. A strategy's own keys (bias_init's chrono ``t_max``, extra_variable's ``l2``) are sampled only
  when that strategy is selected (``when``), inside the same budget.
* The first trial is the default configuration, so the tuned-versus-default difference is measured in the same
  study, on the same seed and data.
* A trial trains ``train.epochs`` epochs on the training split and is scored on the validation split only, by
  ``tune.objective`` over its per-epoch ``val/norm_loss`` (default ``final``: after the last epoch). The test
  split is never read (the runner's ``evaluate_test=False``). A diverged trial scores ``train.divergence_norm_loss``
  (100 by default), the normalised loss at which the runner calls a run diverged.
* A seeded TPE sampler proposes; a median pruner stops a trial whose ``val/norm_loss`` trails the median of earlier
  trials at the same epoch; a pruned trial counts toward the budget, and TPE learns from its last reported value.
* The best configuration (the default one included) is written as ``<config_dir>/tuned/<strategy>-<dataset>.yaml``:
  a global config that selects its strategy and dataset and sets the tuned keys plus any other key the study was
  run with (e.g. ``experiment=compare``'s sizes), so ``+tuned=<label>`` selects it and
  ``experiment=compare_tuned`` sweeps every tuned file (``tuned=glob(*)``) over fresh seeds.

MLflow: one parent run per study (``run_type=tune``) and one child run per trial (``run_type=trial``, params
``trial.number``, ``trial.role`` and ``trial.<name>`` for each value in the space). Optuna: ``optuna.db`` beside the
MLflow SQLite store. The study name is derived from the strategy, the dataset, the rest of the configuration, the
space, the objective and the sampler seed, so the same command resumes the study: finished trials count toward the
budget, the parent run is reused, and a trial left running by a killed process is marked failed and run again.
Run one process per study at a time.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hydra
import numpy as np
import optuna
import sqlalchemy.exc
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, Trial, TrialState

from lstm_influence import tracking
from lstm_influence.compose import CONFIG_MODULE, CONFIG_NAME, compose
from lstm_influence.config import ConfigError, check_keys, config_hash, flatten, to_container

TUNING_CONFIG_NAME = "tuning"
TUNED_GROUP = "tuned"
METRIC = "val/norm_loss"
OBJECTIVES = ("final", "best", "aulc")
PARAM_TYPES = ("float", "int", "categorical")
PRUNERS = ("median", "none")
DEFAULT_ROLE = "default"
SEARCH_ROLE = "search"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
# Top-level keys a tuned file never sets: the comparison draws fresh seeds, logs where it likes, sweeps as it likes.
NOT_TUNED = ("seed", "tracking", "sweep", "hydra", "tune")
PARENT_ATTR = "mlflow_parent_run_id"
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
_ABSENT = object()

TrainFn = Callable[..., dict[str, Any]]


# ---------------------------------------------------------------------------------------------------------------
# the search space


@dataclass(frozen=True)
class Param:
    """One validated hyperparameter of the space (see :class:`lstm_influence.config.ParamSpec`)."""

    name: str
    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Trial) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            step = int(self.step) if self.step is not None else 1
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=step)
        return trial.suggest_categorical(self.name, list(self.choices))

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this parameter's distribution (so a trial can be fixed to it)."""
        if self.type == "categorical":
            return any(value == choice and type(value) is type(choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        if self.type == "int" and value != int(value):
            return False
        steps = (value - self.low) / self.step if self.step is not None else 0.0
        return abs(steps - round(steps)) < 1e-9

    def describe(self) -> dict[str, Any]:
        """The parameter as plain data (hashed into the study name, logged on the parent run)."""
        return {**dataclasses.asdict(self), "choices": list(self.choices)}


def training_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` without its ``tune`` node: the configuration every trial starts from (the runner rejects ``tune``)."""
    base = OmegaConf.create({key: cfg[key] for key in cfg if key not in ("tune", "hydra")})
    OmegaConf.set_struct(base, True)
    return base


def _dotted(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_dotted(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _matches(cfg: DictConfig, when: Mapping[str, Any]) -> bool:
    for key, expected in _dotted(when).items():
        actual = OmegaConf.select(cfg, key, default=_ABSENT)
        options = expected if isinstance(expected, list) else [expected]
        if actual is _ABSENT or actual not in options:
            return False
    return True


def _param(name: str, spec: DictConfig) -> Param:
    where = f"tune.space.{name}"
    if spec.type not in PARAM_TYPES:
        raise ConfigError(f"{where}.type={spec.type!r}: expected one of {', '.join(PARAM_TYPES)}")
    if spec.type == "categorical":
        choices = tuple(OmegaConf.to_container(spec.choices)) if spec.choices is not None else ()
        if not choices:
            raise ConfigError(f"{where}.choices={choices!r}: a categorical parameter needs at least one choice")
        for choice in choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ConfigError(f"{where}.choices: {choice!r} is not a number, string, boolean or null")
        return Param(name, spec.key, "categorical", choices=choices)
    if spec.low is None or spec.high is None or not spec.low < spec.high:
        raise ConfigError(f"{where}: low={spec.low}, high={spec.high}: expected numbers with low < high")
    if spec.log and spec.low <= 0:
        raise ConfigError(f"{where}: log=true needs low > 0, got low={spec.low}")
    if spec.log and spec.step is not None:
        raise ConfigError(f"{where}: log=true and step={spec.step} cannot be combined")
    if spec.step is not None and not spec.step > 0:
        raise ConfigError(f"{where}.step={spec.step}: expected a positive number or null")
    return Param(name, spec.key, spec.type, float(spec.low), float(spec.high), bool(spec.log), spec.step)


def search_space(tune_cfg: DictConfig, base: DictConfig) -> list[Param]:
    """The validated parameters of ``tune_cfg.space`` that apply to ``base`` (their ``when`` matches it).

    Raises:
        ConfigError: a malformed spec, a key the config does not have, or a value its schema rejects, naming
            ``tune.space.<name>``; raised before anything is trained.
    """
    space: list[Param] = []
    seen: dict[str, str] = {}
    for name, spec in tune_cfg.space.items():
        param = _param(str(name), spec)
        if not _matches(base, OmegaConf.to_container(spec.when)):
            continue
        where = f"tune.space.{name}.key={param.key}"
        if param.key.split(".")[0] in NOT_TUNED:
            raise ConfigError(f"{where}: {', '.join(NOT_TUNED)} are not tunable")
        current = OmegaConf.select(base, param.key, default=_ABSENT)
        if current is _ABSENT or isinstance(current, DictConfig):
            raise ConfigError(
                f"{where}: no such value in the config of strategy={base.strategy.name} dataset={base.dataset.name}"
            )
        if param.key in seen:
            raise ConfigError(f"{where}: the key is already tuned by tune.space.{seen[param.key]}")
        seen[param.key] = param.name
        probe = copy.deepcopy(base)
        candidates = param.choices if param.type == "categorical" else (param.low, param.high)
        for value in candidates:
            value = int(value) if param.type == "int" else value
            try:
                OmegaConf.update(probe, param.key, value, merge=False)
            except Exception as error:
                raise ConfigError(f"{where}: the value {value!r} does not fit the schema ({error})") from error
        space.append(param)
    return space


def apply_params(base: DictConfig, space: Sequence[Param], values: Mapping[str, Any]) -> DictConfig:
    """A copy of ``base`` with each sampled value written to its key."""
    cfg = copy.deepcopy(base)
    for param in space:
        if param.name in values:
            OmegaConf.update(cfg, param.key, values[param.name], merge=False)
    return cfg


def default_values(base: DictConfig, space: Sequence[Param]) -> dict[str, Any]:
    """The value each parameter has in the untuned configuration."""
    return {param.name: OmegaConf.select(base, param.key) for param in space}


def study_name(base: DictConfig, space: Sequence[Param], objective: str, seed: int) -> str:
    """``<strategy>-<dataset>-<hash>``: the hash covers the configuration (without tracking keys), the space, the
    objective and the sampler seed, not the budget, so rerunning with more trials resumes the same study."""
    payload = {
        "config": config_hash(base),
        "space": [param.describe() for param in space],
        "objective": objective,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{base.strategy.name}-{base.dataset.name}-{digest}"


T = TypeVar("T")


def retry_schema_race(open_store: Callable[[], T], attempts: int = 6) -> T:
    """``open_store()``, retried while another process is creating the same fresh SQLite schema.

    Parallel studies (``-m tune=all hydra/launcher=joblib``) start together; on a new ``optuna.db`` or
    ``mlflow.db`` both create the tables and the loser fails with "table ... already exists". Once the winner is
    done the schema is there, so a short wait and a second try succeed.
    """
    for attempt in range(attempts):
        try:
            return open_store()
        except (sqlalchemy.exc.OperationalError, MlflowException) as error:
            if attempt == attempts - 1 or "already exists" not in str(error):
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def storage_url(tracking_uri: str, storage: str | None = None) -> str:
    """The Optuna storage: ``storage`` if given, else ``optuna.db`` beside the MLflow SQLite file (in the working
    directory when MLflow is a server)."""
    if storage:
        return storage
    database = tracking.sqlite_path(tracking_uri)
    beside = database.with_name("optuna.db") if database is not None else Path("optuna.db")
    return tracking.SQLITE_PREFIX + str(beside)


def objective_value(norm_losses: Sequence[float], objective: str, *, diverged: bool, penalty: float) -> float:
    """A trial's score from its per-epoch ``val/norm_loss``: ``final``, ``best`` (lowest) or ``aulc`` (mean).

    A diverged trial, or one with no finite value, scores ``penalty`` (``train.divergence_norm_loss``).
    """
    values = [float(v) for v in norm_losses]
    if diverged or not values or not all(math.isfinite(v) for v in values):
        return float(penalty)
    if objective == "final":
        return values[-1]
    if objective == "best":
        return min(values)
    if objective == "aulc":
        return float(np.mean(values))
    raise ConfigError(f"tune.objective={objective!r}: expected one of {', '.join(OBJECTIVES)}")


class PruningHook:
    """The runner's epoch hook for one trial: reports ``val/norm_loss`` to Optuna and stops a trial it prunes.

    The last epoch is never pruned (stopping there saves nothing), nor is an unprunable trial (the default one,
    whose final value is the reference for the tuned-versus-default difference).
    """

    def __init__(self, trial: Trial, *, epochs: int, prunable: bool) -> None:
        self.trial = trial
        self.epochs = epochs
        self.prunable = prunable
        self.values: list[float] = []
        self.pruned_at: int | None = None

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        value = float(metrics.get(METRIC, math.nan))
        self.values.append(value)
        if not math.isfinite(value):
            return False
        self.trial.report(value, epoch)
        if self.prunable and epoch < self.epochs and self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False


# ---------------------------------------------------------------------------------------------------------------
# where the tuned configuration goes


def packaged_config_dir() -> Path:
    """The directory of the packaged configs (``lstm_influence.conf``)."""
    import lstm_influence.conf as conf

    return Path(conf.__file__).resolve().parent


def resolve_config_dir(config_dir: str | None) -> tuple[Path, bool]:
    """``(directory, packaged)``: where ``tuned/<label>.yaml`` is written, and whether the packaged configs
    already contain it (a source checkout, as with ``pip install -e .``) so ``+tuned=<label>`` needs no search path.

    ``config_dir=None`` picks the packaged ``conf/`` of a writable source checkout, else ``./conf``.
    """
    packaged = packaged_config_dir()
    if config_dir is None:
        checkout = (packaged.parent / "pyproject.toml").is_file() and os.access(packaged, os.W_OK)
        path = packaged if checkout else Path.cwd() / "conf"
    else:
        path = Path(config_dir).expanduser().resolve()
    return path, path == packaged


def selection_hint(label: str, config_dir: Path, packaged: bool) -> str:
    """The command that trains the tuned configuration ``label``."""
    search = "" if packaged else f"--config-dir {config_dir} "
    return f"python -m lstm_influence {search}+{TUNED_GROUP}={label} seed=<a fresh seed>"


def _reference_config(strategy: str, dataset: str) -> DictConfig:
    overrides = [f"strategy={strategy}", f"dataset={dataset}"]
    if GlobalHydra.instance().is_initialized():  # inside @hydra.main: the app's own search path
        return hydra_compose(config_name=CONFIG_NAME, overrides=overrides)
    return compose(overrides)


def tuned_content(best: DictConfig, reference: DictConfig, space: Sequence[Param]) -> dict[str, dict[str, Any]]:
    """The keys a tuned file sets: every tuned key, and every other key where ``best`` differs from ``reference``
    (the packaged config of the same strategy and dataset), e.g. ``train.epochs`` or ``dataset.task``; compared one
    level below each group, whole values, interpolations kept."""
    best_tree = OmegaConf.to_container(best, resolve=False)
    ref_tree = OmegaConf.to_container(reference, resolve=False)
    tuned = {tuple(param.key.split(".")[:2]) for param in space}
    content: dict[str, dict[str, Any]] = {}
    for group, node in best_tree.items():
        if group in NOT_TUNED or not isinstance(node, dict):
            continue
        ref_node = ref_tree.get(group) or {}
        for key, value in node.items():
            if key == "name":
                continue
            if (group, key) in tuned or ref_node.get(key, _ABSENT) != value:
                content.setdefault(group, {})[key] = value
    return content


def write_tuned_config(
    path: Path, *, strategy: str, dataset: str, content: Mapping[str, Any], header: Sequence[str]
) -> Path:
    """Write a global config that selects ``strategy`` and ``dataset`` and sets ``content`` (atomically)."""
    lines = ["# @package _global_", *(f"# {line}" if line else "#" for line in header)]
    lines += ["defaults:", f"  - override /strategy: {strategy}", f"  - override /dataset: {dataset}", "  - _self_"]
    body = OmegaConf.to_yaml(OmegaConf.create(dict(content))) if content else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_text() if path.exists() else ""
    study = next((line for line in header if line.startswith("Study ")), "")
    if previous and study and study.split(" ")[1] not in previous:
        tracking.announce(f"tune: replacing {path}, written by another study (set tune.label to keep both)")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("\n".join(lines) + "\n" + body)
    os.replace(temporary, path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# the study


@dataclass
class TuneResult:
    """What one tuning call leaves behind (also in MLflow's parent run and in Optuna's storage)."""

    study: str
    storage: str
    experiment_id: str
    parent_run_id: str
    budget: int
    trials: int
    pruned: int
    failed: int
    best_trial: int | None
    best_value: float | None
    best_values: dict[str, Any]
    default_value: float | None
    tuned_config: Path | None
    label: str


def _run_training(cfg: DictConfig, **kwargs: Any) -> dict[str, Any]:
    # TensorFlow is imported here, not at module import, so --help and --cfg stay fast.
    from lstm_influence.runner import run

    return run(cfg, **kwargs)


def _check_tune(tune_cfg: DictConfig) -> None:
    if tune_cfg.trials < 1:
        raise ConfigError(f"tune.trials={tune_cfg.trials}: expected a positive number of trials")
    if tune_cfg.objective not in OBJECTIVES:
        raise ConfigError(f"tune.objective={tune_cfg.objective!r}: expected one of {', '.join(OBJECTIVES)}")
    if tune_cfg.pruner not in PRUNERS:
        raise ConfigError(f"tune.pruner={tune_cfg.pruner!r}: expected one of {', '.join(PRUNERS)}")
    for key in ("startup_trials", "pruner_startup_trials", "pruner_warmup_epochs"):
        if tune_cfg[key] < 0:
            raise ConfigError(f"tune.{key}={tune_cfg[key]}: expected a number >= 0")
    if tune_cfg.label is not None and not LABEL_PATTERN.fullmatch(tune_cfg.label):
        raise ConfigError(f"tune.label={tune_cfg.label!r}: expected letters, digits, '_' and '-' only")


def _sampler(tune_cfg: DictConfig, trial_number: int) -> optuna.samplers.TPESampler:
    # Seeded from (seed, trial number): a resumed study draws what an uninterrupted one would have drawn.
    seed = int(np.random.SeedSequence([int(tune_cfg.seed), trial_number]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(tune_cfg.startup_trials))


def _pruner(tune_cfg: DictConfig) -> optuna.pruners.BasePruner:
    if tune_cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    # Epochs are steps 1..N; warmup w means epochs 1..w always run.
    return optuna.pruners.MedianPruner(
        n_startup_trials=int(tune_cfg.pruner_startup_trials), n_warmup_steps=int(tune_cfg.pruner_warmup_epochs) + 1
    )


def _trial_runs(client: MlflowClient, experiment_id: str, study: str, number: int, status: str | None = None):
    query = f"tags.optuna_study = '{study}' and tags.trial_number = '{number}'"
    if status:
        query += f" and attributes.status = '{status}'"
    return client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time DESC"])


class _Study:
    """One strategy × dataset study: the Optuna study, its MLflow parent run and the trial loop."""

    def __init__(self, cfg: DictConfig, train_fn: TrainFn) -> None:
        self.tune_cfg = cfg.tune
        _check_tune(self.tune_cfg)
        self.base = training_config(cfg)
        check_keys(self.base)
        self.space = search_space(self.tune_cfg, self.base)
        self.defaults = default_values(self.base, self.space)
        self.train_fn = train_fn
        self.strategy, self.dataset = str(self.base.strategy.name), str(self.base.dataset.name)
        self.label = self.tune_cfg.label or f"{self.strategy}-{self.dataset}"
        self.name = study_name(self.base, self.space, self.tune_cfg.objective, self.tune_cfg.seed)
        self.uri = str(self.base.tracking.uri)
        self.client = tracking.make_client(self.uri)
        self.experiment_id = retry_schema_race(
            lambda: tracking.get_or_create_experiment(self.client, str(self.base.tracking.experiment))
        )
        self.storage = storage_url(self.uri, self.tune_cfg.storage)
        self.study = optuna.create_study(
            study_name=self.name,
            storage=retry_schema_race(
                lambda: optuna.storages.RDBStorage(self.storage, engine_kwargs={"connect_args": {"timeout": 60}})
            ),
            pruner=_pruner(self.tune_cfg),
            direction="minimize",
            load_if_exists=True,
        )
        self.parent: tracking.RunLogger | None = None

    # -- bookkeeping --------------------------------------------------------------------------------------------

    def trials(self, *states: TrialState) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states or None)

    def _fail_stale_trials(self) -> None:
        """Trials left RUNNING by a killed process: failed in Optuna (not counted, run again), KILLED in MLflow."""
        for trial in self.trials(TrialState.RUNNING):
            self.study.tell(trial.number, state=TrialState.FAIL)
            for run in _trial_runs(self.client, self.experiment_id, self.name, trial.number, "RUNNING"):
                self.client.set_tag(run.info.run_id, "trial_state", "FAIL")
                self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            tracking.announce(f"tune: trial {trial.number} of {self.name} was left running; marked failed")

    def _open_parent(self) -> tracking.RunLogger:
        run_id = self.study.user_attrs.get(PARENT_ATTR)
        if run_id:
            try:
                run = self.client.get_run(run_id)
            except MlflowException:
                run = None
            if (
                run is not None
                and run.info.lifecycle_stage == "active"
                and run.info.experiment_id == self.experiment_id
            ):
                self.client.update_run(run_id, status="RUNNING")
                return tracking.RunLogger(self.client, run_id, self.experiment_id, self.uri)
        tags = {
            tracking.RUN_TYPE: "tune",
            "strategy": self.strategy,
            "dataset": self.dataset,
            "optuna_study": self.name,
            "optuna_storage": self.storage,
            "objective": f"{self.tune_cfg.objective} {METRIC}",
        }
        run = self.client.create_run(self.experiment_id, run_name=f"tune-{self.strategy}-{self.dataset}", tags=tags)
        logger = tracking.RunLogger(self.client, run.info.run_id, self.experiment_id, self.uri)
        container = to_container(self.base)
        for key in ("tracking", "sweep"):
            container.pop(key, None)
        params = flatten(container)
        params.update({"tune.objective": self.tune_cfg.objective, "tune.seed": self.tune_cfg.seed})
        params.update({f"space.{p.name}": json.dumps(p.describe(), sort_keys=True) for p in self.space})
        logger.log_params(params)
        logger.log_text(OmegaConf.to_yaml(OmegaConf.create(container)), "config.yaml")
        self.study.set_user_attr(PARENT_ATTR, run.info.run_id)
        for key, value in {"strategy": self.strategy, "dataset": self.dataset}.items():
            self.study.set_user_attr(key, value)
        return logger

    def _enqueue_default(self) -> None:
        """The default configuration as a trial (once): its values that lie in the space are fixed, so TPE learns
        from them; the others (e.g. chrono's t_max = null, the sequence length) keep the config's value."""
        states = (*COUNTED, TrialState.WAITING, TrialState.RUNNING)
        if any(t.user_attrs.get("role") == DEFAULT_ROLE for t in self.trials(*states)):
            return
        fixed = {p.name: self.defaults[p.name] for p in self.space if p.contains(self.defaults[p.name])}
        self.study.enqueue_trial(fixed, user_attrs={"role": DEFAULT_ROLE})

    # -- one trial ----------------------------------------------------------------------------------------------

    def run_trial(self) -> None:
        self.study.sampler = _sampler(self.tune_cfg, len(self.trials()))
        trial = self.study.ask()
        role = trial.user_attrs.get("role", SEARCH_ROLE)
        values = dict(self.defaults)
        for param in self.space:
            if role == SEARCH_ROLE or param.contains(self.defaults[param.name]):
                values[param.name] = param.suggest(trial)
        trial.set_user_attr("values", values)
        hook = PruningHook(trial, epochs=int(self.base.train.epochs), prunable=role == SEARCH_ROLE)
        tags = {
            tracking.RUN_TYPE: "trial",
            "optuna_study": self.name,
            "trial_number": trial.number,
            "trial_role": role,
        }
        try:
            summary = self.train_fn(
                apply_params(self.base, self.space, values),
                parent_run_id=self.parent.run_id,
                extra_tags=tags,
                epoch_hook=hook,
                evaluate_test=False,
            )
        except BaseException:
            self.study.tell(trial, state=TrialState.FAIL)
            try:
                self._annotate(trial.number, role, values, "FAIL", None, None)
            except Exception as error:  # the trial's own error is the one to report
                tracking.announce(f"tune: could not annotate failed trial {trial.number}: {error}")
            raise
        if hook.pruned_at is not None:
            self.study.tell(trial, state=TrialState.PRUNED)
            self._annotate(trial.number, role, values, "PRUNED", None, summary.get("run_id"))
            return
        diverged = bool(summary.get("stab/diverged", 0.0))
        penalty = float(self.base.train.divergence_norm_loss)
        value = objective_value(hook.values, self.tune_cfg.objective, diverged=diverged, penalty=penalty)
        self.study.tell(trial, value)
        self._annotate(trial.number, role, values, "COMPLETE", value, summary.get("run_id"))
        metrics = {"trial/value": value, "trial/best_value": self.study.best_value}
        self.parent.log_metrics(metrics, step=trial.number)

    def _annotate(
        self, number: int, role: str, values: Mapping[str, Any], state: str, value: float | None, run_id: str | None
    ) -> None:
        """The trial's MLflow run: its number and values as params, its Optuna state and score, a trial name."""
        run_ids = (
            [run_id]
            if run_id
            else [r.info.run_id for r in _trial_runs(self.client, self.experiment_id, self.name, number)]
        )
        for rid in run_ids[:1]:
            logger = tracking.RunLogger(self.client, rid, self.experiment_id, self.uri)
            logger.log_params(
                {"trial.number": number, "trial.role": role, **{f"trial.{k}": v for k, v in values.items()}}
            )
            logger.set_tags({"trial_state": state})
            if value is not None:
                logger.log_metrics({"tune/objective": value})
            self.client.update_run(rid, name=f"{self.strategy}-{self.dataset}-t{number}")

    # -- the whole study ----------------------------------------------------------------------------------------

    def run(self) -> TuneResult:
        self._fail_stale_trials()
        self.parent = self._open_parent()
        budget = int(self.tune_cfg.trials)
        done = len(self.trials(*COUNTED))
        tracking.announce(
            f"tune: study {self.name} ({self.storage}): {done} of {budget} trials done" + (", resuming" if done else "")
        )
        self._enqueue_default()
        status = RunStatus.FINISHED
        try:
            while len(self.trials(*COUNTED)) < budget:
                self.run_trial()
        except KeyboardInterrupt:
            status = RunStatus.KILLED
            raise
        except BaseException as error:
            status = RunStatus.FAILED
            self.client.set_tag(self.parent.run_id, tracking.ERROR_TAG, f"{type(error).__name__}: {error}"[:5000])
            raise
        finally:
            try:
                result = self._summarize(budget, write=status == RunStatus.FINISHED)
            finally:
                self.client.set_terminated(self.parent.run_id, RunStatus.to_string(status))
        tracking.announce(tracking.ui_hint(self.uri, self.experiment_id, self.parent.run_id))
        return result

    def _summarize(self, budget: int, *, write: bool) -> TuneResult:
        complete = self.trials(TrialState.COMPLETE)
        pruned = self.trials(TrialState.PRUNED)
        failed = self.trials(TrialState.FAIL)
        best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
        defaults = [t for t in complete if t.user_attrs.get("role") == DEFAULT_ROLE]
        default_value = defaults[-1].value if defaults else None
        best_values = dict(best.user_attrs.get("values", {})) if best else {}
        tuned_path: Path | None = None
        if write and best is not None:
            tuned_path = self._write(best, best_values, default_value, len(complete) + len(pruned), len(pruned))
        tags: dict[str, Any] = {
            "budget": budget,
            "trials_done": len(complete) + len(pruned),
            "trials_pruned": len(pruned),
            "trials_failed": len(failed),
        }
        metrics: dict[str, float] = {}
        if best is not None:
            tags |= {"best_trial": best.number, "best_is_default": best.user_attrs.get("role") == DEFAULT_ROLE}
            tags |= {f"best.{name}": json.dumps(value) for name, value in best_values.items()}
            metrics["tune/best_value"] = best.value
        if default_value is not None:
            metrics["tune/default_value"] = default_value
            if best is not None:
                metrics["tune/improvement"] = default_value - best.value
                if default_value:
                    metrics["tune/relative_improvement"] = (default_value - best.value) / default_value
        if tuned_path is not None:
            tags["tuned_config"] = str(tuned_path)
            tags["tuned_label"] = self.label
        self.parent.set_tags(tags)
        self.parent.log_metrics(metrics)
        return TuneResult(
            study=self.name,
            storage=self.storage,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent.run_id,
            budget=budget,
            trials=len(complete) + len(pruned),
            pruned=len(pruned),
            failed=len(failed),
            best_trial=best.number if best else None,
            best_value=best.value if best else None,
            best_values=best_values,
            default_value=default_value,
            tuned_config=tuned_path,
            label=self.label,
        )

    def _write(
        self, best: FrozenTrial, values: Mapping[str, Any], default_value: float | None, done: int, pruned: int
    ) -> Path:
        config_dir, packaged = resolve_config_dir(self.tune_cfg.config_dir)
        path = config_dir / TUNED_GROUP / f"{self.label}.yaml"
        best_cfg = apply_params(self.base, self.space, values)
        content = tuned_content(best_cfg, _reference_config(self.strategy, self.dataset), self.space)
        versus = f"vs the default configuration {default_value:.6g}" if default_value is not None else ""
        header = [
            f"Tuned configuration of strategy={self.strategy} on dataset={self.dataset} (lstm_influence.tune).",
            f"Study {self.name} in {self.storage}; MLflow parent run {self.parent.run_id} ({self.uri}).",
            f"Objective: {self.tune_cfg.objective} {METRIC} after up to {self.base.train.epochs} epochs, "
            f"validation split only, seed {self.base.seed}, TPE seed {self.tune_cfg.seed}.",
            f"Best {best.value:.6g} (trial {best.number}, {best.user_attrs.get('role', SEARCH_ROLE)}) {versus}; "
            f"{done} of {self.tune_cfg.trials} trials ({pruned} pruned).",
            "",
            f"Train it:  {selection_hint(self.label, config_dir, packaged)}",
            f"Compare every tuned configuration on fresh seeds:  python -m lstm_influence -m "
            f"{'' if packaged else f'--config-dir {config_dir} '}experiment=compare_tuned",
        ]
        write_tuned_config(path, strategy=self.strategy, dataset=self.dataset, content=content, header=header)
        tracking.announce(
            f"tune: best configuration written to {path}\n      {selection_hint(self.label, config_dir, packaged)}"
        )
        return path


class TuningSweepCallback(Callback):
    """Stands in for the training sweep's callback in ``conf/tuning.yaml`` (``hydra.callbacks.sweep``).

    A training sweep gets one MLflow parent run and resumes by config hash (:mod:`lstm_influence.sweep`); a tuning
    sweep (``-m tune=all``) is a set of independent studies, each with its own parent run and its own resume, so
    it needs neither.
    """

    def __init__(self, **_: Any) -> None:
        super().__init__()


def tune(cfg: DictConfig, *, train_fn: TrainFn | None = None) -> TuneResult:
    """Tune ``cfg``'s strategy on its dataset within ``cfg.tune.trials`` trials (resuming a stopped study).

    Args:
        cfg: a tuning config (``conf/tuning.yaml``: a training config plus ``tune``), e.g. from
            :func:`compose_tuning`.
        train_fn: trains one trial; the runner's :func:`lstm_influence.runner.run` unless given (tests).

    Returns:
        The study's summary; the best configuration is written as ``<config_dir>/tuned/<label>.yaml``.

    Raises:
        ConfigError: before any trial, for a bad ``tune`` node or search space.
    """
    return _Study(cfg, train_fn or _run_training).run()


def compose_tuning(overrides: Sequence[str] = ()) -> DictConfig:
    """The tuning config for these command-line style overrides, e.g. ``["strategy=bias_init", "tune.trials=5"]``."""
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(config_name=TUNING_CONFIG_NAME, overrides=list(overrides))


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name=TUNING_CONFIG_NAME)
def main(cfg: DictConfig) -> float | None:
    if cfg.tune.name == "all" and HydraConfig.get().mode != RunMode.MULTIRUN:
        raise ConfigError(
            "tune=all tunes every strategy × dataset as a sweep: add -m (python -m lstm_influence.tune -m tune=all)"
        )
    return tune(cfg).best_value


if __name__ == "__main__":
    main()
