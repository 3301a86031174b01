"""The orchestration stage: many runs as one experiment, each job ``run(cfg)``.

* :mod:`~lstm_influence.orchestration.sweep`: ``-m`` grids, one parent run, resume by config hash;
* :mod:`~lstm_influence.orchestration.progress`: the sweep's ``[k/N]`` lines and their record;
* :mod:`~lstm_influence.orchestration.tuning`: equal-budget hyperparameter tuning with Optuna.
"""
