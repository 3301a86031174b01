"""A sweep's plan, made in the launching process before any job: its jobs, their config hashes, its identity.

:func:`plan_jobs` expands the grid exactly as Hydra's basic sweeper will (its ``params``, then the command line) and
composes every job's config to get its ``config_hash``; :func:`sweep_id_for` names the sweep after the set of those
hashes, so the same grid is the same sweep (a resume). :func:`job_share` is each job's part of the machine, and
:func:`check_store_reaches_jobs` refuses a store the jobs could not write to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

from lstm_influence.config.errors import ConfigError
from lstm_influence.config.identity import config_hash
from lstm_influence.config.plugins import dataset_settings, strategy_settings
from lstm_influence.config.schema import check_keys
from lstm_influence.training.threads import JobShare, available_cores

# The basic sweeper's option of Hydra's ``hydra/sweeper`` group: the one sweeper whose grid plan_jobs can expand.
BASIC_SWEEPER = "basic"


@dataclasses.dataclass(frozen=True)
class Job:
    """One job of the grid: Hydra's job number, its overrides and the hash of its composed config."""

    num: int
    overrides: tuple[str, ...]
    config_hash: str


def expand_grid(overrides: list[Override]) -> list[tuple[str, ...]]:
    """Every job's overrides, in the order Hydra's basic sweeper launches them.

    Each key keeps the place of its first mention and the value of its last (a preset's ``params`` come first, so
    the command line overrides them), a sweep (``a,b``, ``range(3)``, ``glob(*)``) contributes each of its values,
    and the jobs are the Cartesian product with the last key varying fastest. Written with Hydra's public override
    API, so a Hydra release that reorganises its internals does not change it; a test holds it equal to the
    sweeper's order.

    Raises:
        ConfigError: an interval sweep (``interval(0,1)``), which only a search sweeper (e.g. Optuna) can use.
    """
    choices: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ConfigError(f"{override.input_line}: the basic sweeper takes lists, ranges and globs, not intervals")
    return list(itertools.product(*choices.values()))


def plan_jobs(config: DictConfig) -> list[Job] | None:
    """The sweep's jobs in Hydra's order, each with its ``config_hash``; None for a sweeper other than the basic one.

    Args:
        config: the multirun config Hydra gives ``on_multirun_start`` (with its ``hydra`` node).

    Raises:
        ConfigError: a job's config has keys no schema declares, a strategy or dataset setting its plug-in's
            signature refuses (:func:`check_plugins`), or the jobs do not share one tracking store.
    """
    if config.hydra.runtime.choices.get("hydra/sweeper") != BASIC_SWEEPER:
        return None
    loader = GlobalHydra.instance().config_loader()
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.params or {}).items()]
    arguments = [*params, *OmegaConf.to_container(config.hydra.overrides.task, resolve=False)]
    grid = expand_grid(OverridesParser.create(config_loader=loader).parse_overrides(arguments))
    store = (config.tracking.uri, config.tracking.experiment)
    jobs = []
    for num, job_overrides in enumerate(grid):
        job_config = loader.load_sweep_config(config, list(job_overrides))
        with open_dict(job_config):
            del job_config["hydra"]
        check_keys(job_config)
        check_plugins(job_config)
        if (job_config.tracking.uri, job_config.tracking.experiment) != store:
            raise ConfigError(
                f"job #{num} ({' '.join(job_overrides)}) logs to {job_config.tracking.uri} / "
                f"{job_config.tracking.experiment}, the sweep to {store[0]} / {store[1]}: a sweep has one store"
            )
        jobs.append(Job(num, tuple(job_overrides), config_hash(job_config)))
    return jobs


def check_plugins(job_config: DictConfig) -> None:
    """Check a job's strategy and dataset settings against their plug-ins' signatures, so that a misspelt key or a
    value outside a plug-in's choices stops the sweep before any run exists (the launching process imports the
    plug-ins for this, TensorFlow included, once). What only the data can tell (a strategy that does not fit the
    sequence length) is still found by each job.

    Raises:
        ConfigError: naming the key, the bad value and the valid keys or choices.
    """
    strategy_settings(job_config.strategy)
    dataset_settings(job_config.dataset)


def sweep_id_for(config: DictConfig, jobs: list[Job] | None) -> str:
    """``sweep.id``, else ``<preset>-<8 hex>`` from the set of the jobs' config hashes (the same grid, the same id)."""
    if config.sweep.id:
        return str(config.sweep.id)
    preset = config.hydra.runtime.choices.get("experiment") or "sweep"
    if jobs is not None:
        identity: Any = sorted({job.config_hash for job in jobs})
    else:  # another sweeper decides its jobs as it goes: identify the sweep by what it was given
        identity = [config_hash(without_hydra(config)), sweep_description(config)]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{preset}-{digest}"


def job_share(config: DictConfig, n_jobs: int | None) -> JobShare:
    """Each job's part of the machine, so that parallel jobs do not oversubscribe the cores.

    ``sweep.threads``, if set, fixes every job's threads. Otherwise the runner's ``train.threads=auto`` rule
    (:func:`lstm_influence.training.threads.threads_for`) chooses within the share: for joblib, the cores divided by the
    workers that run at once (no more workers than jobs); for Ray, the CPUs a task reserves
    (``hydra.launcher.ray.remote.num_cpus``, Ray's default 1); for the sequential launcher, every core.

    Raises:
        ConfigError: ``sweep.threads`` is not a positive integer.
    """
    if config.sweep.threads is not None:
        if config.sweep.threads < 1:
            raise ConfigError(f"sweep.threads={config.sweep.threads}: expected a positive integer or null (auto)")
        return JobShare(threads=int(config.sweep.threads))
    launcher = config.hydra.launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        workers = launcher.get("n_jobs")
        if workers is None:
            workers = 1
        elif workers < 0:  # joblib: -1 is every core, -2 all but one, ...
            workers = max(1, available_cores() + 1 + workers)
        if n_jobs:
            workers = min(workers, n_jobs)
        return JobShare(parallel_jobs=workers)
    if "ray" in target:
        remote = launcher.get("ray", {}).get("remote") or {}
        return JobShare(cores=max(1, int(remote.get("num_cpus", 1))))
    return JobShare()


def check_store_reaches_jobs(config: DictConfig) -> None:
    """Refuse a Ray cluster with a local store: jobs on other machines would each write to a file of their own.

    Raises:
        ConfigError: ``hydra.launcher.ray.init.address`` names a cluster and ``tracking.uri`` is a local file.
    """
    launcher = config.hydra.launcher
    if "ray" not in str(launcher.get("_target_", "")):
        return
    address = (launcher.get("ray", {}).get("init") or {}).get("address")
    uri = str(config.tracking.uri)
    local_file = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    if address in (None, "local") or not local_file:
        return
    raise ConfigError(
        f"hydra.launcher.ray.init.address={address} with tracking.uri={uri}: the jobs of a Ray cluster run on "
        "other machines, which cannot write to this machine's file; use tracking=server "
        "tracking.uri=http://HOST:PORT (an MLflow server that every node reaches)"
    )


def without_hydra(config: DictConfig) -> DictConfig:
    """A copy of ``config`` without Hydra's own node: the sweep's config as a run would see it."""
    config = OmegaConf.create(OmegaConf.to_container(config, resolve=False))
    config.pop("hydra", None)
    return config


def sweep_description(config: DictConfig) -> dict[str, Any]:
    """What the sweep was given: its preset, the command line's overrides and the preset's sweeper params."""
    return {
        "preset": config.hydra.runtime.choices.get("experiment"),
        "overrides": list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False)),
        "sweeper_params": dict(config.hydra.sweeper.get("params") or {}),
    }


def grid_values(jobs: list[Job]) -> dict[str, str]:
    """Each swept key and its values in order, e.g. ``{"seed": "0,1"}``; keys with one value are left out."""
    values: dict[str, list[str]] = {}
    for job in jobs:
        for override in job.overrides:
            key, _, value = override.partition("=")
            if value not in values.setdefault(key, []):
                values[key].append(value)
    return {key: ",".join(vals) for key, vals in values.items() if len(vals) > 1}


__all__ = [
    "Job",
    "check_plugins",
    "check_store_reaches_jobs",
    "expand_grid",
    "grid_values",
    "job_share",
    "plan_jobs",
    "sweep_description",
    "sweep_id_for",
    "without_hydra",
]
