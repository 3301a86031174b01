"""The study lifecycle: one strategy × dataset tuned within a fixed trial budget, resumable, recorded in MLflow.

:class:`Study` opens (or resumes) the Optuna study and its MLflow parent run, runs trials until the budget of
finished trials is reached, and summarises: the best trial, the default configuration's score, which samplers ran
(:mod:`~.tuning.sampling`), and the tuned-config file (:mod:`~.tuning.tuned_files`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, Trial, TrialState

from lstm_influence import tracking
from lstm_influence.config.compose import CONFIG_MODULE
from lstm_influence.config.schema import ConfigError, check_keys, config_hash, flatten, to_container
from lstm_influence.metrics import (
    DIVERGED_METRIC,
    STUDY_BEST_SO_FAR,
    STUDY_TRIAL_VALUE,
    TRIAL_OBJECTIVE,
    TUNE_BEST_VALUE,
    TUNE_DEFAULT_VALUE,
    TUNE_IMPROVEMENT,
    TUNE_RELATIVE_IMPROVEMENT,
    VAL_NORM_LOSS,
)
from lstm_influence.names import (
    BEST_IS_DEFAULT,
    BEST_PREFIX,
    BEST_TRIAL,
    DATASET,
    OPTUNA_STORAGE,
    OPTUNA_STUDY,
    RUN_TRIAL,
    RUN_TUNE,
    RUN_TYPE,
    SEARCH_TRIALS,
    STRATEGY,
    STUDY_BUDGET,
    STUDY_OBJECTIVE,
    STUDY_SAMPLER,
    STUDY_SEARCHED,
    TRIAL_NUMBER,
    TRIAL_ROLE,
    TRIAL_STATE,
    TRIALS_DONE,
    TRIALS_FAILED,
    TRIALS_PRUNED,
    TRIED_PREFIX,
    TUNED_CONFIG,
    TUNED_LABEL,
)
from lstm_influence.orchestration.tuning import sampling
from lstm_influence.orchestration.tuning.space import Param, apply_params, default_values, search_space, training_config
from lstm_influence.orchestration.tuning.tuned_files import (
    TUNED_GROUP,
    config_options,
    reference_config,
    resolve_config_dir,
    selection_hint,
    tuned_content,
    write_tuned_config,
)

TUNING_CONFIG_NAME = "tuning"
DEFAULT_ROLE = "default"
SEARCH_ROLE = "search"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
PARENT_ATTR = "mlflow_parent_run_id"  # the Optuna study's user attribute holding its MLflow parent run
OPTUNA_DB = "optuna.db"  # the default storage's file name, beside the MLflow SQLite store
SQLITE_BUSY_TIMEOUT_S = 60  # how long a SQLite storage connection waits for another process's write
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
MIN_SEARCH_TRIALS = 2
"""Finished search trials (besides the default one) a study needs before its best values count as searched: with
one, "tuned" would be a single draw compared with the default."""

TrainFn = Callable[..., dict[str, Any]]


def study_name(base: DictConfig, space: Sequence[Param], objective: str, seed: int) -> str:
    """``<strategy>-<dataset>-<hash>``: the hash covers the configuration (without tracking keys), the space, the
    objective, the sampler seed and the sampling plan, not the budget, so rerunning with more trials resumes the
    same study."""
    payload = {
        "config": config_hash(base),
        "space": [param.describe() for param in space],
        "objective": objective,
        "seed": seed,
        "plan": sampling.SAMPLING_PLAN,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{base.strategy.name}-{base.dataset.name}-{digest}"


def storage_url(tracking_uri: str, storage: str | None = None) -> str:
    """The Optuna storage: ``storage`` if given, else ``optuna.db`` beside the MLflow SQLite file (in the working
    directory when MLflow is a server)."""
    if storage:
        return storage
    database = tracking.sqlite_path(tracking_uri)
    return tracking.sqlite_uri(database.with_name(OPTUNA_DB) if database is not None else Path(OPTUNA_DB))


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage at ``url``, its tables created if the database is new.

    Optuna creates its schema when the storage is opened; two processes doing that at once on the same new SQLite
    file (parallel studies: ``-m tune=all hydra/launcher=joblib``) race, and the loser fails with "table ...
    already exists". A SQLite storage is therefore opened under :func:`lstm_influence.tracking.store_lock`, as the
    MLflow store is: the first process creates the tables, the others wait and find them. A SQLite connection
    waits up to :data:`SQLITE_BUSY_TIMEOUT_S` for another process's write.
    """
    database = tracking.sqlite_path(url)
    if database is None:
        return optuna.storages.RDBStorage(url)
    with tracking.store_lock(database):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}})


def objective_value(norm_losses: Sequence[float], objective: str, *, diverged: bool, penalty: float) -> float:
    """A trial's score from its per-epoch ``val/norm_loss``: ``final`` (the last), ``best`` (the lowest) or
    ``aulc`` (the mean). A diverged trial, or one with no finite value, scores ``penalty``
    (``train.divergence_norm_loss``)."""
    values = [float(v) for v in norm_losses]
    if diverged or not values or not all(math.isfinite(v) for v in values):
        return float(penalty)
    if objective == "final":
        return values[-1]
    if objective == "best":
        return min(values)
    if objective == "aulc":
        return float(np.mean(values))
    raise ValueError(f"objective_value: objective={objective!r}, expected final, best or aulc")


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
        value = float(metrics.get(VAL_NORM_LOSS, math.nan))
        self.values.append(value)
        if not math.isfinite(value):
            return False
        self.trial.report(value, epoch)
        if self.prunable and epoch < self.epochs and self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False


@dataclass
class TuneResult:
    """What one tuning call leaves behind (also in MLflow's parent run and in Optuna's storage).

    Attributes:
        trials: finished trials (complete or pruned), the default one included; ``search_trials`` excludes it.
        sampler: the samplers that chose the finished search trials (``sobol``, ``sobol+tpe``, ``tpe``, ``none``).
        searched: at least :data:`MIN_SEARCH_TRIALS` search trials finished, so the best values are a search's.
        tried: per parameter, the distinct values the finished trials ran with.
    """

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
    search_trials: int = 0
    sampler: str = "none"
    searched: bool = False
    tried: dict[str, int] | None = None


def _run_training(cfg: DictConfig, **kwargs: Any) -> dict[str, Any]:
    # TensorFlow is imported here, not at module import, so --help and --cfg stay fast.
    from lstm_influence.training.runner import run

    return run(cfg, **kwargs)


def _check_tune(tune_cfg: DictConfig) -> None:
    if tune_cfg.trials < 1:
        raise ConfigError(f"tune.trials={tune_cfg.trials}: expected a positive number of trials")
    for key in ("startup_trials", "pruner_startup_trials", "pruner_warmup_epochs"):
        if tune_cfg[key] < 0:
            raise ConfigError(f"tune.{key}={tune_cfg[key]}: expected a number >= 0")
    if tune_cfg.label is not None and not LABEL_PATTERN.fullmatch(str(tune_cfg.label)):
        raise ConfigError(f"tune.label={tune_cfg.label!r}: expected letters, digits, '_' and '-' only")


def _pruner(tune_cfg: DictConfig) -> optuna.pruners.BasePruner:
    if tune_cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    # Epochs are steps 1..N; warmup w means epochs 1..w always run.
    return optuna.pruners.MedianPruner(
        n_startup_trials=int(tune_cfg.pruner_startup_trials), n_warmup_steps=int(tune_cfg.pruner_warmup_epochs) + 1
    )


class Study:
    """One strategy × dataset study: the Optuna study, its MLflow parent run and the trial loop.

    Args:
        cfg: a tuning config (``conf/tuning.yaml``: a training config plus ``tune``), e.g. from
            :func:`compose_tuning`.
        train_fn: trains one trial; the runner's :func:`lstm_influence.training.runner.run` unless given (tests).

    Raises:
        ConfigError: for a bad ``tune`` node or search space, before any trial.
    """

    def __init__(self, cfg: DictConfig, train_fn: TrainFn | None = None) -> None:
        self.tune_cfg = cfg.tune
        _check_tune(self.tune_cfg)
        self.base = training_config(cfg)
        check_keys(self.base)
        self.space = search_space(self.tune_cfg, self.base)
        self.dimensions = max(1, len(self.tune_cfg.space))
        self.defaults = default_values(self.base, self.space)
        self.train_fn = train_fn or _run_training
        self.strategy, self.dataset = str(self.base.strategy.name), str(self.base.dataset.name)
        # The config files chosen (a user's plug-in YAML may be named apart from its name key): what a tuned file
        # selects and is compared against.
        self.options = config_options(self.strategy, self.dataset)
        self.label = str(self.tune_cfg.label or f"{self.strategy}-{self.dataset}")
        self.name = study_name(self.base, self.space, str(self.tune_cfg.objective), int(self.tune_cfg.seed))
        self.uri = str(self.base.tracking.uri)
        self.client = tracking.make_client(self.uri)
        self.experiment_id = tracking.get_or_create_experiment(self.client, str(self.base.tracking.experiment))
        self.storage = storage_url(self.uri, self.tune_cfg.storage)
        self.study = optuna.create_study(
            study_name=self.name,
            storage=open_storage(self.storage),
            pruner=_pruner(self.tune_cfg),
            direction="minimize",
            load_if_exists=True,
        )
        self.parent: tracking.RunLogger | None = None

    # -- bookkeeping --------------------------------------------------------------------------------------------

    def trials(self, *states: TrialState) -> list[FrozenTrial]:
        """The study's trials in these states (all when none is given)."""
        return self.study.get_trials(deepcopy=False, states=states or None)

    def _fail_stale_trials(self) -> None:
        """Trials left RUNNING by a killed process: failed in Optuna (not counted, run again), KILLED in MLflow."""
        for trial in self.trials(TrialState.RUNNING):
            self.study.tell(trial.number, state=TrialState.FAIL)
            tracking.close_stale_trial_runs(self.client, self.experiment_id, self.name, trial.number)
            tracking.announce(f"tune: trial {trial.number} of {self.name} was left running; marked failed")

    def _open_parent(self) -> tracking.RunLogger:
        run_id = self.study.user_attrs.get(PARENT_ATTR)
        if run_id and tracking.reopen_run(self.client, run_id, self.experiment_id):
            return tracking.RunLogger(self.client, run_id, self.experiment_id, self.uri)
        tags = {
            RUN_TYPE: RUN_TUNE,
            STRATEGY: self.strategy,
            DATASET: self.dataset,
            OPTUNA_STUDY: self.name,
            OPTUNA_STORAGE: self.storage,
            STUDY_OBJECTIVE: f"{self.tune_cfg.objective} {VAL_NORM_LOSS}",
        }
        run_id = tracking.create_run(self.client, self.experiment_id, f"tune-{self.strategy}-{self.dataset}", tags)
        logger = tracking.RunLogger(self.client, run_id, self.experiment_id, self.uri)
        container = to_container(self.base)
        for key in ("tracking", "sweep"):
            container.pop(key, None)
        params = flatten(container)
        params.update(
            {
                "tune.objective": str(self.tune_cfg.objective),
                "tune.seed": self.tune_cfg.seed,
                "tune.startup_trials": self.tune_cfg.startup_trials,
                "tune.plan": sampling.SAMPLING_PLAN,
            }
        )
        params.update({f"space.{p.name}": json.dumps(p.describe(), sort_keys=True) for p in self.space})
        logger.log_params(params)
        logger.log_text(OmegaConf.to_yaml(OmegaConf.create(container)), "config.yaml")
        self.study.set_user_attr(PARENT_ATTR, run_id)
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
        self.study.enqueue_trial(fixed, user_attrs={"role": DEFAULT_ROLE, "sampler": sampling.DEFAULT})

    def _enqueue_design_point(self) -> None:
        """The next Sobol' point as a waiting trial, while the study is in its start-up phase (see
        :mod:`~.tuning.sampling`); a point already waiting (a stopped process) is not doubled."""
        if self.trials(TrialState.WAITING):
            return
        finished = self.trials(*COUNTED)
        if not self.space or not sampling.uses_design(len(finished), int(self.tune_cfg.startup_trials)):
            return
        index = sum(1 for t in finished if t.user_attrs.get("sampler") == sampling.SOBOL)
        values = sampling.design_values(self.space, index, self.dimensions, int(self.tune_cfg.seed))
        self.study.enqueue_trial(
            values, user_attrs={"role": SEARCH_ROLE, "sampler": sampling.SOBOL, "design_index": index}
        )

    # -- one trial ----------------------------------------------------------------------------------------------

    def run_trial(self) -> None:
        """Ask for the next trial, train it, and tell Optuna and MLflow how it ended (COMPLETE, PRUNED or FAIL)."""
        self._enqueue_design_point()
        self.study.sampler = sampling.tpe_sampler(self.tune_cfg.seed, len(self.trials()), self.tune_cfg.startup_trials)
        trial = self.study.ask()
        role = trial.user_attrs.get("role", SEARCH_ROLE)
        if "sampler" not in trial.user_attrs:
            trial.set_user_attr("sampler", sampling.TPE)
        values = dict(self.defaults)
        for param in self.space:
            if role == SEARCH_ROLE or param.contains(self.defaults[param.name]):
                values[param.name] = param.suggest(trial)
        trial.set_user_attr("values", values)
        hook = PruningHook(trial, epochs=int(self.base.train.epochs), prunable=role == SEARCH_ROLE)
        tags = {
            RUN_TYPE: RUN_TRIAL,
            OPTUNA_STUDY: self.name,
            TRIAL_NUMBER: trial.number,
            TRIAL_ROLE: role,
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
                self._annotate(trial, role, values, "FAIL", None, None)
            except Exception as error:  # the trial's own error is the one to report
                tracking.announce(f"tune: could not annotate failed trial {trial.number}: {error}")
            raise
        if hook.pruned_at is not None:
            self.study.tell(trial, state=TrialState.PRUNED)
            self._annotate(trial, role, values, "PRUNED", None, summary.get("run_id"))
            return
        diverged = bool(summary.get(DIVERGED_METRIC, 0.0))
        penalty = float(self.base.train.divergence_norm_loss)
        value = objective_value(hook.values, str(self.tune_cfg.objective), diverged=diverged, penalty=penalty)
        self.study.tell(trial, value)
        self._annotate(trial, role, values, "COMPLETE", value, summary.get("run_id"))
        metrics = {STUDY_TRIAL_VALUE: value, STUDY_BEST_SO_FAR: self.study.best_value}
        self.parent.log_metrics(metrics, step=trial.number)

    def _annotate(
        self, trial: Trial, role: str, values: Mapping[str, Any], state: str, value: float | None, run_id: str | None
    ) -> None:
        """The trial's MLflow run: its number, role, sampler and values as params, its Optuna state and score."""
        number = trial.number
        run_ids = (
            [run_id]
            if run_id
            else [r.info.run_id for r in tracking.trial_runs(self.client, self.experiment_id, self.name, number)]
        )
        for rid in run_ids[:1]:
            logger = tracking.RunLogger(self.client, rid, self.experiment_id, self.uri)
            logger.log_params(
                {
                    "trial.number": number,
                    "trial.role": role,
                    "trial.sampler": trial.user_attrs.get("sampler", sampling.TPE),
                    **{f"trial.{k}": v for k, v in values.items()},
                }
            )
            logger.set_tags({TRIAL_STATE: state})
            if value is not None:
                logger.log_metrics({TRIAL_OBJECTIVE: value})
            tracking.rename_run(self.client, rid, f"{self.strategy}-{self.dataset}-t{number}")

    # -- the whole study ----------------------------------------------------------------------------------------

    def run(self) -> TuneResult:
        """Run the missing trials of the budget (resuming a stopped study), then summarise and write the best file."""
        self._fail_stale_trials()
        self.parent = self._open_parent()
        budget = int(self.tune_cfg.trials)
        done = len(self.trials(*COUNTED))
        tracking.announce(
            f"tune: study {self.name} ({self.storage}): {done} of {budget} trials done" + (", resuming" if done else "")
        )
        self._enqueue_default()
        status = tracking.FINISHED
        error_text = None
        try:
            while len(self.trials(*COUNTED)) < budget:
                self.run_trial()
        except KeyboardInterrupt:
            status = tracking.KILLED
            raise
        except BaseException as error:
            status = tracking.FAILED
            error_text = f"{type(error).__name__}: {error}"
            raise
        finally:
            try:
                result = self._summarize(budget, write=status == tracking.FINISHED)
            finally:
                tracking.close_run(self.client, self.parent.run_id, status, error_text)
        tracking.announce(tracking.ui_hint(self.uri, self.experiment_id, self.parent.run_id))
        return result

    def _summarize(self, budget: int, *, write: bool) -> TuneResult:
        complete = self.trials(TrialState.COMPLETE)
        pruned = self.trials(TrialState.PRUNED)
        failed = self.trials(TrialState.FAIL)
        finished = [*complete, *pruned]
        search = [t for t in finished if t.user_attrs.get("role") != DEFAULT_ROLE]
        sampler = sampling.describe_samplers([t.user_attrs.get("sampler", sampling.TPE) for t in search])
        searched = len(search) >= MIN_SEARCH_TRIALS
        tried = {
            p.name: len({json.dumps(t.user_attrs.get("values", {}).get(p.name)) for t in finished}) for p in self.space
        }
        best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
        defaults = [t for t in complete if t.user_attrs.get("role") == DEFAULT_ROLE]
        default_value = defaults[-1].value if defaults else None
        best_values = dict(best.user_attrs.get("values", {})) if best else {}
        tuned_path: Path | None = None
        if write and best is not None:
            tuned_path = self._write(best, best_values, default_value, len(finished), len(pruned), sampler, searched)
        tags: dict[str, Any] = {
            STUDY_BUDGET: budget,
            TRIALS_DONE: len(finished),
            TRIALS_PRUNED: len(pruned),
            TRIALS_FAILED: len(failed),
            SEARCH_TRIALS: len(search),
            STUDY_SAMPLER: sampler,
            STUDY_SEARCHED: searched,
        }
        tags |= {f"{TRIED_PREFIX}{name}": count for name, count in tried.items()}
        metrics: dict[str, float] = {}
        if best is not None:
            tags |= {BEST_TRIAL: best.number, BEST_IS_DEFAULT: best.user_attrs.get("role") == DEFAULT_ROLE}
            tags |= {f"{BEST_PREFIX}{name}": json.dumps(value) for name, value in best_values.items()}
            metrics[TUNE_BEST_VALUE] = best.value
        if default_value is not None:
            metrics[TUNE_DEFAULT_VALUE] = default_value
            if best is not None:
                metrics[TUNE_IMPROVEMENT] = default_value - best.value
                if default_value:
                    metrics[TUNE_RELATIVE_IMPROVEMENT] = (default_value - best.value) / default_value
        if tuned_path is not None:
            tags[TUNED_CONFIG] = str(tuned_path)
            tags[TUNED_LABEL] = self.label
        self.parent.set_tags(tags)
        self.parent.log_metrics(metrics)
        return TuneResult(
            study=self.name,
            storage=self.storage,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent.run_id,
            budget=budget,
            trials=len(finished),
            pruned=len(pruned),
            failed=len(failed),
            best_trial=best.number if best else None,
            best_value=best.value if best else None,
            best_values=best_values,
            default_value=default_value,
            tuned_config=tuned_path,
            label=self.label,
            search_trials=len(search),
            sampler=sampler,
            searched=searched,
            tried=tried,
        )

    def _write(
        self,
        best: FrozenTrial,
        values: Mapping[str, Any],
        default_value: float | None,
        done: int,
        pruned: int,
        sampler: str,
        searched: bool,
    ) -> Path:
        config_dir, packaged = resolve_config_dir(self.tune_cfg.config_dir)
        path = config_dir / TUNED_GROUP / f"{self.label}.yaml"
        best_cfg = apply_params(self.base, self.space, values)
        content = tuned_content(best_cfg, reference_config(*self.options), self.space)
        versus = f"vs the default configuration {default_value:.6g}" if default_value is not None else ""
        search = done - (1 if default_value is not None else 0)
        how = (
            f"{search} search trials ({sampler}, seed {self.tune_cfg.seed})"
            if searched
            else f"NOT a search: {search} search trial(s) besides the default, so these values are not tuned"
        )
        header = [
            f"Tuned configuration of strategy={self.strategy} on dataset={self.dataset} (lstm_influence.tune).",
            f"Study {self.name} in {self.storage}; MLflow parent run {self.parent.run_id} ({self.uri}).",
            f"Objective: {self.tune_cfg.objective} {VAL_NORM_LOSS} after up to {self.base.train.epochs} epochs, "
            f"validation split only, seed {self.base.seed}; {how}.",
            f"Best {best.value:.6g} (trial {best.number}, {best.user_attrs.get('role', SEARCH_ROLE)}) {versus}; "
            f"{done} of {self.tune_cfg.trials} trials ({pruned} pruned).",
            "",
            f"Train it:  {selection_hint(self.label, config_dir, packaged)}",
            f"Compare every tuned configuration on fresh seeds:  python -m lstm_influence -m "
            f"{'' if packaged else f'--config-dir {config_dir} '}experiment=compare_tuned",
        ]
        strategy_option, dataset_option = self.options
        write_tuned_config(path, strategy=strategy_option, dataset=dataset_option, content=content, header=header)
        tracking.announce(
            f"tune: best configuration written to {path}\n      {selection_hint(self.label, config_dir, packaged)}"
        )
        return path


def tune(cfg: DictConfig, *, train_fn: TrainFn | None = None) -> TuneResult:
    """Tune ``cfg``'s strategy on its dataset within ``cfg.tune.trials`` trials (resuming a stopped study).

    Args:
        cfg: a tuning config (``conf/tuning.yaml``), e.g. from :func:`compose_tuning`.
        train_fn: trains one trial; the runner's :func:`lstm_influence.training.runner.run` unless given (tests).

    Returns:
        The study's summary; the best configuration is written as ``<config_dir>/tuned/<label>.yaml``.

    Raises:
        ConfigError: before any trial, for a bad ``tune`` node or search space.
    """
    return Study(cfg, train_fn).run()


def compose_tuning(overrides: Sequence[str] = ()) -> DictConfig:
    """The tuning config for these command-line style overrides, e.g. ``["strategy=bias_init", "tune.trials=5"]``."""
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(config_name=TUNING_CONFIG_NAME, overrides=list(overrides))
