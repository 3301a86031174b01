"""Training runs in MLflow: opening and closing one, logging to it in batches, and finding runs again.

Runs are driven through :class:`mlflow.tracking.MlflowClient` with explicit run ids rather than MLflow's fluent
"active run" state, so a worker process that is reused across sweep jobs can never log into the wrong run.
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from mlflow.entities import Metric, Param, Run, RunStatus, RunTag, ViewType
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lstm_influence.config import arm_name, config_hash, flatten, run_name, to_container
from lstm_influence.tracking.names import ARM, CONFIG_HASH, DATASET, ERROR, PARENT_RUN_ID, RUN_TRAIN, RUN_TYPE, SEED
from lstm_influence.tracking.names import STRATEGY as STRATEGY_TAG
from lstm_influence.tracking.store import get_or_create_experiment, make_client

MAX_PARAM_LENGTH = 6000  # MLflow 3's limit on a param value
BATCH_LIMIT = 100  # params per log_batch call
SEARCH_PAGE = 1000  # runs per search_runs page, MLflow's largest for a SQL store

FINISHED = RunStatus.to_string(RunStatus.FINISHED)
FAILED = RunStatus.to_string(RunStatus.FAILED)
KILLED = RunStatus.to_string(RunStatus.KILLED)
RUNNING = RunStatus.to_string(RunStatus.RUNNING)


def search_all_runs(
    client: MlflowClient,
    experiment_id: str,
    filter_string: str = "",
    *,
    view: int = ViewType.ACTIVE_ONLY,
    order_by: Sequence[str] = (),
) -> list[Run]:
    """Every run of the experiment that matches ``filter_string``, across result pages.

    Args:
        filter_string: MLflow's search syntax, e.g. ``"tags.run_type = 'train'"``; empty: every run.
        view: ``ViewType.ACTIVE_ONLY`` (soft-deleted runs left out), ``DELETED_ONLY`` or ``ALL``.
        order_by: e.g. ``["attributes.start_time DESC"]``; empty: MLflow's order (newest first).
    """
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string,
            run_view_type=view,
            max_results=SEARCH_PAGE,
            order_by=list(order_by) or None,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def finished_runs_by_hash(client: MlflowClient, experiment_id: str, config_hash: str | None = None) -> dict[str, Run]:
    """The FINISHED training runs of the experiment by ``config_hash`` (the earliest one where there are several).

    Args:
        config_hash: look for this configuration only (one cheap query); None: every configuration.
    """
    query = f"attributes.status = '{FINISHED}' and tags.{RUN_TYPE} = '{RUN_TRAIN}'"
    if config_hash is not None:
        query += f" and tags.{CONFIG_HASH} = '{config_hash}'"
    runs = sorted(search_all_runs(client, experiment_id, query), key=lambda run: run.info.start_time or 0)
    found: dict[str, Run] = {}
    for run in runs:
        found.setdefault(run.data.tags.get(CONFIG_HASH, ""), run)
    found.pop("", None)
    return found


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _clamp_infinite(value: Any) -> float:
    # MLflow's SQL store cannot hold ±inf; NaN it keeps, and a NaN loss must stay visible as NaN.
    number = float(value)
    return number if not math.isinf(number) else math.copysign(sys.float_info.max, number)


class RunLogger:
    """Logs to one MLflow run: params, tags and metrics in batches, artifacts from memory."""

    def __init__(self, client: MlflowClient, run_id: str, experiment_id: str, uri: str) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.uri = uri

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(key, _param_value(value)) for key, value in params.items()]
        for start in range(0, len(items), BATCH_LIMIT):
            self.client.log_batch(self.run_id, params=items[start : start + BATCH_LIMIT])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """One MLflow call for all of ``metrics`` at ``step``; None values are skipped, ±inf clamped to ±max float."""
        timestamp = int(time.time() * 1000)
        batch = [
            Metric(key, _clamp_infinite(value), timestamp, step) for key, value in metrics.items() if value is not None
        ]
        for start in range(0, len(batch), BATCH_LIMIT):
            self.client.log_batch(self.run_id, metrics=batch[start : start + BATCH_LIMIT])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])

    def log_json(self, obj: Any, artifact_file: str) -> None:
        self.client.log_text(self.run_id, json.dumps(obj, indent=2, sort_keys=True, default=str), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, path, artifact_path)


def run_tags(cfg: DictConfig) -> dict[str, str]:
    """The contract's tags for a training run of ``cfg``."""
    return {
        STRATEGY_TAG: str(cfg.strategy.name),
        ARM: arm_name(cfg),
        DATASET: str(cfg.dataset.name),
        SEED: str(cfg.seed),
        CONFIG_HASH: config_hash(cfg),
        RUN_TYPE: RUN_TRAIN,
    }


@contextmanager
def training_run(
    cfg: DictConfig,
    *,
    parent_run_id: str | None = None,
    extra_tags: Mapping[str, Any] | None = None,
) -> Iterator[RunLogger]:
    """Open the MLflow run for ``cfg``, log its params and resolved config, and close it whatever happens.

    The run ends FINISHED when the body returns, KILLED on Ctrl-C, and FAILED with an ``error`` tag (the
    exception's type and message) and a ``traceback.txt`` artifact when the body raises; the exception is
    re-raised so the process still fails.
    """
    client = make_client(cfg.tracking.uri)
    experiment_id = get_or_create_experiment(client, cfg.tracking.experiment)
    tags = run_tags(cfg)
    if parent_run_id:
        tags[PARENT_RUN_ID] = parent_run_id
    tags.update({key: str(value) for key, value in (extra_tags or {}).items()})
    run = client.create_run(experiment_id, run_name=run_name(cfg), tags=tags)
    logger = RunLogger(client, run.info.run_id, experiment_id, cfg.tracking.uri)
    try:
        logger.log_params(flatten(to_container(cfg)))
        logger.log_text(OmegaConf.to_yaml(OmegaConf.create(to_container(cfg))), "config.yaml")
        yield logger
    except KeyboardInterrupt:
        client.set_terminated(logger.run_id, KILLED)
        raise
    except BaseException as error:
        message = f"{type(error).__name__}: {error}"
        try:
            client.set_tag(logger.run_id, ERROR, message[:5000])
            client.log_text(logger.run_id, traceback.format_exc(), "traceback.txt")
        finally:
            client.set_terminated(logger.run_id, FAILED)
        raise
    else:
        client.set_terminated(logger.run_id, FINISHED)
