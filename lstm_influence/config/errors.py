"""The one error a configuration mistake raises, importable without Hydra or OmegaConf (plug-ins raise it)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that cannot work; raised before anything is trained."""
