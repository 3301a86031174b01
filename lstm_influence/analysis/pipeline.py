"""One call from an MLflow experiment to a report folder (and the sweep's parent run): what compare.py runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lstm_influence.analysis import plots
from lstm_influence.analysis.load import DEFAULT_TRACKING_URI, SweepData, load_sweep
from lstm_influence.analysis.report import (
    ARTIFACT_PATH,
    ReportSettings,
    log_artifacts,
    render_report,
    save_figure,
    write_text,
)
from lstm_influence.analysis.stats import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    N_RESAMPLES,
    convergence_bands,
    metric_scores,
    summarize,
)

PRIMARY_METRIC = "test/norm_loss"
DEFAULT_METRICS = (PRIMARY_METRIC, "conv/epochs_to_target")
CURVE_METRIC = "val/norm_loss"
FIGURES = {
    "convergence": "Figure 1: convergence of val/norm_loss (IQM across seeds, 95% CI band)",
    "final_loss": "Figure 2: final normalised test loss per strategy (points: seeds; bar: IQM, 95% CI)",
    "stability": "Figure 3: stability (seed spread, divergence rate, gradient-norm spikes)",
    "retention": "Figure 4: influence retention per strategy",
    "improvement": "Figure 5: probability of improvement over the baseline (95% CI)",
}


@dataclass
class AnalysisResult:
    """What :func:`analyse` produced."""

    out_dir: Path
    report: Path
    files: list[Path]
    summaries: dict[str, pd.DataFrame]
    data: SweepData
    logged_to: str | None = None
    messages: list[str] = field(default_factory=list)


def default_out_dir(experiment: str) -> Path:
    """``results/<experiment>/`` with the name made safe for a folder."""
    return Path("results") / (re.sub(r"[^\w.-]+", "_", experiment).strip("._") or "experiment")


def metric_list(extra: Sequence[str] = ()) -> list[str]:
    """The default metrics followed by ``extra``, without repeats."""
    return list(dict.fromkeys([*DEFAULT_METRICS, *extra]))


def diverged_ends(data: SweepData, metric: str = CURVE_METRIC) -> pd.DataFrame:
    """The last finite point of each diverged run's per-epoch ``metric`` (where its curve stops)."""
    h = data.history[(data.history["metric"] == metric) & np.isfinite(data.history["value"].astype(float))]
    h = h[h["value"].abs() < 1e300]
    div = set(data.included.loc[data.included["diverged"], "run_id"])
    h = h[h["run_id"].isin(div)].sort_values("step")
    return h.groupby("run_id").tail(1)[["dataset", "strategy", "step", "value"]]


def targets_by_dataset(data: SweepData) -> dict[str, float]:
    """``train.target_norm_loss`` per dataset (the median over used runs, in case it varies)."""
    t = data.included.dropna(subset=["target"])
    return t.groupby("dataset")["target"].median().to_dict()


def build_figures(
    data: SweepData,
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, pd.DataFrame],
    *,
    baseline: str,
    bands: pd.DataFrame,
) -> dict[str, Figure]:
    """The five figures, by file stem (see :data:`FIGURES`)."""
    primary = summaries[PRIMARY_METRIC]
    per_dataset = primary[primary["dataset"] != "all"]
    return {
        "convergence": plots.convergence_figure(bands, targets=targets_by_dataset(data), ends=diverged_ends(data)),
        "final_loss": plots.distribution_figure(scores[PRIMARY_METRIC], primary, metric=PRIMARY_METRIC),
        "stability": plots.stability_figure(scores[PRIMARY_METRIC], per_dataset, data.metrics),
        "retention": plots.retention_figure(data.metrics[data.metrics["run_id"].isin(data.included["run_id"])]),
        "improvement": plots.improvement_figure(primary, baseline=baseline),
    }


def analyse(
    experiment: str,
    *,
    sweep_id: str | None = None,
    tracking_uri: str = DEFAULT_TRACKING_URI,
    out_dir: Path | str | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    baseline: str = "baseline",
    higher_is_better: Sequence[str] = (),
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
    log_to_mlflow: bool = True,
    tuning: pd.DataFrame | None = None,
) -> AnalysisResult:
    """Load a sweep, compute the statistics, write figures, ``report.md`` and CSVs, and log them to the parent run.

    Args:
        experiment: MLflow experiment name.
        sweep_id: the sweep to analyse (default: the latest; all training runs when the experiment has no sweep).
        tracking_uri: any MLflow tracking URI.
        out_dir: output folder (default ``results/<experiment>/``).
        metrics: summary metrics to analyse; ``test/norm_loss`` is always included and comes first.
        baseline: the reference strategy.
        higher_is_better: metrics to treat as higher-is-better besides ``conv/reached_target``.
        n_resamples, seed, confidence: bootstrap settings.
        log_to_mlflow: log the report and figures as artifacts of the sweep's parent run under ``analysis/``.
        tuning: optional tuning results for the report's tuning section.
    """
    out = Path(out_dir) if out_dir is not None else default_out_dir(experiment)
    metrics = list(dict.fromkeys([PRIMARY_METRIC, *metrics]))
    data = load_sweep(experiment, sweep_id=sweep_id, tracking_uri=tracking_uri, history_metrics=(CURVE_METRIC,))
    boot = {"n_resamples": n_resamples, "seed": seed, "confidence": confidence}
    scores = {m: metric_scores(data.runs, data.metrics, m, higher_is_better=higher_is_better) for m in metrics}
    summaries = {
        m: summarize(scores[m], m, baseline=baseline, higher_is_better=higher_is_better, **boot) for m in metrics
    }
    bands = convergence_bands(data.history, CURVE_METRIC, **boot)

    files: list[Path] = []
    figures_rel: dict[str, str] = {}
    if not data.included.empty:
        for stem, fig in build_figures(data, summaries, scores, baseline=baseline, bands=bands).items():
            files += save_figure(fig, out / "figures", stem)
            figures_rel[FIGURES[stem]] = f"figures/{stem}.png"
    files.append(write_text(out / "summary.csv", pd.concat(summaries.values()).to_csv(index=False)))
    files.append(write_text(out / "runs.csv", data.runs.to_csv(index=False)))

    settings = ReportSettings(metrics=metrics, baseline=baseline, **boot)
    parent = data.sweep["run_id"] if data.sweep else None
    logged_to, messages = None, []
    if log_to_mlflow and parent:
        logged_to = parent
        log_note = None
    elif parent:
        log_note = "Not logged to MLflow (logging was turned off)."
    else:
        log_note = "Not logged to MLflow: there is no sweep parent run to attach it to."

    def write(logged: str | None, note: str | None) -> Path:
        text = render_report(
            data, summaries, scores, figures_rel, settings, logged_to=logged, log_note=note, tuning=tuning
        )
        return write_text(out / "report.md", text)

    report = write(logged_to, log_note)
    if logged_to:
        try:
            log_artifacts(tracking_uri, logged_to, out, [report, *files], artifact_path=ARTIFACT_PATH)
        except Exception as err:  # the local report stays useful; say why it is not in MLflow
            messages.append(f"Could not log artifacts to run {logged_to}: {err}")
            report = write(None, f"Logging to MLflow failed: {err}")
            logged_to = None
    if data.included.empty:
        messages.append("No finished training runs to analyse.")
    return AnalysisResult(out, report, [report, *files], summaries, data, logged_to, messages)
