"""The names runs are recorded under: tags, run types and the control arm (the metrics are in
:mod:`lstm_influence.metrics`).

Users' scripts, the MLflow UI's filters and the analysis all rely on these exact strings, so each is written once,
here, and imported everywhere else. This module imports nothing, so the command line's help, the configs and the
analysis can use it without pulling in MLflow, Keras or TensorFlow.
"""

from __future__ import annotations

# The arm every other arm is compared with unless the analysis is told another (compare.py --control).
CONTROL_ARM = "baseline"

# --- tags -------------------------------------------------------------------------------------------------------
STRATEGY = "strategy"
DATASET = "dataset"
TASK = "task"  # the dataset family's task, where it has several (synthetic: adding, copy, sine)
GATE_METRICS = "gate_metrics"  # why the gates/* metrics are absent or partial, where they are
SEED = "seed"
ARM = "arm"  # a named setting of a strategy; the strategy's name when the run has no arm
CONFIG_HASH = "config_hash"  # the resolved config without tracking keys: how sweeps recognise a finished job
RUN_TYPE = "run_type"
PARENT_RUN_ID = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"  # MLflow's copy of the run name, for runs whose run_name attribute is empty
SYSTEM_TAG_PREFIX = "mlflow."  # tags MLflow sets itself
SWEEP_ID = "sweep_id"
SWEEP_ATTEMPT = "sweep_attempt"
TF_THREADS = "tf_threads"
ERROR = "error"  # why a run ended FAILED
DIVERGED = "diverged"  # why a run diverged (the metric stab/diverged says whether)
STOPPED_EARLY = "stopped_early"  # what stopped a run before its budget (the metric tune/pruned says whether)
SUPERSEDED_BY = "superseded_by"  # on a soft-deleted run: the run that re-ran its config

# --- provenance: on every run (see tracking/provenance.py) ---------------------------------------------------------
GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own tag: the UI's "Source" column links the commit
GIT_BRANCH = "mlflow.source.git.branch"
GIT_DIRTY = "git_dirty"  # true: files differ from the commit, which alone does not reproduce the run
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
VERSION_PREFIX = "version."  # version.python, version.lstm_influence, version.keras, version.tensorflow, ...
KERAS_BACKEND = "keras_backend"  # tensorflow or jax
CPU = "cpu"  # the processor's model name
CPU_CORES = "cpu_cores"  # the cores this process could run on

# --- tuning: a study's parent run and its trials' runs --------------------------------------------------------------
OPTUNA_STUDY = "optuna_study"  # the Optuna study's name, on the parent and on every trial's run
OPTUNA_STORAGE = "optuna_storage"  # the Optuna storage URL, on the parent
TRIAL_NUMBER = "trial_number"
TRIAL_ROLE = "trial_role"  # default (the default configuration) or search
TRIAL_STATE = "trial_state"  # how Optuna ended the trial: COMPLETE, PRUNED or FAIL
# the study's summary, on its parent run
STUDY_OBJECTIVE = "objective"  # what the trials are scored by, e.g. "final val/norm_loss" (lower is better)
STUDY_BUDGET = "budget"  # trials the study was given
TRIALS_DONE = "trials_done"  # finished trials: complete or pruned, the default one included
TRIALS_PRUNED = "trials_pruned"
TRIALS_FAILED = "trials_failed"
SEARCH_TRIALS = "search_trials"  # finished trials besides the default one
STUDY_SAMPLER = "sampler"  # which samplers chose the search trials: sobol, sobol+tpe, tpe or none
STUDY_SEARCHED = "searched"  # True when enough search trials finished for the best values to be a search's
BEST_TRIAL = "best_trial"
BEST_IS_DEFAULT = "best_is_default"
BEST_PREFIX = "best."  # best.<parameter>: the best trial's value, as JSON
TRIED_PREFIX = "tried."  # tried.<parameter>: how many distinct values the finished trials ran with
TUNED_CONFIG = "tuned_config"  # the tuned-config file written
TUNED_LABEL = "tuned_label"  # its label: select it with +tuned=<label>

# --- run types (the value of the run_type tag) --------------------------------------------------------------------
RUN_TRAIN = "train"
RUN_SWEEP = "sweep"
RUN_TUNE = "tune"
RUN_TRIAL = "trial"
