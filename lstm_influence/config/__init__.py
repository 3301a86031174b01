"""The config stage: compose the Hydra configs, type them, check them once, and name and hash a run.

* :mod:`~lstm_influence.config.errors`: ``ConfigError``, the one error a configuration mistake raises (no Hydra);
* :mod:`~lstm_influence.config.schema`: the structured schemas of the framework's own groups and the check that a
  config has no key its schemas do not declare;
* :mod:`~lstm_influence.config.compose`: the packaged configs composed from Python, as the command line would;
* :mod:`~lstm_influence.config.plugins`: strategies and datasets found by ``_target_``, their signatures the schema;
* :mod:`~lstm_influence.config.validation`: :func:`validate`, the one check a run's config gets before anything is
  loaded or built, and the :class:`ValidConfig` it hands the run;
* :mod:`~lstm_influence.config.identity`: a run's hash, name and tags, and the config as flat params.

``validate`` and ``ValidConfig`` are loaded on first use (PEP 562), so that importing one module of this stage does
not import Hydra for all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstm_influence.config.validation import ValidConfig, validate

__all__ = ["ValidConfig", "validate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lstm_influence.config import validation

        return getattr(validation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
