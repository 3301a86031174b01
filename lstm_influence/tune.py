"""The tuning command: ``python -m lstm_influence.tune`` (one study, or ``-m tune=all`` for every pair).

``conf/tuning.yaml`` selects no Hydra callback: a tuning ``-m`` sweep is a set of independent studies, each with its
own parent run and its own resume (:mod:`lstm_influence.orchestration.tuning`), so the training sweep's parent run
(:mod:`lstm_influence.orchestration.sweep`) is not attached.
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lstm_influence.config.compose import CONFIG_MODULE
from lstm_influence.config.errors import ConfigError
from lstm_influence.orchestration.tuning.study import TUNING_CONFIG_NAME, tune


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name=TUNING_CONFIG_NAME)
def main(cfg: DictConfig) -> float | None:
    """Tune the composed strategy × dataset; returns the best validation score (Hydra prints nothing of it)."""
    if cfg.tune.name == "all" and HydraConfig.get().mode != RunMode.MULTIRUN:
        raise ConfigError(
            "tune=all tunes every strategy × dataset as a sweep: add -m (python -m lstm_influence.tune -m tune=all)"
        )
    return tune(cfg).best_value


if __name__ == "__main__":
    main()
