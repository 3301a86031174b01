"""Read a sweep's runs and per-epoch histories from MLflow into tidy pandas frames.

The MLflow side of the contract (../shared/DESIGN.md and the sweeps issue):

* a training run has tags ``strategy, dataset, seed, config_hash, run_type=train``, in a sweep also ``sweep_id``
  and ``mlflow.parentRunId``; params are the resolved config with dotted keys (``train.epochs``);
* a sweep's parent run has tags ``run_type=sweep, sweep_id``; the latest sweep is the parent run with the latest
  start time;
* a run that raised is FAILED with an ``error`` tag; a run that diverged is FINISHED with ``stab/diverged = 1``.

Only :func:`load_sweep` and :func:`list_sweeps` talk to MLflow; the frame builders are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_HISTORY_METRICS = ("val/norm_loss",)
TRAIN = "train"
SWEEP = "sweep"
BUDGET_PARAM = "train.epochs"
TARGET_PARAM = "train.target_norm_loss"

RUN_COLUMNS = [
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "run_type",
    "strategy",
    "dataset",
    "seed",
    "config_hash",
    "sweep_id",
    "parent_run_id",
    "error",
    "diverged",
    "budget",
    "target",
]


@dataclass(frozen=True)
class SweepData:
    """What one analysis reads: the chosen sweep (or the whole experiment) as tidy frames.

    Attributes:
        experiment_name, experiment_id, tracking_uri: where the runs came from.
        sweep: the parent run (``run_id, run_name, sweep_id, start_time, status, params, tags``) or None when the
            runs were made without a sweep (then every training run of the experiment is analysed).
        sweeps: every sweep parent in the experiment, newest first (columns ``run_id, run_name, sweep_id,
            start_time, status``).
        runs: one row per training run considered (:data:`RUN_COLUMNS` plus ``included`` and ``reason``: why a
            run was left out, empty when it is used).
        metrics: summary metrics, long: ``run_id, dataset, strategy, seed, metric, value`` (every training run).
        history: per-epoch metrics, long: ``run_id, dataset, strategy, seed, metric, step, value`` (included runs).
        params: params, long: ``run_id, key, value`` (strings, as MLflow stores them; every training run).
        ignored: counts of other runs in the selection by ``run_type`` (tuning trials, sweeps), not analysed.
        notes: sentences for the report about how the runs were chosen.
    """

    experiment_name: str
    experiment_id: str
    tracking_uri: str
    sweep: dict[str, Any] | None
    sweeps: pd.DataFrame
    runs: pd.DataFrame
    metrics: pd.DataFrame
    history: pd.DataFrame
    params: pd.DataFrame
    ignored: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def included(self) -> pd.DataFrame:
        """The runs the statistics use."""
        return self.runs[self.runs["included"]]

    @property
    def left_out(self) -> pd.DataFrame:
        """The training runs left out, with the reason."""
        return self.runs[~self.runs["included"]]


# --------------------------------------------------------------------------------------------- pure builders


def _to_time(ms: Any) -> pd.Timestamp | None:
    return pd.to_datetime(ms, unit="ms", utc=True) if ms else None


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return np.nan


def runs_frame(runs: Iterable[Run]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The runs, their summary metrics and their params as three frames (no filtering).

    Returns:
        ``(runs, metrics, params)``: ``runs`` has :data:`RUN_COLUMNS`; ``metrics`` is long
        (``run_id, metric, value``, the last logged value); ``params`` is long (``run_id, key, value``).
    """
    rows, metric_rows, param_rows = [], [], []
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        seed = tags.get("seed", params.get("seed"))
        rows.append(
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name or tags.get("mlflow.runName", ""),
                "status": run.info.status,
                "start_time": _to_time(run.info.start_time),
                "end_time": _to_time(run.info.end_time),
                "run_type": tags.get("run_type"),
                "strategy": tags.get("strategy"),
                "dataset": tags.get("dataset"),
                "seed": _number(seed),
                "config_hash": tags.get("config_hash"),
                "sweep_id": tags.get("sweep_id"),
                "parent_run_id": tags.get("mlflow.parentRunId"),
                "error": tags.get("error"),
                "diverged": _number(metrics.get("stab/diverged")) == 1,
                "budget": _number(params.get(BUDGET_PARAM)),
                "target": _number(params.get(TARGET_PARAM)),
            }
        )
        metric_rows += [(run.info.run_id, k, v) for k, v in metrics.items()]
        param_rows += [(run.info.run_id, k, v) for k, v in params.items()]
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    frame["seed"] = frame["seed"].astype("Int64")
    metrics_long = pd.DataFrame(metric_rows, columns=["run_id", "metric", "value"])
    params_long = pd.DataFrame(param_rows, columns=["run_id", "key", "value"])
    return frame, metrics_long, params_long


def is_training_run(runs: pd.DataFrame) -> pd.Series:
    """``run_type == "train"``; runs without a ``run_type`` tag count when they have strategy and dataset tags."""
    untagged = runs["run_type"].isna() & runs["strategy"].notna() & runs["dataset"].notna()
    return (runs["run_type"] == TRAIN) | untagged


def select_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Mark which training runs the statistics use and why the others are left out.

    Rules, in order: a run must be FINISHED (a FAILED run's ``error`` tag is quoted, and a later FINISHED run of
    the same configuration is named); it needs ``strategy`` and ``dataset`` tags; of several FINISHED runs of one
    configuration (same ``config_hash``, else same strategy, dataset and seed) only the latest started is kept.
    Diverged runs are kept: they are results.

    Returns:
        A copy of ``runs`` with ``included`` (bool) and ``reason`` (str, empty when included).
    """
    out = runs.copy()
    reason = pd.Series("", index=out.index, dtype=object)
    not_finished = out["status"] != "FINISHED"
    error = out["error"].fillna("").astype(str).str.replace(r"\s+", " ", regex=True).str.slice(0, 160)
    reason[not_finished] = "status " + out.loc[not_finished, "status"].astype(str)
    has_error = not_finished & (error != "")
    reason[has_error] = reason[has_error] + ": " + error[has_error]
    untagged = (reason == "") & (out["strategy"].isna() | out["dataset"].isna())
    reason[untagged] = "no strategy/dataset tag"

    key = out["config_hash"].where(
        out["config_hash"].notna(),
        out["strategy"].astype(str) + "|" + out["dataset"].astype(str) + "|" + out["seed"].astype(str),
    )
    candidates = out.assign(_key=key)[reason == ""].sort_values("start_time", ascending=False, kind="stable")
    latest = candidates.drop_duplicates("_key", keep="first")
    for idx, row in candidates.drop(latest.index).iterrows():
        kept = latest.loc[latest["_key"] == row["_key"], "run_id"].iloc[0]
        reason[idx] = f"superseded by a later run of the same configuration ({kept[:8]})"
    # a failed attempt that a resumed sweep re-ran successfully: say so, the cell is not short of a seed
    kept_by_key = dict(zip(latest["_key"], latest["run_id"]))
    for idx in out.index[not_finished]:
        if key[idx] in kept_by_key:
            reason[idx] = f"{reason[idx]}; re-run as {kept_by_key[key[idx]][:8]}"
    out["reason"] = reason
    out["included"] = reason == ""
    return out


def history_frame(histories: dict[tuple[str, str], Sequence[Any]], runs: pd.DataFrame) -> pd.DataFrame:
    """Tidy per-epoch frame from ``{(run_id, metric): [mlflow Metric, ...]}`` joined with run labels."""
    rows = [(run_id, key, m.step, m.value) for (run_id, key), ms in histories.items() for m in ms]
    h = pd.DataFrame(rows, columns=["run_id", "metric", "step", "value"])
    h = h.sort_values(["run_id", "metric", "step"]).drop_duplicates(["run_id", "metric", "step"], keep="last")
    labels = runs[["run_id", "dataset", "strategy", "seed"]]
    return h.merge(labels, on="run_id", how="left")[
        ["run_id", "dataset", "strategy", "seed", "metric", "step", "value"]
    ]


# --------------------------------------------------------------------------------------------- MLflow edge


def _search(client: MlflowClient, experiment_id: str, filter_string: str = "") -> list[Run]:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def list_sweeps(client: MlflowClient, experiment_id: str) -> pd.DataFrame:
    """Every sweep parent run of the experiment, newest first."""
    parents = _search(client, experiment_id, f"tags.run_type = '{SWEEP}'")
    rows = [
        {
            "run_id": r.info.run_id,
            "run_name": r.info.run_name,
            "sweep_id": r.data.tags.get("sweep_id"),
            "start_time": _to_time(r.info.start_time),
            "status": r.info.status,
        }
        for r in parents
    ]
    frame = pd.DataFrame(rows, columns=["run_id", "run_name", "sweep_id", "start_time", "status"])
    return frame.sort_values("start_time", ascending=False, kind="stable").reset_index(drop=True)


def load_sweep(
    experiment: str,
    *,
    sweep_id: str | None = None,
    tracking_uri: str = DEFAULT_TRACKING_URI,
    history_metrics: Sequence[str] = DEFAULT_HISTORY_METRICS,
) -> SweepData:
    """Read one sweep (default: the latest) of an MLflow experiment into tidy frames.

    Args:
        experiment: the MLflow experiment name.
        sweep_id: a sweep's ``sweep_id`` tag (or its parent run id); None picks the sweep whose parent run started
            last. When the experiment has no sweep parent, every training run of the experiment is read.
        tracking_uri: any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://127.0.0.1:5000``, ...).
        history_metrics: per-epoch metrics to fetch for the included runs.

    Raises:
        ValueError: the experiment or the sweep does not exist (the message lists the valid names).
    """
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"No MLflow experiment named {experiment!r} at {tracking_uri}; found: {names}")
    sweeps = list_sweeps(client, exp.experiment_id)
    notes: list[str] = []
    parent: Run | None = None

    if sweep_id is None and not sweeps.empty:
        parent = client.get_run(sweeps.iloc[0]["run_id"])
        if len(sweeps) > 1:
            notes.append(f"The experiment has {len(sweeps)} sweeps; this report analyses the latest one.")
    elif sweep_id is not None:
        match = sweeps[(sweeps["sweep_id"] == sweep_id) | (sweeps["run_id"] == sweep_id)]
        if not match.empty:
            parent = client.get_run(match.iloc[0]["run_id"])
            if len(match) > 1:
                notes.append(f"{len(match)} parent runs carry sweep_id {sweep_id!r}; the latest is used.")

    if parent is not None:
        chosen = parent.data.tags.get("sweep_id") or sweep_id
        selected = _search(client, exp.experiment_id, f"tags.sweep_id = '{chosen}'")
        by_parent = _search(client, exp.experiment_id, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        seen = {r.info.run_id for r in selected}
        selected += [r for r in by_parent if r.info.run_id not in seen]
        selected = [r for r in selected if r.info.run_id != parent.info.run_id]
        sweep_info = {
            "run_id": parent.info.run_id,
            "run_name": parent.info.run_name,
            "sweep_id": chosen,
            "start_time": _to_time(parent.info.start_time),
            "status": parent.info.status,
            "params": dict(parent.data.params),
            "tags": {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")},
        }
    elif sweep_id is not None:
        selected = _search(client, exp.experiment_id, f"tags.sweep_id = '{sweep_id}'")
        if not selected:
            raise ValueError(
                f"No sweep {sweep_id!r} in experiment {experiment!r}; sweeps: {sweeps['sweep_id'].tolist()}"
            )
        notes.append(
            f"No parent run found for sweep {sweep_id!r}: its training runs are analysed, and the "
            "report cannot be logged to a parent run."
        )
        sweep_info = {
            "run_id": None,
            "run_name": None,
            "sweep_id": sweep_id,
            "start_time": None,
            "status": None,
            "params": {},
            "tags": {},
        }
    else:
        selected = _search(client, exp.experiment_id)
        sweep_info = None
        notes.append(
            "The experiment has no sweep parent run: every FINISHED training run of the experiment is "
            "analysed, and the report is not logged to MLflow."
        )

    all_runs, metrics, params = runs_frame(selected)
    training = is_training_run(all_runs)
    ignored = all_runs.loc[~training, "run_type"].fillna("untagged").value_counts().to_dict()
    runs = select_runs(all_runs[training].reset_index(drop=True))
    metrics = metrics[metrics["run_id"].isin(runs["run_id"])]
    metrics = metrics.merge(runs[["run_id", "dataset", "strategy", "seed"]], on="run_id", how="left")[
        ["run_id", "dataset", "strategy", "seed", "metric", "value"]
    ]
    params = params[params["run_id"].isin(runs["run_id"])].reset_index(drop=True)
    histories = {
        (run_id, key): client.get_metric_history(run_id, key)
        for run_id in runs.loc[runs["included"], "run_id"]
        for key in history_metrics
    }
    return SweepData(
        experiment_name=experiment,
        experiment_id=exp.experiment_id,
        tracking_uri=tracking_uri,
        sweep=sweep_info,
        sweeps=sweeps,
        runs=runs,
        metrics=metrics.reset_index(drop=True),
        history=history_frame(histories, runs),
        params=params,
        ignored={str(k): int(v) for k, v in ignored.items()},
        notes=notes,
    )


def constant_and_varying_params(params: pd.DataFrame, run_ids: Iterable[str]) -> tuple[dict, dict]:
    """Split the runs' params into those with one value across the runs and those that vary (with values).

    A param missing from some runs counts as varying (``"<unset>"`` among its values).
    """
    ids = list(run_ids)
    p = params[params["run_id"].isin(ids)]
    wide = p.pivot_table(index="run_id", columns="key", values="value", aggfunc="last").reindex(ids)
    constant, varying = {}, {}
    for key in sorted(wide.columns):
        values = wide[key].fillna("<unset>")
        unique = list(dict.fromkeys(values))
        if len(unique) == 1:
            constant[key] = unique[0]
        else:
            varying[key] = sorted(unique, key=str)
    return constant, varying
