"""Read a sweep's runs and per-epoch histories into tidy pandas frames, from MLflow or from shipped files.

The MLflow side of the contract:

* a training run has tags ``strategy, dataset, seed, config_hash, run_type=train`` (and ``arm`` when it runs a named
  arm), in a sweep also ``sweep_id`` and ``mlflow.parentRunId``; params are the resolved config with dotted keys
  (``train.epochs``);
* a sweep's parent run has tags ``run_type=sweep, sweep_id``; the latest sweep is the parent run with the latest
  start time;
* a run that raised is FAILED with an ``error`` tag; a run that diverged is FINISHED with ``stab/diverged = 1``.

Both sources go through the same pure :func:`assemble`: :func:`load_sweep` turns MLflow runs into
:class:`RunRecord` s (every MLflow call goes through :mod:`lstm_influence.tracking`), and
:mod:`lstm_influence.analysis.raw` reads the same records back from ``runs.csv`` and ``history.csv``, so a report
rebuilt from the shipped files is the report built from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstm_influence import names, tracking
from lstm_influence.metrics import DIVERGED_METRIC, PER_EPOCH_METRICS

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Every run of a selection, newest first: a fixed order across result pages.
NEWEST_FIRST = ("attributes.start_time DESC",)
BUDGET_PARAM = "train.epochs"
TARGET_PARAM = "train.target_norm_loss"
DATA_SEED_PARAM = "dataset.data_seed"
TASK_PARAM = "dataset.task"
#: How a record entered the analysis: the analysed sweep's parent, another sweep's parent, a run of the selection.
ROLE_SWEEP, ROLE_OTHER_SWEEP, ROLE_RUN = "sweep", "other_sweep", "run"
ROLES = (ROLE_SWEEP, ROLE_OTHER_SWEEP, ROLE_RUN)

RUN_COLUMNS = [
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "run_type",
    "arm",
    "strategy_tag",
    "dataset",
    "seed",
    "data_seed",
    "config_hash",
    "sweep_id",
    "parent_run_id",
    "error",
    "diverged",
    "budget",
    "target",
]


@dataclass(frozen=True)
class RunRecord:
    """One MLflow run as the analysis needs it: identity, times (ms since the epoch), tags, params, last metrics."""

    run_id: str
    run_name: str
    status: str
    start_time: int | None
    end_time: int | None
    tags: Mapping[str, str]
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    role: str = ROLE_RUN


@dataclass(frozen=True)
class Source:
    """Where the records came from: the experiment, the store, and the sweep analysed (None: every run)."""

    experiment_name: str
    experiment_id: str
    tracking_uri: str
    sweep_id: str | None = None


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
            run was left out, empty when it is used). ``arm`` is the run's arm: its ``arm`` tag, else its
            ``strategy`` tag (kept in ``strategy_tag``); the analysis groups by it.
        metrics: summary metrics, long: ``run_id, dataset, arm, seed, metric, value`` (every training run).
        history: per-epoch metrics, long: ``run_id, dataset, arm, seed, metric, step, value`` (included runs).
        params: params, long: ``run_id, key, value`` (strings, as MLflow stores them; every training run).
        ignored: counts of other runs in the selection by ``run_type`` (tuning trials, sweeps), not analysed.
        notes: sentences for the report about how the runs were chosen.
        records: every record read (parents and runs), what ``runs.csv`` ships.
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
    records: tuple[RunRecord, ...] = ()
    source: Source | None = None

    @property
    def included(self) -> pd.DataFrame:
        """The runs the statistics use."""
        return self.runs[self.runs["included"]]

    @property
    def left_out(self) -> pd.DataFrame:
        """The training runs left out, with the reason."""
        return self.runs[~self.runs["included"]]

    @property
    def arms(self) -> list[str]:
        """The used runs' arms in the order they were swept: the order the sweep's grid names them in (its
        ``sweep.grid.arm`` or ``sweep.params.arm`` param, else the strategy's), then any other arm by its first
        run's start. No list of arms is fixed in advance: a user's own arms take their place like the built-ins."""
        used = self.included
        present = list(dict.fromkeys(used.sort_values("start_time", kind="stable")["arm"].dropna()))
        params = (self.sweep or {}).get("params") or {}
        for key in ("sweep.grid.arm", "sweep.params.arm", "sweep.grid.strategy", "sweep.params.strategy"):
            named = [arm.strip(" '\"") for arm in str(params.get(key) or "").split(",")]
            swept = [arm for arm in dict.fromkeys(named) if arm in present]
            if swept:
                return swept + [arm for arm in present if arm not in swept]
        return present


# --------------------------------------------------------------------------------------------- pure builders


def _to_time(ms: Any) -> pd.Timestamp | None:
    return pd.to_datetime(ms, unit="ms", utc=True) if ms else None


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return np.nan


def record_of(run: tracking.Run, role: str = ROLE_RUN) -> RunRecord:
    """The :class:`RunRecord` of an MLflow run."""
    info, data = run.info, run.data
    return RunRecord(
        run_id=info.run_id,
        run_name=info.run_name or data.tags.get(names.RUN_NAME, ""),
        status=info.status,
        start_time=info.start_time,
        end_time=info.end_time,
        tags=dict(data.tags),
        params=dict(data.params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        role=role,
    )


def dataset_label(dataset: str | None, task: str | None) -> str | None:
    """The dataset a run is analysed under: its ``dataset`` tag, refined by its task where the dataset has several
    (``synthetic/adding``, ``synthetic/copy``), so runs of different tasks are never compared or pooled."""
    if dataset is None or task in (None, "", "None"):
        return dataset
    return f"{dataset}/{task}"


def runs_frame(records: Iterable[RunRecord]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The runs, their summary metrics and their params as three frames (no filtering).

    Returns:
        ``(runs, metrics, params)``: ``runs`` has :data:`RUN_COLUMNS`; ``metrics`` is long
        (``run_id, metric, value``, the last logged value); ``params`` is long (``run_id, key, value``).
    """
    rows, metric_rows, param_rows = [], [], []
    for rec in records:
        tags, params, metrics = rec.tags, rec.params, rec.metrics
        seed = tags.get(names.SEED, params.get("seed"))
        rows.append(
            {
                "run_id": rec.run_id,
                "run_name": rec.run_name,
                "status": rec.status,
                "start_time": _to_time(rec.start_time),
                "end_time": _to_time(rec.end_time),
                "run_type": tags.get(names.RUN_TYPE),
                # runs.csv and the store hold tags; from here on the frames hold the arm they name
                "arm": tags.get(names.ARM) or tags.get(names.STRATEGY),
                "strategy_tag": tags.get(names.STRATEGY),
                "dataset": dataset_label(tags.get(names.DATASET), params.get(TASK_PARAM)),
                "seed": _number(seed),
                "data_seed": _number(params.get(DATA_SEED_PARAM)),
                "config_hash": tags.get(names.CONFIG_HASH),
                "sweep_id": tags.get(names.SWEEP_ID),
                "parent_run_id": tags.get(names.PARENT_RUN_ID),
                "error": tags.get(names.ERROR),
                "diverged": _number(metrics.get(DIVERGED_METRIC)) == 1,
                "budget": _number(params.get(BUDGET_PARAM)),
                "target": _number(params.get(TARGET_PARAM)),
            }
        )
        metric_rows += [(rec.run_id, k, v) for k, v in metrics.items()]
        param_rows += [(rec.run_id, k, v) for k, v in params.items()]
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    frame["seed"] = frame["seed"].astype("Int64")
    metrics_long = pd.DataFrame(metric_rows, columns=["run_id", "metric", "value"])
    params_long = pd.DataFrame(param_rows, columns=["run_id", "key", "value"])
    return frame, metrics_long, params_long


def is_training_run(runs: pd.DataFrame) -> pd.Series:
    """``run_type == "train"``; runs without a ``run_type`` tag count when they have strategy and dataset tags."""
    untagged = runs["run_type"].isna() & runs["arm"].notna() & runs["dataset"].notna()
    return (runs["run_type"] == names.RUN_TRAIN) | untagged


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
    untagged = (reason == "") & (out["arm"].isna() | out["dataset"].isna())
    reason[untagged] = "no strategy/dataset tag"

    key = out["config_hash"].where(
        out["config_hash"].notna(),
        out["arm"].astype(str) + "|" + out["dataset"].astype(str) + "|" + out["seed"].astype(str),
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


def history_frame(history: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Tidy per-epoch frame from ``run_id, metric, step, value`` rows, joined with the runs' labels."""
    h = history[["run_id", "metric", "step", "value"]].copy()
    h["step"] = h["step"].astype(int)
    h["value"] = h["value"].astype(float)
    h = h.sort_values(["run_id", "metric", "step"]).drop_duplicates(["run_id", "metric", "step"], keep="last")
    labels = runs[["run_id", "dataset", "arm", "seed"]]
    return h.merge(labels, on="run_id", how="left")[
        ["run_id", "dataset", "arm", "seed", "metric", "step", "value"]
    ].reset_index(drop=True)


def _sweeps_frame(parents: Sequence[RunRecord]) -> pd.DataFrame:
    rows = [
        {
            "run_id": r.run_id,
            "run_name": r.run_name,
            "sweep_id": r.tags.get(names.SWEEP_ID),
            "start_time": _to_time(r.start_time),
            "status": r.status,
        }
        for r in parents
    ]
    frame = pd.DataFrame(rows, columns=["run_id", "run_name", "sweep_id", "start_time", "status"])
    return frame.sort_values(["start_time", "run_id"], ascending=False, kind="stable").reset_index(drop=True)


def _order(records: Iterable[RunRecord]) -> tuple[RunRecord, ...]:
    """A fixed order (role, start time, id), whatever order the store returned the runs in."""
    return tuple(sorted(records, key=lambda r: (ROLES.index(r.role), r.start_time or 0, r.run_id)))


def training_selection(records: Iterable[RunRecord]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The training runs among the ``run`` records with the selection applied, their metrics and params, and the
    counts of the other run types: ``(runs, metrics, params, ignored)``."""
    all_runs, metrics, params = runs_frame(r for r in records if r.role == ROLE_RUN)
    training = is_training_run(all_runs)
    ignored = all_runs.loc[~training, "run_type"].fillna("untagged").value_counts().to_dict()
    runs = select_runs(all_runs[training].reset_index(drop=True))
    labels = runs[["run_id", "dataset", "arm", "seed"]]
    metrics = metrics[metrics["run_id"].isin(runs["run_id"])].merge(labels, on="run_id", how="left")
    metrics = metrics[["run_id", "dataset", "arm", "seed", "metric", "value"]].reset_index(drop=True)
    params = params[params["run_id"].isin(runs["run_id"])].reset_index(drop=True)
    return runs, metrics, params, {str(k): int(v) for k, v in sorted(ignored.items())}


def assemble(source: Source, records: Iterable[RunRecord], history: pd.DataFrame) -> SweepData:
    """Build :class:`SweepData` from records and per-epoch rows (``run_id, metric, step, value``): no I/O.

    Args:
        source: the experiment, store and analysed sweep id.
        records: the analysed sweep's parent (role ``sweep``, if any), every other sweep parent of the experiment
            (``other_sweep``) and the runs of the selection (``run``).
        history: per-epoch values of the included runs.
    """
    records = _order(records)
    parent = next((r for r in records if r.role == ROLE_SWEEP), None)
    sweeps = _sweeps_frame([r for r in records if r.role in (ROLE_SWEEP, ROLE_OTHER_SWEEP)])
    runs, metrics, params, ignored = training_selection(records)
    sweep, notes = _analysed_sweep(parent, source, sweeps)
    included = set(runs.loc[runs["included"], "run_id"])
    history = history[history["run_id"].isin(included)]
    return SweepData(
        experiment_name=source.experiment_name,
        experiment_id=source.experiment_id,
        tracking_uri=source.tracking_uri,
        sweep=sweep,
        sweeps=sweeps,
        runs=runs,
        metrics=metrics,
        history=history_frame(history, runs),
        params=params,
        ignored=ignored,
        notes=notes,
        records=records,
        source=source,
    )


def _analysed_sweep(
    parent: RunRecord | None, source: Source, sweeps: pd.DataFrame
) -> tuple[dict[str, Any] | None, list[str]]:
    """The analysed sweep as :attr:`SweepData.sweep` (None without one), and the report's notes on how it was
    chosen."""
    if parent is not None:
        chosen = parent.tags.get(names.SWEEP_ID) or source.sweep_id
        notes = []
        if len(sweeps) > 1:
            notes.append(f"The experiment has {len(sweeps)} sweeps; this report analyses `{chosen}`.")
        same_id = int((sweeps["sweep_id"] == chosen).sum())
        if same_id > 1:
            notes.append(f"{same_id} parent runs carry sweep_id {chosen!r}; the latest is used.")
        sweep = {
            "run_id": parent.run_id,
            "run_name": parent.run_name,
            "sweep_id": chosen,
            "start_time": _to_time(parent.start_time),
            "status": parent.status,
            "params": dict(parent.params),
            "tags": {k: v for k, v in parent.tags.items() if not k.startswith(names.SYSTEM_TAG_PREFIX)},
        }
        return sweep, notes
    if source.sweep_id is not None:
        note = (
            f"No parent run found for sweep {source.sweep_id!r}: its training runs are analysed, and the "
            "report cannot be logged to a parent run."
        )
        sweep = {
            "run_id": None,
            "run_name": None,
            "sweep_id": source.sweep_id,
            "start_time": None,
            "status": None,
            "params": {},
            "tags": {},
        }
        return sweep, [note]
    return None, [
        "The experiment has no sweep parent run: every FINISHED training run of the experiment is "
        "analysed, and the report is not logged to MLflow."
    ]


# --------------------------------------------------------------------------------------------- MLflow edge


def load_sweep(
    experiment: str,
    *,
    sweep_id: str | None = None,
    tracking_uri: str = DEFAULT_TRACKING_URI,
    history_metrics: Sequence[str] = PER_EPOCH_METRICS,
) -> SweepData:
    """Read one sweep (default: the latest) of an MLflow experiment into tidy frames.

    Args:
        experiment: the MLflow experiment name.
        sweep_id: a sweep's ``sweep_id`` tag (or its parent run id); None picks the sweep whose parent run started
            last. When the experiment has no sweep parent, every training run of the experiment is read.
        tracking_uri: any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://127.0.0.1:5000``, ...).
        history_metrics: per-epoch metrics to fetch for the included runs (those a run logged).

    Raises:
        ValueError: the experiment or the sweep does not exist (the message lists the valid names).
    """
    client = tracking.make_client(tracking_uri)
    exp = tracking.find_experiment(client, experiment)
    if exp is None:
        found = tracking.experiment_names(client)
        raise ValueError(f"No MLflow experiment named {experiment!r} at {tracking_uri}; found: {found}")
    exp_id = exp.experiment_id
    parent_runs = {run.info.run_id: run for run in tracking.sweep_parents(client, exp_id)}
    parents = [record_of(run, ROLE_OTHER_SWEEP) for run in parent_runs.values()]
    newest_first = sorted(parents, key=lambda r: (r.start_time or 0, r.run_id), reverse=True)
    if sweep_id is None:
        parent = newest_first[0] if newest_first else None
    else:
        parent = next((r for r in newest_first if sweep_id in (r.tags.get(names.SWEEP_ID), r.run_id)), None)
    if parent is not None:
        chosen = parent.tags.get(names.SWEEP_ID) or sweep_id
        selected = tracking.sweep_runs(client, exp_id, parent_runs[parent.run_id])
    elif sweep_id is not None:
        chosen = sweep_id
        selected = tracking.find_runs(client, exp_id, {names.SWEEP_ID: sweep_id})
        if not selected:
            known = [r.tags.get(names.SWEEP_ID) for r in newest_first]
            raise ValueError(f"No sweep {sweep_id!r} in experiment {experiment!r}; sweeps: {known}")
    else:
        chosen, selected = None, tracking.search_all_runs(client, exp_id, order_by=NEWEST_FIRST)
    parent_ids = {r.run_id for r in parents}
    records = [
        RunRecord(**{**r.__dict__, "role": ROLE_SWEEP}) if parent is not None and r.run_id == parent.run_id else r
        for r in parents
    ]
    records += [record_of(r) for r in selected if r.info.run_id not in parent_ids]
    runs, _, _, _ = training_selection(records)
    metrics_by_run = {r.run_id: r.metrics for r in records}
    rows = [
        (run_id, key, step, value)
        for run_id in runs.loc[runs["included"], "run_id"]
        for key in history_metrics
        if key in metrics_by_run[run_id]
        for step, value in tracking.metric_history(client, run_id, key)
    ]
    history = pd.DataFrame(rows, columns=["run_id", "metric", "step", "value"])
    return assemble(Source(experiment, exp_id, tracking_uri, chosen), records, history)


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
