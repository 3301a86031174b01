"""Equal-budget hyperparameter tuning per strategy × dataset with Optuna; every trial is an MLflow run.

Usage::

    python -m lstm_influence.tune strategy=bias_init dataset=financial tune.trials=20
    python -m lstm_influence.tune -m tune=all experiment=compare   # every strategy × dataset, compare's sizes
    python -m lstm_influence +tuned=bias_init-financial seed=1       # train one tuned configuration
    python -m lstm_influence -m experiment=compare_tuned             # every tuned configuration × fresh seeds

The protocol:

* Every strategy × dataset gets the same search space (``conf/tune/default.yaml``) and the same number of trials,
  ``tune.trials``. A strategy's own keys (bias_init's chrono ``t_max``, extra_variable's ``l2``) are sampled only
  when that strategy is selected (``when``), inside the same budget.
* Trial 0 is the default configuration, so the tuned-versus-default difference is measured in the same study, on
  the same seed and data. The start-up trials are a scrambled Sobol' design shared by every study, then TPE
  (:mod:`~.tuning.sampling`); a study with fewer than two finished search trials is reported as not
  searched.
* A trial trains ``train.epochs`` epochs on the training split and is scored on the validation split only, by
  ``tune.objective`` over its per-epoch ``val/norm_loss`` (default ``final``: after the last epoch). The test
  split is never read (the trial's run context says ``evaluate_test=False``). A diverged trial scores
  ``train.divergence_norm_loss``.
* A median pruner stops a trial whose ``val/norm_loss`` trails the median of earlier trials at the same epoch; a
  pruned trial counts toward the budget.
* The best configuration is written as ``<config_dir>/tuned/<label>.yaml`` (:mod:`~.tuning.tuned_files`).

MLflow: one parent run per study (``run_type=tune``) and one child run per trial (``run_type=trial``, params
``trial.number``, ``trial.role``, ``trial.sampler`` and ``trial.<name>`` for each value in the space), made and
found through :mod:`lstm_influence.tracking` (:mod:`~lstm_influence.tracking.studies`). Optuna: ``optuna.db`` beside
the MLflow SQLite store, created under the same kind of file lock, so parallel studies start safely. The study name
hashes the strategy, the dataset, the rest of the configuration, the space, the objective, the seed and the sampling
plan, so the same command resumes the study: finished trials count toward the budget, the parent run is reused, and
a trial left running by a killed process is marked failed and run again. Run one process per study at a time.

Modules: :mod:`~.tuning.space` (the search space), :mod:`~.tuning.sampling` (which trials are drawn),
:mod:`~.tuning.scoring` (a trial's score and its pruning hook), :mod:`~.tuning.storage` (the Optuna storage and the
study's name), :mod:`~.tuning.study` (the study lifecycle, :class:`Study`), :mod:`~.tuning.results` (what the trials
add up to), :mod:`~.tuning.tuned_files` (the tuned configs) and :mod:`~lstm_influence.tune` (the command). The
parent run is :class:`lstm_influence.orchestration.jobs.ParentRun`, shared with sweeps. The results table is
:func:`lstm_influence.analysis.tuning_report.tuning_results`.
"""

from lstm_influence.orchestration.tuning.results import TuneResult
from lstm_influence.orchestration.tuning.scoring import objective_value
from lstm_influence.orchestration.tuning.space import Param, apply_params, default_values, search_space, training_config
from lstm_influence.orchestration.tuning.storage import open_storage, storage_url, study_name
from lstm_influence.orchestration.tuning.study import Study, compose_tuning, tune

__all__ = [
    "Param",
    "Study",
    "TuneResult",
    "apply_params",
    "compose_tuning",
    "default_values",
    "objective_value",
    "open_storage",
    "search_space",
    "storage_url",
    "study_name",
    "training_config",
    "tune",
]
