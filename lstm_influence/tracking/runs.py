"""Runs in MLflow: creating, reopening, renaming and closing one, logging to it in batches, and finding runs again.

A training run is opened and closed by :func:`training_run`; the other runs (a sweep's or a study's parent) by
:func:`create_run`, :func:`reopen_run` and :func:`close_run`. Runs are driven through
:class:`mlflow.tracking.MlflowClient` with explicit run ids rather than MLflow's fluent "active run" state, so a
worker process that is reused across sweep jobs can never log into the wrong run.
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import LifecycleStage, Metric, Param, Run, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lstm_influence.config.identity import arm_name, config_hash, dataset_task, flatten, run_name, to_container
from lstm_influence.names import (
    ARM,
    CONFIG_HASH,
    DATASET,
    ERROR,
    PARENT_RUN_ID,
    RUN_TRAIN,
    RUN_TYPE,
    SEED,
    TASK,
)
from lstm_influence.names import STRATEGY as STRATEGY_TAG
from lstm_influence.tracking.provenance import dataset_inputs, provenance_tags
from lstm_influence.tracking.store import get_or_create_experiment, make_client

MAX_PARAM_LENGTH = 6000  # MLflow 3's limit on a param value
BATCH_LIMIT = 100  # params per log_batch call
SEARCH_PAGE = 1000  # runs per search_runs page, MLflow's largest for a SQL store
ERROR_LENGTH = 5000  # characters of an error message kept in the error tag (MLflow's limit on a tag value is 8000)

FINISHED = RunStatus.to_string(RunStatus.FINISHED)
FAILED = RunStatus.to_string(RunStatus.FAILED)
KILLED = RunStatus.to_string(RunStatus.KILLED)
RUNNING = RunStatus.to_string(RunStatus.RUNNING)
ENDED = (FINISHED, FAILED, KILLED)  # the statuses a run is closed with


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


def tag_filter(tags: Mapping[str, Any], status: str = "") -> str:
    """MLflow's filter string for runs whose tags equal ``tags`` (and whose status is ``status``, if given).

    Keys are quoted with backticks, so MLflow's own tags (``mlflow.parentRunId``) work as keys; values are compared
    as strings (``{"trial_number": 3}`` matches the tag ``"3"``). An empty mapping and no status match every run.

    Raises:
        ValueError: a key or value holds a quote character, which the filter syntax cannot carry.
    """
    clauses = []
    for key, value in tags.items():
        text = str(value)
        if "`" in key or "'" in text:
            raise ValueError(f"tag filter {key!r} = {text!r}: tag keys cannot hold '`' nor values \"'\"")
        clauses.append(f"tags.`{key}` = '{text}'")
    if status:
        clauses.append(f"attributes.status = '{status}'")
    return " and ".join(clauses)


def find_runs(client: MlflowClient, experiment_id: str, tags: Mapping[str, Any], *, status: str = "") -> list[Run]:
    """The active runs of the experiment whose tags equal ``tags`` (see :func:`tag_filter`), newest first.

    Args:
        tags: tag key -> value; a value of None leaves that key out (e.g. an optional attempt number).
        status: only runs with this status (``RUNNING``, ``FINISHED``, ...); empty: any.
    """
    query = tag_filter({key: value for key, value in tags.items() if value is not None}, status)
    runs = search_all_runs(client, experiment_id, query)
    return sorted(runs, key=lambda run: run.info.start_time or 0, reverse=True)


def finished_runs_by_hash(client: MlflowClient, experiment_id: str, config_hash: str | None = None) -> dict[str, Run]:
    """The FINISHED training runs of the experiment by ``config_hash`` (the earliest one where there are several).

    Args:
        config_hash: look for this configuration only (one cheap query); None: every configuration.
    """
    runs = find_runs(client, experiment_id, {RUN_TYPE: RUN_TRAIN, CONFIG_HASH: config_hash}, status=FINISHED)
    found: dict[str, Run] = {}
    for run in sorted(runs, key=lambda run: run.info.start_time or 0):
        found.setdefault(run.data.tags.get(CONFIG_HASH, ""), run)
    found.pop("", None)
    return found


# ---------------------------------------------------------------------------------------------------------------
# a run's life


def create_run(client: MlflowClient, experiment_id: str, name: str, tags: Mapping[str, Any]) -> str:
    """Open a new RUNNING run named ``name`` with ``tags`` (values written as strings) and the provenance tags of
    this process (:func:`~lstm_influence.tracking.provenance.provenance_tags`); returns its id."""
    tags = {**provenance_tags(), **tags}
    run = client.create_run(experiment_id, run_name=name, tags={key: str(value) for key, value in tags.items()})
    return run.info.run_id


def reopen_run(client: MlflowClient, run_id: str, experiment_id: str) -> bool:
    """Set an earlier run of the experiment back to RUNNING, to log into it again (a resumed sweep or study).

    Returns:
        False, changing nothing, when the run does not exist, is deleted or belongs to another experiment.
    """
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return False
    if run.info.lifecycle_stage != LifecycleStage.ACTIVE or run.info.experiment_id != experiment_id:
        return False
    client.update_run(run_id, status=RUNNING)
    return True


def rename_run(client: MlflowClient, run_id: str, name: str) -> None:
    """Give the run the display name ``name``."""
    client.update_run(run_id, name=name)


def close_run(client: MlflowClient, run_id: str, status: str, error: str | None = None) -> None:
    """End the run with ``status`` (:data:`FINISHED`, :data:`FAILED` or :data:`KILLED`).

    ``error`` (cut to :data:`ERROR_LENGTH` characters) goes into the ``error`` tag. A run that ends FINISHED without
    an error loses the ``error`` tag an earlier attempt left on it (a reopened parent), so the tag always explains
    the run's last ending.

    Raises:
        ValueError: ``status`` is not one of the statuses a run ends with.
    """
    if status not in ENDED:
        raise ValueError(f"close_run: status={status!r}, expected one of {', '.join(ENDED)}")
    if error is not None:
        client.set_tag(run_id, ERROR, error[:ERROR_LENGTH])
    elif status == FINISHED and ERROR in client.get_run(run_id).data.tags:
        client.delete_tag(run_id, ERROR)
    client.set_terminated(run_id, status)


def close_stale_runs(
    client: MlflowClient,
    experiment_id: str,
    tags: Mapping[str, Any],
    reason: str,
    *,
    mark: Mapping[str, Any] | None = None,
) -> list[Run]:
    """Close as KILLED the RUNNING runs with ``tags`` whose process is gone (killed, machine down).

    Args:
        tags: which runs (see :func:`find_runs`).
        reason: written into each run's ``error`` tag.
        mark: further tags to set on each closed run first (e.g. a trial's state).

    Returns:
        The runs it closed. Call it only while no live process logs into such runs.
    """
    stale = find_runs(client, experiment_id, tags, status=RUNNING)
    for run in stale:
        if mark:
            client.log_batch(run.info.run_id, tags=[RunTag(key, str(value)) for key, value in mark.items()])
        close_run(client, run.info.run_id, KILLED, reason)
    return stale


def end_fluent_runs() -> None:
    """End, KILLED, every run MLflow's fluent API (``mlflow.start_run``) left active in this process.

    This project logs through explicit run ids; a fluent run can only come from library code, and a worker process
    reused across sweep jobs must not carry one into its next job.
    """
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(KILLED)


# ---------------------------------------------------------------------------------------------------------------
# reading back


def metric_history(client: MlflowClient, run_id: str, metric: str) -> list[tuple[int, float]]:
    """Every value the run logged for ``metric`` as ``(step, value)`` pairs in logging order; empty when none."""
    return [(point.step, point.value) for point in client.get_metric_history(run_id, metric)]


def log_files(client: MlflowClient, run_id: str, files: Iterable[Path], *, root: Path, artifact_path: str) -> None:
    """Log ``files`` (each inside ``root``) as artifacts of the run, at their paths relative to ``root`` under
    ``artifact_path`` (``root/figures/a.png`` -> ``<artifact_path>/figures/a.png``).

    Raises:
        ValueError: a file lies outside ``root``.
    """
    base = root.resolve()
    for path in files:
        folder = Path(path).resolve().relative_to(base).parent
        destination = artifact_path if folder == Path(".") else f"{artifact_path}/{folder.as_posix()}"
        client.log_artifact(run_id, str(path), artifact_path=destination)


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _clamp_infinite(value: Any) -> float:
    """``value`` as a float that every MLflow store keeps: ±inf becomes ±the largest float, NaN stays NaN.

    A store's SQL column and a server's JSON cannot both hold ±inf, so an infinite loss is clamped to the largest
    finite float of its sign; a NaN loss (a diverged run) is kept as NaN, which MLflow stores and returns as NaN.
    """
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

    def log_dataset(self, label: str, splits: Mapping[str, Any], source: str | None = None) -> None:
        """Record the run's data as MLflow dataset inputs (:func:`.provenance.dataset_inputs`)."""
        self.client.log_inputs(self.run_id, datasets=dataset_inputs(label, splits, source))

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, path, artifact_path)


def run_tags(cfg: DictConfig) -> dict[str, str]:
    """The contract's tags for a training run of ``cfg`` (``task`` where the dataset family has several)."""
    tags = {
        STRATEGY_TAG: str(cfg.strategy.name),
        ARM: arm_name(cfg),
        DATASET: str(cfg.dataset.name),
        SEED: str(cfg.seed),
        CONFIG_HASH: config_hash(cfg),
        RUN_TYPE: RUN_TRAIN,
    }
    task = dataset_task(cfg)
    if task is not None:
        tags[TASK] = task
    return tags


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
    tags.update(extra_tags or {})
    logger = RunLogger(client, create_run(client, experiment_id, run_name(cfg), tags), experiment_id, cfg.tracking.uri)
    try:
        logger.log_params(flatten(to_container(cfg)))
        logger.log_text(OmegaConf.to_yaml(OmegaConf.create(to_container(cfg))), "config.yaml")
        yield logger
    except KeyboardInterrupt:
        close_run(client, logger.run_id, KILLED)
        raise
    except BaseException as error:
        try:
            client.log_text(logger.run_id, traceback.format_exc(), "traceback.txt")
        finally:
            close_run(client, logger.run_id, FAILED, f"{type(error).__name__}: {error}")
        raise
    else:
        close_run(client, logger.run_id, FINISHED)
