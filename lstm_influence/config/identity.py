"""What a run is called and how it is recognised: its hash, its name, its tags, its params.

Two runs with the same :func:`config_hash` are the same run (a sweep resumes by it, a store keeps one FINISHED run
per hash), so what enters the hash is fixed: changing it orphans every stored run. The names
(:func:`run_name`, :func:`arm_name`, :func:`dataset_label`, :func:`dataset_task`) are the tags and run names users
filter by; :func:`flatten` turns a resolved config into MLflow params.

Pure functions of a composed config: no Hydra, no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any

from omegaconf import DictConfig, OmegaConf


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python containers (enum values as their strings), without Hydra's own node."""
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True, enum_to_str=True)
    container.pop("hydra", None)
    return container


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys; lists stay whole (as JSON) so a param is one value; enums become their
    strings."""
    flat: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}." if prefix or key else ""))
        return flat
    name = prefix[:-1]
    if isinstance(tree, (list, tuple)):
        flat[name] = json.dumps(tree, default=_plain)
    else:
        flat[name] = _plain(tree) if isinstance(tree, Enum) else tree
    return flat


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else str(value)


# Keys that say where and how a run is recorded, not what it is: two runs differing only there are the same run.
UNHASHED_KEYS = ("tracking", "sweep")


# Plug-in nodes whose ``_target_`` is left out of the hash: which code a built-in's YAML names is not part of what
# the run is, so moving a class keeps its stored runs' hashes (and their sweeps resume).
PLUGIN_GROUPS = ("strategy", "dataset")


def config_hash(cfg: DictConfig) -> str:
    """A stable hash of the resolved config without :data:`UNHASHED_KEYS` and the ``_target_`` of the
    :data:`PLUGIN_GROUPS`; an arm left null is not hashed either, so a config without an arm hashes the same whether
    or not it has the ``arm`` key (stored runs keep their hashes)."""
    container = to_container(cfg)
    for key in UNHASHED_KEYS:
        container.pop(key, None)
    for group in PLUGIN_GROUPS:
        if isinstance(container.get(group), dict):
            container[group].pop("_target_", None)
    if container.get("arm", "") is None:
        container.pop("arm")
    payload = json.dumps(container, sort_keys=True, default=_plain)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def arm_name(cfg: DictConfig) -> str:
    """The run's arm: ``cfg.arm`` when an arm is selected, else the strategy's name."""
    return str(cfg.get("arm") or cfg.strategy.name)


# A ``task`` that says how the target is read (``dataset=csv``) rather than which of a family's datasets it is.
TARGET_KINDS = ("regression", "classification")


def dataset_task(cfg: DictConfig) -> str | None:
    """The task of a dataset family with several (synthetic's ``adding``, ``copy``, ``sine``): ``dataset.task``
    where the dataset node has one, else None; it is the run's ``task`` tag. A ``task`` that is only the kind of
    target (``regression``, ``classification``: :data:`TARGET_KINDS`) names no dataset, so it is None too."""
    task = cfg.dataset.get("task") if isinstance(cfg.dataset, DictConfig) else None
    return None if task is None or str(task) in TARGET_KINDS else str(task)


def dataset_label(cfg: DictConfig) -> str:
    """The dataset part of the run name: the task where the family has several (``adding``), else the dataset's
    name (``financial``, ``csv``)."""
    return dataset_task(cfg) or str(cfg.dataset.name)


def run_name(cfg: DictConfig) -> str:
    """``{arm}-{dataset}-s{seed}``: the MLflow run name, unique within a sweep. The arm is the strategy's name
    unless one is selected; the dataset is :func:`dataset_label` (``chrono-adding-s0``, ``baseline-financial-s1``)."""
    return f"{arm_name(cfg)}-{dataset_label(cfg)}-s{cfg.seed}"


__all__ = [
    "PLUGIN_GROUPS",
    "TARGET_KINDS",
    "UNHASHED_KEYS",
    "arm_name",
    "config_hash",
    "dataset_label",
    "dataset_task",
    "flatten",
    "run_name",
    "to_container",
]
