"""The names runs are recorded under: tags, run types, metric names and the control arm.

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

# --- per-epoch metrics (step = epoch 1..N) ------------------------------------------------------------------------
TRAIN_LOSS = "train/loss"
VAL_LOSS = "val/loss"
VAL_NORM_LOSS = "val/norm_loss"
VAL_BPC = "val/bpc"
GRAD_GLOBAL_NORM = "grad/global_norm"
GRAD_MAX_NORM = "grad/max_norm"
EPOCH_TIME = "time/epoch_s"
GATES_FORGET_MEAN = "gates/forget_mean"
GATES_INPUT_MEAN = "gates/input_mean"
GATES_SATURATED_FRAC = "gates/saturated_frac"

# --- before training ----------------------------------------------------------------------------------------------
INIT_VAL_LOSS = "init/val_loss"
INIT_VAL_NORM_LOSS = "init/val_norm_loss"
BASELINE_VAL_LOSS = "baseline/val_loss"  # the trivial (memoryless) predictor
BASELINE_TEST_LOSS = "baseline/test_loss"


def reference_metric(predictor: str, split: str, normalised: bool = False) -> str:
    """The metric holding a reference predictor's loss, e.g. ``baseline/ridge/test_norm_loss``.

    Args:
        predictor: the reference predictor's name (``persistence``, ``ridge``, ``ngram``, ...).
        split: ``val`` or ``test``.
        normalised: the loss divided by the trivial predictor's loss on the same split.
    """
    return f"baseline/{predictor}/{split}_{'norm_loss' if normalised else 'loss'}"


# --- summary metrics ----------------------------------------------------------------------------------------------
FINAL_VAL_LOSS = "final/val_loss"
FINAL_EPOCH = "final/epoch"
BEST_VAL_LOSS = "best/val_loss"
BEST_EPOCH = "best/epoch"
TEST_LOSS = "test/loss"
TEST_NORM_LOSS = "test/norm_loss"
TEST_BPC = "test/bpc"
EPOCHS_TO_TARGET = "conv/epochs_to_target"
REACHED_TARGET = "conv/reached_target"
AULC = "conv/aulc"
LOSS_SPIKES = "stab/loss_spikes"
GRAD_SPIKES = "stab/grad_spikes"
DIVERGED_METRIC = "stab/diverged"
RETENTION = "influence/retention"
EXTRA_NORM_RATIO = "influence/extra_norm_ratio"

# --- tuning metrics -----------------------------------------------------------------------------------------------
TRIAL_OBJECTIVE = "tune/objective"  # on a trial's run: its score
TUNE_BEST_VALUE = "tune/best_value"  # on a study's parent: the best score, ...
TUNE_DEFAULT_VALUE = "tune/default_value"  # the default configuration's score in the same study,
TUNE_IMPROVEMENT = "tune/improvement"  # default - best,
TUNE_RELATIVE_IMPROVEMENT = "tune/relative_improvement"  # and that / default
STUDY_TRIAL_VALUE = "trial/value"  # on a study's parent at step = trial number: that trial's score,
STUDY_BEST_SO_FAR = "trial/best_value"  # and the best score so far

# The confirmatory metric of a comparison unless the user declares another.
PRIMARY_METRIC = TEST_NORM_LOSS
