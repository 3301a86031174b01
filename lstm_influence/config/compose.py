"""Compose the packaged Hydra configs from Python, exactly as the command line would."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

import lstm_influence.config.schema  # noqa: F401  (registers the schemas)

CONFIG_MODULE = "lstm_influence.conf"
CONFIG_NAME = "config"


def compose(
    overrides: Sequence[str] = (), *, return_hydra_config: bool = False, config_name: str = CONFIG_NAME
) -> DictConfig:
    """The resolved-on-access config for these command-line style overrides.

    Args:
        overrides: e.g. ``["strategy=bias_init", "train.epochs=2"]``.
        return_hydra_config: keep the ``hydra`` node (needed for ``${hydra:...}`` interpolations).
        config_name: the primary config: ``config`` (a run) or ``tuning`` (``python -m lstm_influence.tune``).

    Raises:
        hydra.errors.ConfigCompositionException: an unknown group option or key, or a value of the wrong type.
    """
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(
            config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config
        )
