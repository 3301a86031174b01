"""One call from an MLflow sweep (or from a report's shipped files) to a report folder: what compare.py runs.

Either way the report is built from the folder's own ``runs.csv`` and ``history.csv``: :func:`analyse` writes them
from the store first and reads them back, :func:`analyse_files` reads them from an earlier report. So a report and
its rebuild from the shipped files are the same bytes.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lstm_influence import names
from lstm_influence.analysis import plots
from lstm_influence.analysis.bands import convergence_bands, reference_predictors
from lstm_influence.analysis.declaration import Declaration
from lstm_influence.analysis.environment import ENVIRONMENT_FILE, KNOWN_FILE, environment_text, run_environments
from lstm_influence.analysis.estimators import CONFIDENCE
from lstm_influence.analysis.files import (
    ARTIFACT_PATH,
    SUMMARY_FILE,
    log_artifacts,
    save_figure,
    summary_csv,
    write_text,
)
from lstm_influence.analysis.load import DEFAULT_TRACKING_URI, SweepData, load_sweep
from lstm_influence.analysis.measured import measure
from lstm_influence.analysis.rates import solved_rates
from lstm_influence.analysis.raw import HISTORY_FILE, RUNS_FILE, read_raw, write_raw
from lstm_influence.analysis.report import render_report
from lstm_influence.analysis.settings import SIGNIFICANCE, ReportSettings
from lstm_influence.analysis.summaries import (
    ALL_DATASETS,
    CONFIRMATORY,
    EXPLORATORY,
    arm_order,
    metric_scores,
    summarize,
)
from lstm_influence.metrics import EPOCHS_TO_TARGET, PRIMARY_METRIC, TEST_NORM_LOSS, VAL_NORM_LOSS

SECONDARY_METRICS = (EPOCHS_TO_TARGET,)
CURVE_METRIC = VAL_NORM_LOSS
TUNING_FILE = "tuning.csv"
#: What each figure shows, by file stem; the report numbers them in the order :func:`build_figures` returns them.
FIGURES = {
    "solved_by_epoch": "share of seeds that had reached the target by each epoch, one line per arm",
    "convergence": "learning curves of val/norm_loss per arm (every seed; IQM, 95% CI within the seeds' range)",
    "final_loss": "final primary metric per arm (marks: seeds; bar: IQM, 95% CI; dashes: references)",
    "stability": "stability (seed spread, divergence rate, gradient-norm spikes)",
    "retention": "influence retention per arm",
    "improvement": "probability of improvement over the control arm (95% CI)",
    "solved": "runs that reached the target per arm (95% Clopper-Pearson CI)",
}


@dataclass
class AnalysisResult:
    """What :func:`analyse` or :func:`analyse_files` produced."""

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


def metric_list(primary: str = PRIMARY_METRIC, extra: Sequence[str] = ()) -> list[str]:
    """The primary metric, the default secondary ones, then ``extra``, without repeats."""
    return list(dict.fromkeys([primary, *SECONDARY_METRICS, *extra]))


def diverged_ends(data: SweepData, metric: str = CURVE_METRIC) -> pd.DataFrame:
    """The last finite point of each diverged run's per-epoch ``metric`` (where its curve stops)."""
    h = data.history[(data.history["metric"] == metric) & np.isfinite(data.history["value"].astype(float))]
    h = h[h["value"].abs() < 1e300]
    div = set(data.included.loc[data.included["diverged"], "run_id"])
    h = h[h["run_id"].isin(div)].sort_values("step")
    return h.groupby("run_id").tail(1)[["dataset", "arm", "step", "value"]]


def targets_by_dataset(data: SweepData) -> dict[str, float]:
    """``train.target_norm_loss`` per dataset (the median over used runs, in case it varies)."""
    t = data.included.dropna(subset=["target"])
    return t.groupby("dataset")["target"].median().to_dict()


def headline(rates: pd.DataFrame) -> str:
    """The figure that answers the study's question, by stem.

    Where arms differ in how many runs solved a task, whether an arm learns the task at all is the finding, and the
    share solved over training shows it (``solved_by_epoch``); otherwise the arms differ, if at all, in how good
    they end up, which the final primary metric shows (``final_loss``).
    """
    tasks = rates[rates["dataset"] != ALL_DATASETS] if not rates.empty else rates
    differs = any(cell["n_solved"].nunique() > 1 for _, cell in tasks.groupby("dataset"))
    return "solved_by_epoch" if differs else "final_loss"


def build_figures(
    data: SweepData,
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, pd.DataFrame],
    *,
    settings: ReportSettings,
    bands: pd.DataFrame,
    references: pd.DataFrame,
    rates: pd.DataFrame,
) -> dict[str, Figure]:
    """The figures by file stem (see :data:`FIGURES`), the headline (:func:`headline`) first.

    Every figure draws each arm in the same style (:func:`~lstm_influence.analysis.plots.arm_styles` over the
    report's arms, the control first).
    """
    primary = summaries[settings.primary]
    per_dataset = primary[primary["dataset"] != ALL_DATASETS]
    lines = references[references["split"] == "test"] if settings.primary == TEST_NORM_LOSS else None
    arms = arm_order(data.arms, settings.control)
    styles = plots.arm_styles(arms, settings.control)
    control = settings.control
    targets = targets_by_dataset(data)
    figures = {
        "solved_by_epoch": plots.solved_by_epoch_figure(
            scores[EPOCHS_TO_TARGET], targets=targets, styles=styles, control=control
        ),
        "convergence": plots.convergence_figure(
            bands, history=data.history, targets=targets, ends=diverged_ends(data), styles=styles, control=control
        ),
        "final_loss": plots.distribution_figure(
            scores[settings.primary], primary, metric=settings.primary, references=lines, styles=styles, control=control
        ),
        "stability": plots.stability_figure(
            scores[settings.primary], per_dataset, data.metrics, styles=styles, control=control
        ),
        "retention": plots.retention_figure(
            data.metrics[data.metrics["run_id"].isin(data.included["run_id"])], styles=styles, control=control
        ),
        "improvement": plots.improvement_figure(primary, baseline=control, styles=styles),
        "solved": plots.solved_figure(rates, styles=styles, control=control),
    }
    first = headline(rates)
    return {first: figures.pop(first), **figures}


@dataclass(frozen=True)
class Statistics:
    """Every frame the report and its figures are drawn from (see :func:`statistics`)."""

    scores: dict[str, pd.DataFrame]
    summaries: dict[str, pd.DataFrame]
    references: pd.DataFrame
    rates: pd.DataFrame
    bands: pd.DataFrame


def statistics(data: SweepData, settings: ReportSettings) -> Statistics:
    """Scores and summaries per analysed metric, the reference predictors, the solved rates and the learning
    curves' bands."""
    scores = {m: metric_scores(data.runs, data.metrics, m) for m in settings.metrics}
    summaries = {
        m: summarize(
            scores[m],
            m,
            control=settings.control,
            family=CONFIRMATORY if m == settings.primary else EXPLORATORY,
            confidence=settings.confidence,
            margin=settings.margins.get(m),
            equivalence_arms=settings.equivalence_arms,
            order=data.arms,
        )
        for m in settings.metrics
    }
    rates = solved_rates(
        scores[EPOCHS_TO_TARGET], control=settings.control, confidence=settings.confidence, order=data.arms
    )
    return Statistics(
        scores=scores,
        summaries=summaries,
        references=reference_predictors(data.metrics, data.runs),
        rates=rates,
        bands=convergence_bands(data.history, CURVE_METRIC, confidence=settings.confidence),
    )


def write_figures(
    data: SweepData, stats: Statistics, settings: ReportSettings, out: Path
) -> tuple[dict[str, str], list[Path]]:
    """Save the figures (none without used runs) under ``out/figures``, numbered in the order
    :func:`build_figures` returns them.

    Returns:
        ``({caption: the PNG's path relative to out}, every file written)``.
    """
    if data.included.empty:
        return {}, []
    figures = build_figures(
        data,
        stats.summaries,
        stats.scores,
        settings=settings,
        bands=stats.bands,
        references=stats.references,
        rates=stats.rates,
    )
    captions: dict[str, str] = {}
    files: list[Path] = []
    for number, (stem, fig) in enumerate(figures.items(), start=1):
        files += save_figure(fig, out / "figures", stem)
        captions[f"Figure {number}: {FIGURES[stem]}"] = f"figures/{stem}.png"
    return captions, files


def write_report(
    data: SweepData, out: Path, settings: ReportSettings, *, tuning: pd.DataFrame | None = None
) -> tuple[Path, list[Path], dict[str, pd.DataFrame]]:
    """Statistics, figures, ``summary.csv``, ``environment.txt`` and ``report.md`` of ``data`` into ``out``.

    ``environment.txt`` lists the used runs' provenance (:mod:`~lstm_influence.analysis.environment`), followed by
    ``known_environment.txt`` where one sits in ``out`` (a note on runs that predate the provenance tags).

    Returns:
        ``(report path, every file written, summaries by metric)``.
    """
    stats = statistics(data, settings)
    figures_rel, files = write_figures(data, stats, settings, out)
    files.append(write_text(out / SUMMARY_FILE, summary_csv(stats.summaries.values())))
    environments = run_environments(data)
    known = out / KNOWN_FILE
    note = known.read_text(encoding="utf-8") if known.is_file() else None
    files.append(write_text(out / ENVIRONMENT_FILE, environment_text(environments, note)))
    text = render_report(
        data,
        stats.summaries,
        stats.scores,
        figures_rel,
        settings,
        measured=measure(stats.summaries, stats.rates, settings),
        references=stats.references,
        rates=stats.rates,
        tuning=tuning,
        environments=environments,
        environment_note=note,
        headline=next(iter(figures_rel), None),
    )
    report = write_text(out / "report.md", text)
    return report, [report, *files], stats.summaries


def _tuning_round_trip(tuning: pd.DataFrame | None, out: Path) -> tuple[pd.DataFrame | None, list[Path]]:
    """Ship the tuning table as ``tuning.csv`` and use what the file holds, so a rebuild reads the same table."""
    if tuning is None or tuning.empty:
        return None, []
    path = out / TUNING_FILE
    write_text(path, tuning.to_csv(index=False, lineterminator="\n"))
    return pd.read_csv(path), [path]


def _settings(
    metrics: Sequence[str],
    primary: str | None,
    control: str | None,
    confidence: float,
    alpha: float,
    margins: Mapping[str, float] | None = None,
    declaration: Declaration | None = None,
) -> ReportSettings:
    """The report's settings, the same whether the runs come from MLflow or from shipped files.

    What is given here wins over the declaration; a margin given here for a metric the declaration also has makes
    that metric's equivalence ad hoc.
    """
    declared = dict(declaration.margins) if declaration else {}
    ad_hoc = dict(margins or {})
    primary = primary or (declaration.primary if declaration else None) or PRIMARY_METRIC
    extra = [*(declaration.metrics if declaration else ()), *metrics, *declared, *ad_hoc]
    return ReportSettings(
        metrics=metric_list(primary, extra),
        primary=primary,
        control=control or (declaration.control if declaration else None) or names.CONTROL_ARM,
        confidence=confidence,
        alpha=alpha,
        margins={**declared, **ad_hoc},
        declared_margins=frozenset(set(declared) - set(ad_hoc)),
        declaration=declaration.source if declaration else None,
        equivalence_arms=declaration.equivalence_arms if declaration else None,
    )


def analyse(
    experiment: str,
    *,
    sweep_id: str | None = None,
    tracking_uri: str = DEFAULT_TRACKING_URI,
    out_dir: Path | str | None = None,
    metrics: Sequence[str] = (),
    primary: str | None = None,
    control: str | None = None,
    confidence: float = CONFIDENCE,
    alpha: float = SIGNIFICANCE,
    log_to_mlflow: bool = True,
    tuning: pd.DataFrame | None = None,
    margins: Mapping[str, float] | None = None,
    declaration: Declaration | None = None,
) -> AnalysisResult:
    """Load a sweep from MLflow, ship its raw data, and write the statistics, figures and ``report.md``.

    Args:
        experiment: MLflow experiment name.
        sweep_id: the sweep to analyse (default: the latest; all training runs when the experiment has no sweep).
        tracking_uri: any MLflow tracking URI.
        out_dir: output folder (default ``results/<experiment>/``).
        metrics: further summary metrics to analyse (exploratory); ``primary`` and
            :data:`SECONDARY_METRICS` always are.
        primary: the confirmatory metric (default: the declaration's, else ``test/norm_loss``).
        control: the reference arm (default: the declaration's, else ``baseline``).
        confidence: every interval's two-sided level.
        alpha: the family-wise error rate the report's verdicts use.
        log_to_mlflow: log the folder as artifacts of the sweep's parent run under ``analysis/``.
        tuning: optional tuning results for the report's tuning section (shipped as ``tuning.csv``).
        margins: ad hoc equivalence margins by metric (exploratory TOSTs against the control).
        declaration: the analysis declared before the runs (:mod:`~lstm_influence.analysis.declaration`): its
            metrics, primary metric, control and margins (a confirmatory family of TOSTs per metric).
    """
    out = Path(out_dir) if out_dir is not None else default_out_dir(experiment)
    loaded = load_sweep(experiment, sweep_id=sweep_id, tracking_uri=tracking_uri)
    raw_files = write_raw(loaded, out)
    data = read_raw(out)
    tuning, tuning_files = _tuning_round_trip(tuning, out)
    settings = _settings(metrics, primary, control, confidence, alpha, margins, declaration)
    report, files, summaries = write_report(data, out, settings, tuning=tuning)
    files += raw_files + tuning_files
    parent = data.sweep["run_id"] if data.sweep else None
    logged_to, messages = None, []
    if log_to_mlflow and parent:
        try:
            log_artifacts(tracking_uri, parent, out, files, artifact_path=ARTIFACT_PATH)
            logged_to = parent
        except Exception as err:  # the local report stays useful; say why it is not in MLflow
            messages.append(f"Could not log artifacts to run {parent}: {err}")
    if data.included.empty:
        messages.append("No finished training runs to analyse.")
    return AnalysisResult(out, report, files, summaries, data, logged_to, messages)


def analyse_files(
    from_dir: Path | str,
    *,
    out_dir: Path | str,
    metrics: Sequence[str] = (),
    primary: str | None = None,
    control: str | None = None,
    confidence: float = CONFIDENCE,
    alpha: float = SIGNIFICANCE,
    margins: Mapping[str, float] | None = None,
    declaration: Declaration | None = None,
) -> AnalysisResult:
    """Rebuild a report from a report folder's ``runs.csv`` and ``history.csv`` (and ``tuning.csv``), no MLflow.

    With the settings the original was made with (the arguments of :func:`analyse`), the new ``report.md``,
    ``summary.csv`` and ``environment.txt`` are byte-identical.
    """
    source, out = Path(from_dir), Path(out_dir)
    data = read_raw(source)
    files: list[Path] = []
    if source.resolve() != out.resolve():
        out.mkdir(parents=True, exist_ok=True)
        for name in (RUNS_FILE, HISTORY_FILE, TUNING_FILE, KNOWN_FILE):
            if (source / name).is_file():
                files.append(Path(shutil.copyfile(source / name, out / name)))
    tuning = pd.read_csv(source / TUNING_FILE) if (source / TUNING_FILE).is_file() else None
    settings = _settings(metrics, primary, control, confidence, alpha, margins, declaration)
    report, written, summaries = write_report(data, out, settings, tuning=tuning)
    messages = ["No finished training runs to analyse."] if data.included.empty else []
    return AnalysisResult(out, report, written + files, summaries, data, None, messages)
