"""The training stage: one run from a composed config to its logged metrics.

* :mod:`~lstm_influence.training.runner`: ``run(cfg)``, the plain function that trains and logs one run;
* :mod:`~lstm_influence.training.monitoring`: what a run records while it trains (steps, gates, epochs);
* :mod:`~lstm_influence.training.curves`: the summary metrics, pure functions of the recorded curves;
* :mod:`~lstm_influence.training.backend`: the per-backend training step (TensorFlow, JAX);
* :mod:`~lstm_influence.training.threads`: how many threads a run's TensorFlow gets.
"""
