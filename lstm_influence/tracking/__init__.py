"""All MLflow glue in one place: experiments, runs, tags, batched metric logging, artifacts and UI links.

Runs are driven through :class:`mlflow.tracking.MlflowClient` with explicit run ids rather than MLflow's fluent
"active run" state, so a worker process that is reused across sweep jobs can never log into the wrong run.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lstm_influence.config import config_hash, flatten, run_name, to_container
from lstm_influence.tracking.names import CONFIG_HASH, PARENT_RUN_ID, RUN_TYPE, SWEEP_ID  # noqa: F401 (re-exported)
from lstm_influence.tracking.names import ERROR as ERROR_TAG

MAX_PARAM_LENGTH = 6000  # MLflow 3's limit on a param value
BATCH_LIMIT = 100  # params per log_batch call
SEARCH_PAGE = 1000  # runs per search_runs page


def make_client(uri: str) -> MlflowClient:
    """A client for ``uri`` (``sqlite:///mlflow.db``, ``http://host:port``, ...)."""
    return MlflowClient(tracking_uri=uri)


def get_or_create_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if missing; safe when several processes race to create it."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise MlflowException(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
                "or choose another tracking.experiment"
            )
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=default_artifact_location(client.tracking_uri, name))
    except MlflowException:
        # Another process created it between our lookup and our create (mlflow issue 4123).
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


SQLITE_PREFIX = "sqlite:///"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, as written (relative or absolute); None for other stores."""
    if not uri.startswith(SQLITE_PREFIX) or ":memory:" in uri:
        return None
    return Path(uri[len(SQLITE_PREFIX) :])


def absolute_uri(uri: str) -> str:
    """``uri`` with a relative SQLite path made absolute, so every process of a sweep writes to the same file."""
    path = sqlite_path(uri)
    if path is None or path.is_absolute():
        return uri
    return SQLITE_PREFIX + str(path.resolve())


def search_all_runs(client: MlflowClient, experiment_id: str, filter_string: str = "") -> list[Run]:
    """Every active run of the experiment that matches ``filter_string``, across result pages."""
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=SEARCH_PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def finished_runs_by_hash(client: MlflowClient, experiment_id: str, config_hash: str | None = None) -> dict[str, Run]:
    """The FINISHED training runs of the experiment by ``config_hash`` (the earliest one where there are several).

    Args:
        config_hash: look for this configuration only (one cheap query); None: every configuration.
    """
    query = f"attributes.status = 'FINISHED' and tags.{RUN_TYPE} = 'train'"
    if config_hash is not None:
        query += f" and tags.{CONFIG_HASH} = '{config_hash}'"
    runs = sorted(search_all_runs(client, experiment_id, query), key=lambda run: run.info.start_time or 0)
    found: dict[str, Run] = {}
    for run in runs:
        found.setdefault(run.data.tags.get(CONFIG_HASH, ""), run)
    found.pop("", None)
    return found


def default_artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store live beside the database file, not in whatever folder the process runs in.

    MLflow's own default is ``./mlruns`` relative to the working directory, which scatters artifacts when the same
    store is written from several folders (tests, sweeps run elsewhere). None for other stores: a server decides.
    """
    path = sqlite_path(uri)
    if path is None:
        return None
    database = path.expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment).strip("_") or "experiment"
    return (database.parent / "mlruns" / slug).as_uri()


def ui_link(uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """Where to look at the runs: the server's own address, or the default ``mlflow ui`` address."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    link = f"{base}/#/experiments/{experiment_id}/runs"
    return f"{link}/{run_id}" if run_id else link


def ui_hint(uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """A line telling the user how to open the MLflow UI on these runs."""
    link = ui_link(uri, experiment_id, run_id)
    if uri.startswith(("http://", "https://")):
        return f"MLflow: {link}"
    return f"MLflow: run `mlflow ui --backend-store-uri {uri}` here, then open {link}"


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _finite_or_nan(value: Any) -> float:
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
        """One MLflow call for all of ``metrics`` at ``step``; None values are skipped."""
        timestamp = int(time.time() * 1000)
        batch = [
            Metric(key, _finite_or_nan(value), timestamp, step) for key, value in metrics.items() if value is not None
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
        "strategy": str(cfg.strategy.name),
        "dataset": str(cfg.dataset.name),
        "seed": str(cfg.seed),
        CONFIG_HASH: config_hash(cfg),
        RUN_TYPE: "train",
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
        client.set_terminated(logger.run_id, RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException as error:
        message = f"{type(error).__name__}: {error}"
        try:
            client.set_tag(logger.run_id, ERROR_TAG, message[:5000])
            client.log_text(logger.run_id, traceback.format_exc(), "traceback.txt")
        finally:
            client.set_terminated(logger.run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        client.set_terminated(logger.run_id, RunStatus.to_string(RunStatus.FINISHED))


def announce(message: str) -> None:
    """Print a line for the user on stderr (stdout stays free for Keras's progress)."""
    print(message, file=sys.stderr, flush=True)
