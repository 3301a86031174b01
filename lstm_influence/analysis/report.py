"""The markdown report, figure files and MLflow artifacts: the side-effect edge of the analysis.

:func:`render_report` is pure (frames in, markdown text out); :func:`save_figure`, :func:`write_text` and
:func:`log_artifacts` touch the file system or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lstm_influence.analysis.load import SweepData, constant_and_varying_params
from lstm_influence.analysis.stats import CENSORED_METRICS, strategy_order

FIGURE_FORMATS = ("png", "svg")
ARTIFACT_PATH = "analysis"
SIGNIFICANCE = 0.05
#: Params that are expected to differ between the runs of one dataset × strategy cell.
_PER_RUN_KEYS = {"seed"}


@dataclass(frozen=True)
class ReportSettings:
    """How the statistics were computed, quoted in the report's methods section."""

    metrics: Sequence[str]
    baseline: str = "baseline"
    n_resamples: int = 2000
    seed: int = 0
    confidence: float = 0.95


# --------------------------------------------------------------------------------------------- formatting


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; ``—`` for NaN/None, ``∞`` for infinity."""
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}g}"


def fmt_interval(point: Any, low: Any, high: Any, digits: int = 3) -> str:
    """``point [low, high]``, or the point alone when there is no interval."""
    if fmt(low) == "—" or fmt(high) == "—":
        return fmt(point, digits)
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def markdown_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A GitHub-flavoured markdown table; ``|`` in cells is escaped."""

    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def _code(text: Any) -> str:
    return f"`{text}`"


def _when(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(t, pd.Timestamp) else "—"


# --------------------------------------------------------------------------------------------- sections


def summary_section(
    summary: pd.DataFrame, metric: str, *, baseline: str = "baseline", alpha: float = SIGNIFICANCE
) -> str:
    """Markdown for one metric's summary table (rows: dataset × strategy, then the across-dataset rows)."""
    if summary.empty:
        return f"### `{metric}`\n\nNo used run logged this metric.\n"
    lower = bool(summary["lower_is_better"].iloc[0])
    censored = metric in CENSORED_METRICS
    headers = [
        "dataset",
        "strategy",
        "n",
        "IQM [95% CI]",
        "median",
        "mean",
        "P(improvement) [95% CI]",
        "p (MW)",
        "p Holm",
        "divergence",
    ]
    if censored:
        headers[6:6] = ["reached", "KM median [95% CI]"]
    rows, single = [], False
    for _, r in summary.iterrows():
        mark = ""
        no_iqm_ci = np.isfinite(r["iqm"]) and not np.isfinite(r["iqm_low"])
        no_poi_ci = np.isfinite(r["poi"]) and not np.isfinite(r["poi_low"])
        if no_iqm_ci or no_poi_ci:
            mark, single = " †", True
        p_holm = fmt(r["p_holm"])
        if np.isfinite(r["p_holm"]) and r["p_holm"] < alpha:
            p_holm = f"**{p_holm}**"
        n = f"{int(r['n_runs'])}" if np.isfinite(r["n_runs"]) else "—"
        row = [
            r["dataset"],
            r["strategy"] + mark,
            n,
            fmt_interval(r["iqm"], r["iqm_low"], r["iqm_high"]),
            fmt(r["median"]),
            fmt(r["mean"]),
            "—" if r["strategy"] == baseline else fmt_interval(r["poi"], r["poi_low"], r["poi_high"], 2),
            fmt(r["p_value"]),
            p_holm,
            f"{fmt(r['divergence_rate'], 2)} ({int(r['n_diverged'])}/{int(r['n_runs'])})",
        ]
        if censored:
            km = fmt_interval(r["km_median"], r["km_low"], r["km_high"])
            if np.isfinite(r["km_median"]) and np.isfinite(r["km_low"]) and not np.isfinite(r["km_high"]):
                km = f"{fmt(r['km_median'])} [{fmt(r['km_low'])}, > {fmt(r['budget'])}]"
            if not np.isfinite(r["km_median"]):
                km = f"> {fmt(r['budget'])} (not reached)" if np.isfinite(r["budget"]) else "—"
            reached = "—" if r["dataset"] == "all" else f"{int(r['n_reached'])}/{int(r['n_runs'])}"
            row[6:6] = [reached, km]
        rows.append(row)
    direction = "lower is better" if lower else "higher is better"
    text = [
        f"### `{metric}` ({direction})\n",
        markdown_table(rows, headers),
        "",
        f"P(improvement) = P(a {'' if lower else 'higher '}run of the strategy "
        f"{'has a lower value than' if lower else 'beats'} a run of `{baseline}`), ties ½; 0.5 = no difference. "
        f"p (MW): two-sided Mann–Whitney U against `{baseline}` on the same dataset; p Holm: Holm-adjusted over "
        f"the {int(summary['p_value'].notna().sum())} comparisons of this metric (bold: < {alpha}).",
    ]
    if (summary["dataset"] == "all").any():
        text.append(
            "Rows `all`: P(improvement) averaged over datasets (rliable), IQM pooled over datasets (normalised "
            "metrics only), both with a bootstrap stratified by dataset; no test."
        )
    if single:
        text.append(
            "† no interval: the cell (or a cell this row compares with or pools) has a single seed with a finite "
            "value, and one seed gives no interval."
        )
    if summary["n_worst"].fillna(0).sum():
        text.append(
            "Runs that diverged without a finite value are left out of IQM/median/mean (n counts them) and enter "
            "P(improvement) and the test at the worst rank."
        )
    if censored:
        text.append(
            "Runs that never reached the target are censored at `train.epochs`: in IQM, median, mean, "
            "P(improvement) and the test they count as `train.epochs + 1` (tied, worse than any run that reached "
            "it); the Kaplan–Meier median treats them as not reached by the end of the budget."
        )
    return "\n".join(text) + "\n"


def run_counts_section(data: SweepData) -> str:
    """Run counts per dataset × strategy, and the runs left out with the reason."""
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
        for (d, s), cell in sorted(used.groupby(["dataset", "strategy"]), key=lambda kv: kv[0]):
            seeds = ",".join(str(x) for x in sorted(cell["seed"].dropna().astype(int)))
            rows.append([d, s, len(cell), seeds, int(cell["diverged"].sum())])
        order = {s: i for i, s in enumerate(strategy_order(used["strategy"].unique()))}
        rows.sort(key=lambda r: (r[0], order[r[1]]))
        lines += ["", markdown_table(rows, ["dataset", "strategy", "runs used", "seeds", "diverged"])]
        counts = used.groupby(["dataset", "strategy"]).size()
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
        rows = [[r["run_name"], _code(r["run_id"][:12]), r["status"], r["reason"]] for _, r in left.iterrows()]
        lines.append(markdown_table(rows, ["run", "run id", "status", "reason"]))
    return "\n".join(lines) + "\n"


def missing_metrics_section(scores: dict[str, pd.DataFrame]) -> str:
    """Runs that are used but did not log one of the analysed metrics."""
    rows = []
    for metric, s in scores.items():
        for _, r in s[s["status"] == "missing"].iterrows():
            rows.append([_code(metric), r["dataset"], r["strategy"], r["seed"], _code(r["run_id"][:12])])
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
                    ["sweep_id", _code(sw["sweep_id"])],
                    ["parent run", f"{sw['run_name']} ({_code(sw['run_id'])})" if sw["run_id"] else "—"],
                    ["started", _when(sw["start_time"])],
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
        rows = [[_code(k), ", ".join(map(str, v[:12])) + (" …" if len(v) > 12 else "")] for k, v in varying.items()]
        lines += ["", "Params that vary across the used runs:", "", markdown_table(rows, ["param", "values"])]
    confounds = _varying_within_cells(data)
    if confounds:
        lines += [
            "",
            "**Warning**: these params vary *within* a dataset × strategy cell (other than the seed), so a cell "
            f"mixes configurations: {', '.join(_code(k) for k in confounds)}. Split the sweep or filter it.",
        ]
    if constant:
        rows = [[_code(k), v] for k, v in constant.items()]
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
            [_code(r["sweep_id"]), r["run_name"], _when(r["start_time"]), r["status"]]
            for _, r in data.sweeps.iterrows()
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
    p = p.merge(used[["run_id", "dataset", "strategy"]], on="run_id")
    n_values = p.groupby(["dataset", "strategy", "key"])["value"].nunique()
    keys = sorted(set(n_values[n_values > 1].index.get_level_values("key")) - _PER_RUN_KEYS)
    return [k for k in keys if not k.startswith(("tracking.", "hydra."))]


def tuning_section(tuning: pd.DataFrame | None, *, max_rows: int = 20) -> str:
    """Hook for the tuning issue: a markdown section summarising a frame of tuning results.

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
    rows = [[fmt(v) if isinstance(v, float) else v for v in row] for row in shown.itertuples(index=False)]
    more = f"\n\n({len(frame) - max_rows} more rows not shown.)" if len(frame) > max_rows else ""
    return "## Tuning\n\n" + markdown_table(rows, list(shown.columns)) + more + "\n"


def methods_section(settings: ReportSettings) -> str:
    """How every number in the report was computed."""
    pct = f"{settings.confidence:.0%}"
    return f"""## Methods

- Unit of analysis: one training run (one seed) of a strategy on a dataset; statistics are per dataset × strategy
  across seeds. The data are fixed by `dataset.data_seed`, so strategies are compared on the same data.
- IQM: interquartile mean, the 25% trimmed mean (`scipy.stats.trim_mean(x, 0.25)`), robust to a few outlier seeds
  (Agarwal et al. 2021, rliable).
- {pct} intervals: percentile bootstrap (`scipy.stats.bootstrap`, `method="percentile"`), {settings.n_resamples}
  resamples, seed {settings.seed}, stratified: each strategy's runs on each dataset are resampled on their own.
  A cell with one seed has no interval.
- P(improvement): rliable's probability of improvement, P(X beats Y) + ½ P(tie) from the Mann–Whitney U statistic,
  X a run of the strategy and Y a run of `{settings.baseline}` on the same dataset. Losses are negated first, so
  for them it is P(lower loss); its interval is a bootstrap resampling both samples independently.
- Tests: two-sided Mann–Whitney U against `{settings.baseline}` (`scipy.stats.mannwhitneyu`, exact when a sample
  has ≤ 8 runs and no ties, else the normal approximation with tie correction); Holm's step-down correction over
  all strategy × dataset comparisons of one metric. Different metrics are separate families; `test/norm_loss` is
  the primary one.
- Divergence rate: runs with `stab/diverged = 1` over runs used, with a Wilson score interval
  (`scipy.stats.binomtest`). Diverged runs are kept. A diverged (or non-finite) score has no finite value: it is left
  out of IQM/median/mean and enters P(improvement) and the test at the worst rank.
- Censoring of `conv/epochs_to_target`: a run that never reached `train.target_norm_loss` is right-censored at
  `train.epochs`; rank-based statistics and IQM use `train.epochs + 1`, the Kaplan–Meier median
  (`scipy.stats.ecdf` on `CensoredData`, log-log pointwise band) treats it as not reached by the budget.
- Runs left out: not FINISHED (FAILED with their `error` tag, still RUNNING, KILLED), without strategy/dataset tags,
  or superseded by a later run of the same `config_hash`.
"""


def mlflow_link(data: SweepData) -> str:
    """Where the parent run (or the experiment) is in the MLflow UI."""
    run = data.sweep["run_id"] if data.sweep else None
    path = f"#/experiments/{data.experiment_id}/runs" + (f"/{run}" if run else "")
    if data.tracking_uri.startswith(("http://", "https://")):
        return f"{data.tracking_uri.rstrip('/')}/{path}"
    return f"`mlflow ui --backend-store-uri {data.tracking_uri}`, then http://127.0.0.1:5000/{path}"


def render_report(
    data: SweepData,
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, pd.DataFrame],
    figures: dict[str, str],
    settings: ReportSettings,
    *,
    logged_to: str | None = None,
    log_note: str | None = None,
    tuning: pd.DataFrame | None = None,
    extra_sections: Sequence[str] = (),
) -> str:
    """The whole report as markdown.

    Args:
        data: what was loaded.
        summaries: ``{metric: summarize(...) frame}``, the primary metric first.
        scores: ``{metric: metric_scores(...) frame}`` (for the missing-metric list).
        figures: ``{caption: relative path of the PNG}`` (an SVG beside it is linked).
        settings: the statistics settings.
        logged_to: the parent run id the report is logged to, if any.
        log_note: why it was not logged, if it was not.
        tuning: optional tuning results (see :func:`tuning_section`).
        extra_sections: further markdown sections appended at the end.
    """
    scope = f"sweep `{data.sweep['sweep_id']}`" if data.sweep else "all training runs of the experiment (no sweep)"
    head = [
        f"# Influence strategies compared: `{data.experiment_name}`",
        "",
        f"Experiment `{data.experiment_name}` (id {data.experiment_id}) at `{data.tracking_uri}`; analysed: "
        f"{scope}. MLflow UI: {mlflow_link(data)}.",
    ]
    head += [f"> {note}" for note in data.notes]
    if logged_to:
        head.append(
            f"\nThis report and its figures are logged as artifacts of run `{logged_to}` under `{ARTIFACT_PATH}/`."
        )
    elif log_note:
        head.append(f"\n{log_note}")
    body = ["## Summary", ""]
    if not summaries or all(s.empty for s in summaries.values()):
        body.append("No finished training run with the analysed metrics: nothing to summarise.\n")
    for metric, summary in summaries.items():
        body.append(summary_section(summary, metric, baseline=settings.baseline))
    missing = missing_metrics_section(scores)
    if missing:
        body.append(missing)
    if figures:
        body += ["## Figures", ""]
        for caption, png in figures.items():
            svg = str(Path(png).with_suffix(".svg"))
            body += [f"**{caption}** ([SVG]({svg}))", "", f"![{caption}]({png})", ""]
    body += ["## Runs", "", run_counts_section(data), "## Sweep configuration", "", configuration_section(data)]
    tune = tuning_section(tuning)
    if tune:
        body.append(tune)
    body.append(methods_section(settings))
    body += list(extra_sections)
    return "\n".join([*head, "", *body]).rstrip() + "\n"


# --------------------------------------------------------------------------------------------- side effects


def save_figure(
    fig: Figure, out_dir: Path, name: str, *, formats: Sequence[str] = FIGURE_FORMATS, dpi: int = 150
) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.<fmt>`` for each format; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=dpi, metadata={"Date": None} if ext == "svg" else None)
        paths.append(path)
    return paths


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def log_artifacts(
    tracking_uri: str, run_id: str, out_dir: Path, files: Iterable[Path], artifact_path: str = ARTIFACT_PATH
) -> None:
    """Log ``files`` (inside ``out_dir``) as artifacts of ``run_id``, keeping their paths relative to
    ``out_dir`` under ``artifact_path``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    for f in files:
        rel = Path(f).resolve().relative_to(out_dir.resolve()).parent
        dest = artifact_path if str(rel) == "." else f"{artifact_path}/{rel.as_posix()}"
        client.log_artifact(run_id, str(f), artifact_path=dest)
