"""The report's sections on which runs were analysed and where they came from: their environments, the run
counts and runs left out, metrics missing from used runs, the sweep's configuration and the tuning studies.

Each function is pure: the loaded :class:`~lstm_influence.analysis.load.SweepData` (or a frame derived from it) in,
markdown out; an empty string where a section has nothing to say.
"""

from __future__ import annotations

import math

import pandas as pd

from lstm_influence.analysis.environment import (
    COMMIT,
    DIRTY,
    KNOWN_FILE,
    NOT_RECORDED,
    PROVENANCE_TAGS,
    environment_counts,
    mixed_comparisons,
)
from lstm_influence.analysis.load import SweepData, constant_and_varying_params
from lstm_influence.analysis.markdown import code, fmt, markdown_table, when
from lstm_influence.analysis.summaries import arm_order

#: Params that are expected to differ between the runs of one dataset × arm cell.
_PER_RUN_KEYS = {"seed"}
#: Short column names for the provenance tags whose own names are long.
_SHORT_TAGS = {"version.lstm_influence": "lstm_influence", "mlflow.source.git.commit": "commit", "git_dirty": "dirty"}

# --------------------------------------------------------------------------------------------- environment


def environment_section(
    environments: pd.DataFrame, control: str, *, note: str | None = None, max_rows: int = 10
) -> str:
    """The commits, package versions, backends and processors of the used runs, and the comparisons that mix them.

    Args:
        environments: :func:`~lstm_influence.analysis.environment.run_environments` of the used runs.
        control: the reference arm; a comparison is an arm against it on one dataset.
        note: what is known of runs that predate the tags (``known_environment.txt``), quoted.
        max_rows: distinct environments listed here; ``environment.txt`` lists all.
    """
    if environments.empty:
        return ""
    counts = environment_counts(environments)
    lines = [
        "## Environment",
        "",
        "Where the analysed runs came from, by their provenance tags: the code's git commit (and whether the working "
        "tree had uncommitted changes), the package versions, the Keras backend and the processor. One row per "
        f"distinct environment; `environment.txt` beside this report lists every one with its run count. "
        f'"{NOT_RECORDED}": the runs did not log the tag (runs made before provenance was recorded log none).',
        "",
        _environment_table(counts, max_rows),
    ]
    if len(counts) > max_rows:
        lines.append(f"\n({len(counts) - max_rows} more environments in `environment.txt`.)")
    lines += _provenance_notes(environments, note)
    lines += _mixed_warning(environments, control)
    return "\n".join(lines) + "\n"


def _environment_table(counts: pd.DataFrame, max_rows: int) -> str:
    """The ``max_rows`` most frequent environments, one row each with its run count."""
    headers = ["runs", *(_SHORT_TAGS.get(t, t.removeprefix("version.")) for t in PROVENANCE_TAGS)]
    rows = []
    for record in counts.head(max_rows).to_dict("records"):
        commit = record[COMMIT]
        record[COMMIT] = code(commit[:12]) if commit != NOT_RECORDED else commit
        rows.append([record["runs"], *(record[t] for t in PROVENANCE_TAGS)])
    return markdown_table(rows, headers)


def _provenance_notes(environments: pd.DataFrame, note: str | None) -> list[str]:
    """What limits the provenance: runs without tags, the note on them shipped beside the report, dirty trees."""
    lines = []
    unrecorded = int((environments[COMMIT] == NOT_RECORDED).sum())
    if unrecorded:
        lines.append(
            f"\n{unrecorded} of {len(environments)} runs do not record their commit, versions or backend: "
            "which code produced them is not known from the runs themselves."
        )
    if note:
        quoted = "\n".join(f"> {line}".rstrip() for line in note.strip("\n").splitlines())
        lines += ["", f"What is known from outside the runs (`{KNOWN_FILE}`, shipped with the report):", "", quoted]
    dirty = int((environments[DIRTY] == "true").sum())
    if dirty:
        lines.append(
            f"\n{dirty} runs ran from a working tree with uncommitted changes: their commit alone does not "
            "identify their code."
        )
    return lines


def _mixed_warning(environments: pd.DataFrame, control: str) -> list[str]:
    """A warning with the comparisons whose arm and control runs differ in code, versions or backend."""
    mixed = mixed_comparisons(environments, control)
    if mixed.empty:
        return []
    rows = [[r["dataset"], r["arm"], code(r["tag"]), r["values"]] for _, r in mixed.iterrows()]
    n = len(mixed.groupby(["dataset", "arm"]))
    return [
        "",
        f"**Warning: {n} comparison(s) mix environments.** The runs of an arm and of `{control}` on one dataset "
        "differ in the code, a package version or the backend below, so a difference between the arms may come "
        "from the environment rather than from the arm:",
        "",
        markdown_table(rows, ["dataset", "arm", "tag", f"values (arm and {control} together)"]),
    ]


# --------------------------------------------------------------------------------------------- runs and configuration


def run_counts_section(data: SweepData) -> str:
    """Run counts per dataset × arm, and the runs left out with the reason."""
    runs = data.runs
    lines = [
        f"Training runs found: {len(runs)}; used: {int(runs['included'].sum())}; "
        f"left out: {int((~runs['included']).sum())}."
    ]
    if data.ignored:
        other = ", ".join(f"{n} with run_type={k}" for k, n in sorted(data.ignored.items()))
        lines.append(f"Other runs in the selection, not analysed: {other}.")
    used = data.included
    if not used.empty:
        rows = []
        for (d, s), cell in sorted(used.groupby(["dataset", "arm"]), key=lambda kv: kv[0]):
            seeds = ",".join(str(x) for x in sorted(cell["seed"].dropna().astype(int)))
            rows.append([d, s, len(cell), seeds, int(cell["diverged"].sum())])
        order = {s: i for i, s in enumerate(arm_order(used["arm"].unique(), order=data.arms))}
        rows.sort(key=lambda r: (r[0], order[r[1]]))
        lines += ["", markdown_table(rows, ["dataset", "strategy", "runs used", "seeds", "diverged"])]
        counts = used.groupby(["dataset", "arm"]).size()
        if counts.nunique() > 1:
            lines.append(
                f"\nSeeds per cell are unequal ({counts.min()} to {counts.max()}); every statistic uses the runs "
                "each cell has."
            )
    left = data.left_out
    lines.append("\n**Runs left out**\n")
    if left.empty:
        lines.append("None.")
    else:
        rows = [[r["run_name"], code(r["run_id"][:12]), r["status"], r["reason"]] for _, r in left.iterrows()]
        lines.append(markdown_table(rows, ["run", "run id", "status", "reason"]))
    return "\n".join(lines) + "\n"


def missing_metrics_section(scores: dict[str, pd.DataFrame]) -> str:
    """Runs that are used but did not log one of the analysed metrics."""
    rows = []
    for metric, s in scores.items():
        for _, r in s[s["status"] == "missing"].iterrows():
            rows.append([code(metric), r["dataset"], r["arm"], r["seed"], code(r["run_id"][:12])])
    if not rows:
        return ""
    return (
        "**Metrics missing from used runs** (these runs are left out of that metric only)\n\n"
        + markdown_table(rows, ["metric", "dataset", "strategy", "seed", "run id"])
        + "\n"
    )


def configuration_section(data: SweepData) -> str:
    """The sweep's parent run, the params shared by every used run, and those that vary."""
    lines = []
    if data.sweep:
        sw = data.sweep
        lines.append(
            markdown_table(
                [
                    ["sweep_id", code(sw["sweep_id"])],
                    ["parent run", f"{sw['run_name']} ({code(sw['run_id'])})" if sw["run_id"] else "—"],
                    ["started", when(sw["start_time"])],
                    ["status", sw["status"] or "—"],
                ]
                + [[f"tag {k}", v] for k, v in sorted(sw["tags"].items()) if k not in {"sweep_id"}]
                + [[f"param {k}", v] for k, v in sorted(sw["params"].items())],
                ["", ""],
            )
        )
    used = data.included
    constant, varying = constant_and_varying_params(data.params, used["run_id"])
    if varying:
        rows = [[code(k), ", ".join(map(str, v[:12])) + (" …" if len(v) > 12 else "")] for k, v in varying.items()]
        lines += ["", "Params that vary across the used runs:", "", markdown_table(rows, ["param", "values"])]
    confounds = _varying_within_cells(data)
    if confounds:
        lines += [
            "",
            "**Warning**: these params vary *within* a dataset × strategy cell (other than the seed), so a cell "
            f"mixes configurations: {', '.join(code(k) for k in confounds)}. Split the sweep or filter it.",
        ]
    if constant:
        rows = [[code(k), v] for k, v in constant.items()]
        lines += [
            "",
            "<details><summary>Params shared by every used run</summary>",
            "",
            markdown_table(rows, ["param", "value"]),
            "",
            "</details>",
        ]
    if len(data.sweeps) > 1:
        rows = [
            [code(r["sweep_id"]), r["run_name"], when(r["start_time"]), r["status"]] for _, r in data.sweeps.iterrows()
        ]
        lines += [
            "",
            "Sweeps in this experiment (newest first):",
            "",
            markdown_table(rows, ["sweep_id", "parent run", "started", "status"]),
        ]
    return "\n".join(lines) + "\n"


def _varying_within_cells(data: SweepData) -> list[str]:
    used = data.included
    p = data.params[data.params["run_id"].isin(used["run_id"])]
    if p.empty:
        return []
    p = p.merge(used[["run_id", "dataset", "arm"]], on="run_id")
    n_values = p.groupby(["dataset", "arm", "key"])["value"].nunique()
    keys = sorted(set(n_values[n_values > 1].index.get_level_values("key")) - _PER_RUN_KEYS)
    return [k for k in keys if not k.startswith(("tracking.", "hydra."))]


def _tuning_cell(value: object) -> object:
    """A tuning-table cell: "—" where nothing was recorded (pandas prints missing integers as ``<NA>``)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt(value) if isinstance(value, float) else value


def tuning_section(tuning: pd.DataFrame | None, *, max_rows: int = 20) -> str:
    """A markdown section summarising a frame of tuning results.

    Args:
        tuning: one row per trial or per best configuration (any columns; sorted by ``value`` or ``objective``
            when present, ascending). None or empty gives an empty string, so the report omits the section.
    """
    if tuning is None or tuning.empty:
        return ""
    frame = tuning
    for key in ("value", "objective"):
        if key in frame:
            frame = frame.sort_values(key)
            break
    shown = frame.head(max_rows)
    rows = [[_tuning_cell(v) for v in row] for row in shown.itertuples(index=False)]
    more = f"\n\n({len(frame) - max_rows} more rows not shown.)" if len(frame) > max_rows else ""
    return "## Tuning\n\n" + markdown_table(rows, list(shown.columns)) + more + "\n"
