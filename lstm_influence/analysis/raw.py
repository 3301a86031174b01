"""The raw data every report ships: ``runs.csv`` and ``history.csv``, written and read back without MLflow.

``runs.csv`` has one row per run the analysis read: the analysed sweep's parent (``role = sweep``), the other sweep
parents of the experiment (``other_sweep``) and every run of the selection (``run``: training runs, used or left out,
and any other run type). Columns: ``role, run_id, run_name, status, start_time, end_time`` (ms since the epoch),
``experiment, experiment_id, tracking_uri, analysed_sweep_id`` (the same on every row), ``included, reason`` (the
analysis's selection, for the reader; recomputed on reading), then one column per tag (``tags.<key>``), param
(``params.<key>``) and summary metric (``metrics.<key>``, the last logged value). An empty cell means "not logged".
Metric values are written with Python's shortest round-trip ``repr`` (``nan``, ``inf`` included), params and tags
as the strings MLflow holds, so reading the file gives back exactly the records that were written.

``history.csv`` has one row per logged per-epoch value of the used runs: ``run_id, step, metric, value``.

:func:`read_raw` rebuilds the analysis's :class:`~lstm_influence.analysis.load.SweepData` from the two files alone;
it goes through the same :func:`~lstm_influence.analysis.load.assemble` as the MLflow loader.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lstm_influence.analysis.load import ROLES, RunRecord, Source, SweepData, assemble

RUNS_FILE = "runs.csv"
HISTORY_FILE = "history.csv"
FIXED_COLUMNS = [
    "role",
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "experiment",
    "experiment_id",
    "tracking_uri",
    "analysed_sweep_id",
    "included",
    "reason",
]
HISTORY_COLUMNS = ["run_id", "step", "metric", "value"]
PREFIXES = {"tags": "tags.", "params": "params.", "metrics": "metrics."}


def _time(ms: int | None) -> str:
    return "" if ms is None else str(int(ms))


def runs_table(data: SweepData) -> pd.DataFrame:
    """``runs.csv`` as a frame of strings (see the module docstring)."""
    source = data.source
    if source is None:
        raise ValueError("this SweepData has no source (experiment, store, sweep): it was not built by assemble()")
    selection = data.runs.set_index("run_id")[["included", "reason"]]
    rows = []
    for rec in data.records:
        row = {
            "role": rec.role,
            "run_id": rec.run_id,
            "run_name": rec.run_name,
            "status": rec.status,
            "start_time": _time(rec.start_time),
            "end_time": _time(rec.end_time),
            "experiment": source.experiment_name,
            "experiment_id": source.experiment_id,
            "tracking_uri": source.tracking_uri,
            "analysed_sweep_id": source.sweep_id or "",
            "included": str(bool(selection.at[rec.run_id, "included"])) if rec.run_id in selection.index else "",
            "reason": str(selection.at[rec.run_id, "reason"]) if rec.run_id in selection.index else "",
        }
        row.update({PREFIXES["tags"] + k: v for k, v in rec.tags.items()})
        row.update({PREFIXES["params"] + k: v for k, v in rec.params.items()})
        row.update({PREFIXES["metrics"] + k: repr(float(v)) for k, v in rec.metrics.items()})
        rows.append(row)
    keys = {prefix: set() for prefix in PREFIXES.values()}
    for row in rows:
        for column in row:
            for prefix in PREFIXES.values():
                if column.startswith(prefix) and column not in FIXED_COLUMNS:
                    keys[prefix].add(column)
    columns = FIXED_COLUMNS + [c for prefix in PREFIXES.values() for c in sorted(keys[prefix])]
    return pd.DataFrame(rows, columns=columns).fillna("")


def history_table(data: SweepData) -> pd.DataFrame:
    """``history.csv`` as a frame (values as round-trip strings)."""
    h = data.history.sort_values(["run_id", "metric", "step"], kind="stable")
    return pd.DataFrame(
        {
            "run_id": h["run_id"].to_numpy(),
            "step": h["step"].astype(int).to_numpy(),
            "metric": h["metric"].to_numpy(),
            "value": [repr(float(v)) for v in h["value"]],
        },
        columns=HISTORY_COLUMNS,
    )


def write_raw(data: SweepData, out_dir: Path) -> list[Path]:
    """Write ``runs.csv`` and ``history.csv`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_path, history_path = out_dir / RUNS_FILE, out_dir / HISTORY_FILE
    runs_table(data).to_csv(runs_path, index=False, lineterminator="\n")
    history_table(data).to_csv(history_path, index=False, lineterminator="\n")
    return [runs_path, history_path]


def _strings(path: Path) -> pd.DataFrame:
    # every cell a string and "" for an empty one: "null", "NA" and "nan" are values here, not missing
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def _time_or_none(text: str) -> int | None:
    return int(text) if text else None


def read_raw(folder: Path | str) -> SweepData:
    """Rebuild the analysis's input from ``runs.csv`` and ``history.csv`` in ``folder`` (no MLflow).

    Raises:
        ValueError: a file is missing, or ``runs.csv`` lacks the fixed columns or names an unknown role (the
            message names the file and what was expected).
    """
    folder = Path(folder)
    paths = {name: folder / name for name in (RUNS_FILE, HISTORY_FILE)}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise ValueError(f"cannot rebuild a report from {folder}: missing {missing} (written by every report)")
    table = _strings(paths[RUNS_FILE])
    absent = [c for c in FIXED_COLUMNS if c not in table.columns]
    if absent:
        raise ValueError(f"{paths[RUNS_FILE]} lacks the columns {absent}; expected {FIXED_COLUMNS} first")
    if table.empty:
        raise ValueError(f"{paths[RUNS_FILE]} has no runs")
    bad_roles = sorted(set(table["role"]) - set(ROLES))
    if bad_roles:
        raise ValueError(f"{paths[RUNS_FILE]}: unknown role(s) {bad_roles}; expected one of {list(ROLES)}")
    groups = {
        kind: [(c, c[len(prefix) :]) for c in table.columns if c.startswith(prefix)]
        for kind, prefix in PREFIXES.items()
    }
    records = []
    for row in table.to_dict("records"):
        records.append(
            RunRecord(
                run_id=row["run_id"],
                run_name=row["run_name"],
                status=row["status"],
                start_time=_time_or_none(row["start_time"]),
                end_time=_time_or_none(row["end_time"]),
                tags={k: row[c] for c, k in groups["tags"] if row[c] != ""},
                params={k: row[c] for c, k in groups["params"] if row[c] != ""},
                metrics={k: float(row[c]) for c, k in groups["metrics"] if row[c] != ""},
                role=row["role"],
            )
        )
    first = table.iloc[0]
    source = Source(
        first["experiment"], first["experiment_id"], first["tracking_uri"], first["analysed_sweep_id"] or None
    )
    h = _strings(paths[HISTORY_FILE])
    history = pd.DataFrame(
        {
            "run_id": h["run_id"],
            "metric": h["metric"],
            "step": h["step"].astype(int),
            "value": [float(v) if v else math.nan for v in h["value"]],
        },
        columns=["run_id", "metric", "step", "value"],
    )
    return assemble(source, records, history)
