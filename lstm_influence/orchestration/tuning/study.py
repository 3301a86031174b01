"""The study lifecycle: one strategy × dataset tuned within a fixed trial budget, resumable, recorded in MLflow.

:class:`Study` opens (or resumes) the Optuna study and its MLflow parent run, runs trials until the budget of
finished trials is reached, and summarises: the best trial, the default configuration's score, which samplers ran
(:mod:`~.tuning.sampling`), and the tuned-config file (:mod:`~.tuning.tuned_files`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, Trial, TrialState

from lstm_influence import tracking
from lstm_influence.config.compose import compose
from lstm_influence.config.errors import ConfigError
from lstm_influence.config.identity import UNHASHED_KEYS, flatten, to_container
from lstm_influence.config.schema import check_keys
from lstm_influence.metrics import (
    DIVERGED_METRIC,
    STUDY_BEST_SO_FAR,
    STUDY_TRIAL_VALUE,
    TRIAL_OBJECTIVE,
    VAL_NORM_LOSS,
)
from lstm_influence.names import (
    DATASET,
    OPTUNA_STORAGE,
    OPTUNA_STUDY,
    RUN_TRIAL,
    RUN_TUNE,
    RUN_TYPE,
    STRATEGY,
    STUDY_OBJECTIVE,
    TRIAL_NUMBER,
    TRIAL_ROLE,
    TRIAL_STATE,
    TUNED_CONFIG,
    TUNED_LABEL,
)
from lstm_influence.orchestration import jobs
from lstm_influence.orchestration.tuning import sampling
from lstm_influence.orchestration.tuning.results import DEFAULT_ROLE, SEARCH_ROLE, Tally, TuneResult, tally
from lstm_influence.orchestration.tuning.scoring import PruningHook, objective_value, pruner
from lstm_influence.orchestration.tuning.space import apply_params, default_values, search_space, training_config
from lstm_influence.orchestration.tuning.storage import open_storage, storage_url, study_name
from lstm_influence.orchestration.tuning.tuned_files import (
    TUNED_GROUP,
    config_options,
    reference_config,
    resolve_config_dir,
    selection_hint,
    tuned_content,
    write_tuned_config,
)
from lstm_influence.training.context import RunContext

TUNING_CONFIG_NAME = "tuning"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
PARENT_ATTR = "mlflow_parent_run_id"  # the Optuna study's user attribute holding its MLflow parent run
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_-]+")

TrainFn = Callable[[DictConfig, RunContext], dict[str, Any]]


def _check_tune(tune_cfg: DictConfig) -> None:
    if tune_cfg.trials < 1:
        raise ConfigError(f"tune.trials={tune_cfg.trials}: expected a positive number of trials")
    for key in ("startup_trials", "pruner_startup_trials", "pruner_warmup_epochs"):
        if tune_cfg[key] < 0:
            raise ConfigError(f"tune.{key}={tune_cfg[key]}: expected a number >= 0")
    if tune_cfg.label is not None and not LABEL_PATTERN.fullmatch(str(tune_cfg.label)):
        raise ConfigError(f"tune.label={tune_cfg.label!r}: expected letters, digits, '_' and '-' only")


class Study:
    """One strategy × dataset study: the Optuna study, its MLflow parent run and the trial loop.

    Args:
        cfg: a tuning config (``conf/tuning.yaml``: a training config plus ``tune``), e.g. from
            :func:`compose_tuning`.
        train_fn: trains one trial, ``train_fn(cfg, context)``; :func:`lstm_influence.orchestration.jobs.train`
            (the runner) unless given (tests).

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
        self.train_fn = train_fn or jobs.train
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
            pruner=pruner(self.tune_cfg),
            direction="minimize",
            load_if_exists=True,
        )
        self.parent: jobs.ParentRun | None = None

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

    def _open_parent(self) -> jobs.ParentRun:
        """The study's parent run: the one an earlier process left (its id is a user attribute of the Optuna
        study), reopened, or a new one."""
        tags = {
            RUN_TYPE: RUN_TUNE,
            STRATEGY: self.strategy,
            DATASET: self.dataset,
            OPTUNA_STUDY: self.name,
            OPTUNA_STORAGE: self.storage,
            STUDY_OBJECTIVE: f"{self.tune_cfg.objective} {VAL_NORM_LOSS}",
        }
        parent = jobs.ParentRun.open(
            self.client,
            self.uri,
            self.experiment_id,
            existing=self.study.user_attrs.get(PARENT_ATTR),
            name=f"tune-{self.strategy}-{self.dataset}",
            tags=tags,
            describe=self._describe_parent,
        )
        if parent.created:
            self.study.set_user_attr(PARENT_ATTR, parent.run_id)
            for key, value in {"strategy": self.strategy, "dataset": self.dataset}.items():
                self.study.set_user_attr(key, value)
        return parent

    def _describe_parent(self, logger: tracking.RunLogger) -> None:
        """What a new parent records once: the configuration every trial starts from, the objective and the space."""
        container = to_container(self.base)
        for key in UNHASHED_KEYS:  # the store and the sweep settings are not part of what is tuned
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
            context = RunContext(parent_run_id=self.parent.run_id, tags=tags, epoch_hook=hook, evaluate_test=False)
            summary = self.train_fn(apply_params(self.base, self.space, values), context)
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
        self.parent.logger.log_metrics(metrics, step=trial.number)

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
                self.parent.close(status, error_text)
        tracking.announce(tracking.ui_hint(self.uri, self.experiment_id, self.parent.run_id))
        return result

    def _summarize(self, budget: int, *, write: bool) -> TuneResult:
        summary = tally(
            self.trials(TrialState.COMPLETE), self.trials(TrialState.PRUNED), self.trials(TrialState.FAIL), self.space
        )
        tuned_path = self._write(summary) if write and summary.best is not None else None
        tags = summary.tags(budget)
        if tuned_path is not None:
            tags |= {TUNED_CONFIG: str(tuned_path), TUNED_LABEL: self.label}
        self.parent.mark(tags)
        self.parent.logger.log_metrics(summary.metrics())
        best = summary.best
        return TuneResult(
            study=self.name,
            storage=self.storage,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent.run_id,
            budget=budget,
            trials=summary.finished,
            pruned=summary.pruned,
            failed=summary.failed,
            best_trial=best.number if best else None,
            best_value=best.value if best else None,
            best_values=summary.best_values,
            default_value=summary.default_value,
            tuned_config=tuned_path,
            label=self.label,
            search_trials=summary.search,
            sampler=summary.sampler,
            searched=summary.searched,
            tried=summary.tried,
        )

    def _write(self, summary: Tally) -> Path:
        """The best configuration as ``<config_dir>/tuned/<label>.yaml``, its header saying how it was found."""
        best, values, default_value = summary.best, summary.best_values, summary.default_value
        done, pruned, sampler, searched = summary.finished, summary.pruned, summary.sampler, summary.searched
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
        train_fn: trains one trial, ``train_fn(cfg, context)``; :func:`lstm_influence.orchestration.jobs.train`
            (the runner) unless given (tests).

    Returns:
        The study's summary; the best configuration is written as ``<config_dir>/tuned/<label>.yaml``.

    Raises:
        ConfigError: before any trial, for a bad ``tune`` node or search space.
    """
    return Study(cfg, train_fn).run()


def compose_tuning(overrides: Sequence[str] = ()) -> DictConfig:
    """The tuning config for these command-line style overrides, e.g. ``["strategy=bias_init", "tune.trials=5"]``."""
    return compose(overrides, config_name=TUNING_CONFIG_NAME)
