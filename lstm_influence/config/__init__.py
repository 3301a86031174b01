"""The config stage: compose the Hydra configs, type them, check them once, and name and hash a run.

* :mod:`~lstm_influence.config.schema`: the structured schemas of the framework's own groups and the one
  ``ConfigError``;
* :mod:`~lstm_influence.config.compose`: the packaged configs composed from Python, as the command line would;
* :mod:`~lstm_influence.config.plugins`: strategies and datasets found by ``_target_``, their signatures the schema.
"""
