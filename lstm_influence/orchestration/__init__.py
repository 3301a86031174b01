"""The orchestration stage: many runs as one experiment, each job ``run(cfg, context)``.

* :mod:`~lstm_influence.orchestration.jobs`: what sweeps and tuning share: one parent run each, resume by config
  hash, and the one call into the runner;
* :mod:`~lstm_influence.orchestration.plan`: a ``-m`` grid's jobs, their config hashes and the sweep's identity;
* :mod:`~lstm_influence.orchestration.sweep`: the Hydra callback of ``-m`` sweeps and the job it hands each worker;
* :mod:`~lstm_influence.orchestration.sweep_attempt`: one attempt of a sweep, its parent run opened and closed;
* :mod:`~lstm_influence.orchestration.progress`: the sweep's ``[k/N]`` lines and their record;
* :mod:`~lstm_influence.orchestration.tuning`: equal-budget hyperparameter tuning with Optuna.
"""
