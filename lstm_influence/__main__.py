"""``python -m lstm_influence [overrides]``: train one run; ``-m`` sweeps grids of runs.

Examples::

    python -m lstm_influence                                   # baseline on the adding task, seed 0
    python -m lstm_influence strategy=bias_init strategy.preset=chrono train.epochs=20
    python -m lstm_influence -m strategy=baseline,bias_init seed=0,1,2
    python -m lstm_influence -m experiment=smoke hydra/launcher=joblib   # a preset grid, 2 jobs at a time

A sweep (``-m``) gets one MLflow parent run and resumes when run again: see :mod:`lstm_influence.orchestration.sweep`.
Each of its jobs finds its sweep in its own Hydra config (:func:`~lstm_influence.orchestration.sweep.sweep_job`).

A mistake in the config or the data (:data:`~.runner.USER_ERRORS`) ends the command with one line on
stderr, exit status 2 and no MLflow run; any other error keeps its traceback (exit status 1).
"""

from __future__ import annotations

import os
import sys

# TensorFlow's C++ start-up notes (CPU features, oneDNN) would bury the one line a user error prints; its errors stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hydra
from omegaconf import DictConfig

import lstm_influence.config.schema  # noqa: F401  (registers the schemas before Hydra composes)
from lstm_influence.config.compose import CONFIG_MODULE, CONFIG_NAME
from lstm_influence.metrics import BEST_VAL_LOSS
from lstm_influence.orchestration.sweep import sweep_job


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> float | None:
    job = sweep_job()
    if job is not None:  # a job of a -m sweep: a child run of the sweep's parent, skipped when already done
        return job.run(cfg)
    # TensorFlow is imported here, not at module import, so `--help` and `--cfg job` stay fast.
    from lstm_influence.training.runner import USER_ERRORS, run

    try:
        summary = run(cfg)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)  # SystemExit passes through Hydra, which would print a traceback for an Exception
    return summary.get(BEST_VAL_LOSS)


if __name__ == "__main__":
    main()
