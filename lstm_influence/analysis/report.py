"""The markdown report: which sections it has, in which order, and how it says what every number is.

:func:`render_report` is pure (frames and the measured simulations in, markdown text out; the same inputs give the
same bytes). The sections live beside it: :mod:`~lstm_influence.analysis.result_sections` (what the runs show) and
:mod:`~lstm_influence.analysis.run_sections` (which runs, from where); the simulations they quote are run before,
by :func:`~lstm_influence.analysis.measured.measure`; writing files and logging to MLflow is
:mod:`~lstm_influence.analysis.files`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lstm_influence import tracking
from lstm_influence.analysis.load import SweepData
from lstm_influence.analysis.measured import Measured
from lstm_influence.analysis.result_sections import (
    coverage_section,
    equivalence_section,
    families_section,
    references_section,
    solved_section,
    summary_section,
)
from lstm_influence.analysis.run_sections import (
    configuration_section,
    environment_section,
    missing_metrics_section,
    run_counts_section,
    tuning_section,
)
from lstm_influence.analysis.settings import ReportSettings


def methods_section(settings: ReportSettings) -> str:
    """How every number in the report was computed."""
    pct = f"{settings.confidence:.0%}"
    return f"""## Methods

- Unit of analysis: one training run (one seed) of an arm on a dataset. Arms are the runs' `arm` tags (the
  `strategy` tag where a run has none). Every arm sees the same data (`dataset.data_seed`) and `seed` fixes the
  initial weights and the shuffling, so runs of two arms with the same seed, budget and data seed are pairs.
- Primary comparison, per dataset, each arm against `{settings.control}`: the paired differences arm − control;
  their Hodges–Lehmann estimate (median of the Walsh averages) with the exact {pct} interval from the Wilcoxon
  signed-rank distribution; the exact two-sided Wilcoxon signed-rank test (the sign-flip permutation distribution
  of the rank sum, computed exactly, ties by midranks, zero differences dropped). Where some run has no partner:
  the exact Mann–Whitney rank-sum test (full permutation distribution, ties by midranks) and the two-sample
  Hodges–Lehmann shift with its exact interval. No p-value comes from a normal approximation, so none is below the
  smallest the design allows.
- Families: `{settings.primary}` is confirmatory; Holm's step-down correction over its comparisons. Other metrics are
  exploratory (Holm within each metric, no verdict).
- Equivalence, where a metric has a margin m (declared in advance, or ad hoc with `--margin`): two one-sided exact
  tests (TOST) against `{settings.control}`, signed-rank on d + m > 0 and on d − m < 0 (rank-sum without partners),
  p = the larger, Holm within the metric; "equivalent within ±m" only when it passes, "not shown" otherwise. A
  difference test that does not reject says nothing about equivalence and is never read as "no difference".
- IQM: interquartile mean, the 25% trimmed mean (rliable); {pct} Tukey–McLaughlin interval (trimmed mean ± t(h − 1)
  × winsorized SE, h the runs kept), its lower end clipped at 0 for metrics that cannot be negative. The learning
  curves' bands are the same interval of the IQM at each epoch.
- P(improvement): P(a run of the arm beats a run of `{settings.control}`) + ½ P(tie) (rliable), with Newcombe's
  score-type interval (Hanley–McNeil variance), which stays open at complete separation. Across datasets: the mean
  over datasets with Newcombe's square-and-add interval.
- Mean rank: arms ranked within each dataset × seed block where every arm has a run (1 = best, ties share), averaged
  over blocks and then over datasets; per dataset a t interval over the blocks with two pseudo-blocks added, one
  where the arm ranks first and one where it ranks last (so it never collapses to a point), and across datasets
  Newcombe's square-and-add. (A percentile bootstrap covered only 49% at 10 seeds in simulation.)
- Diverged runs (`stab/diverged = 1`) take the worst rank in every metric, whatever value they logged, and are left
  out of IQM and median; their rate has a Clopper–Pearson interval.
- Censoring of `conv/epochs_to_target`: a run that never reached `train.target_norm_loss` is right-censored at
  `train.epochs`; rank-based statistics and IQM use `train.epochs + 1`, the Kaplan–Meier median
  (`scipy.stats.ecdf` on `CensoredData`, log-log pointwise band) treats it as not reached by the budget.
- Runs left out: not FINISHED (FAILED with their `error` tag, still RUNNING, KILLED), without strategy/dataset tags,
  or superseded by a later run of the same `config_hash`.
- Data: this report is built from `runs.csv` (every run's tags, params and summary metrics) and `history.csv`
  (every per-epoch value) beside it; `python experiments/compare.py --from <this folder> --out DIR` rebuilds it.
"""


def _figure_markdown(caption: str, png: str) -> str:
    """A figure's caption (with a link to its SVG beside the PNG) and the image."""
    svg = str(Path(png).with_suffix(".svg"))
    return f"**{caption}** ([SVG]({svg}))\n\n![{caption}]({png})"


def render_report(
    data: SweepData,
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, pd.DataFrame],
    figures: dict[str, str],
    settings: ReportSettings,
    *,
    measured: Measured,
    references: pd.DataFrame | None = None,
    rates: pd.DataFrame | None = None,
    tuning: pd.DataFrame | None = None,
    environments: pd.DataFrame | None = None,
    environment_note: str | None = None,
    extra_sections: Sequence[str] = (),
    headline: str | None = None,
) -> str:
    """The whole report as markdown (a pure function of its inputs: the same files give the same bytes).

    In order: the title, the headline figure, the results (:func:`_results`), the other figures, the runs and
    where they came from (:func:`_runs`), the methods, then ``extra_sections``.

    Args:
        data: what was loaded.
        summaries: ``{metric: summarize(...) frame}``, the primary metric first.
        scores: ``{metric: metric_scores(...) frame}`` (for the missing-metric list).
        figures: ``{caption: relative path of the PNG}`` (an SVG beside it is linked).
        settings: the statistics settings.
        measured: the simulations the sections quote (:func:`~lstm_influence.analysis.measured.measure`).
        references: from :func:`~lstm_influence.analysis.bands.reference_predictors`.
        rates: from :func:`~lstm_influence.analysis.rates.solved_rates` (the solved-rate section).
        tuning: optional tuning results (see :func:`~lstm_influence.analysis.run_sections.tuning_section`).
        environments: the used runs' provenance
            (:func:`~lstm_influence.analysis.environment.run_environments`; the environment section).
        environment_note: what is known of runs that predate the provenance tags, quoted in that section.
        extra_sections: further markdown sections appended at the end.
        headline: the caption (a key of ``figures``) of the figure that answers the study's question: shown
            first, before the summary, and not again among the figures.
    """
    body = [_figure_markdown(headline, figures[headline]), ""] if headline in figures else []
    body += _results(summaries, scores, settings, measured, references, rates)
    body += _figures(figures, headline)
    body += _runs(data, settings, environments, environment_note, tuning)
    body.append(methods_section(settings))
    body += list(extra_sections)
    return "\n".join([*_title(data), "", *body]).rstrip() + "\n"


def _title(data: SweepData) -> list[str]:
    """The title, what was analysed and where to see it in MLflow, and the notes on how the runs were chosen."""
    scope = f"sweep `{data.sweep['sweep_id']}`" if data.sweep else "all training runs of the experiment (no sweep)"
    parent_run = data.sweep["run_id"] if data.sweep else None
    head = [
        f"# Influence strategies compared: `{data.experiment_name}`",
        "",
        f"Experiment `{data.experiment_name}` (id {data.experiment_id}) at `{data.tracking_uri}`; analysed: "
        f"{scope}. {tracking.ui_hint(data.tracking_uri, data.experiment_id, parent_run)}.",
    ]
    return head + [f"> {note}" for note in data.notes]


def _results(
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, pd.DataFrame],
    settings: ReportSettings,
    measured: Measured,
    references: pd.DataFrame | None,
    rates: pd.DataFrame | None,
) -> list[str]:
    """The summary tables, then every results section that has something to say."""
    body = ["## Summary", ""]
    if not summaries or all(s.empty for s in summaries.values()):
        body.append("No finished training run with the analysed metrics: nothing to summarise.\n")
    for metric, summary in summaries.items():
        body.append(summary_section(summary, metric, control=settings.control, alpha=settings.alpha))
    primary = summaries.get(settings.primary)
    sections = [
        equivalence_section(summaries, settings, measured),
        solved_section(rates, settings, measured),
        references_section(references, primary, settings.control)
        if references is not None and primary is not None
        else "",
        families_section(summaries, settings),
        coverage_section(measured),
        missing_metrics_section(scores),
    ]
    return body + [section for section in sections if section]


def _figures(figures: dict[str, str], headline: str | None) -> list[str]:
    """Every figure but the headline, each with its caption."""
    if not figures:
        return []
    body = ["## Figures", ""]
    if headline in figures:
        body += [f"{headline.split(':')[0]}, the headline, is at the top.", ""]
    for caption, png in figures.items():
        if caption != headline:
            body += [_figure_markdown(caption, png), ""]
    return body


def _runs(
    data: SweepData,
    settings: ReportSettings,
    environments: pd.DataFrame | None,
    environment_note: str | None,
    tuning: pd.DataFrame | None,
) -> list[str]:
    """Where the runs came from, which were used, the sweep's configuration and the tuning studies."""
    body = []
    if environments is not None:
        body.append(environment_section(environments, settings.control, note=environment_note))
    body += ["## Runs", "", run_counts_section(data), "## Sweep configuration", "", configuration_section(data)]
    tune = tuning_section(tuning)
    return [*body, tune] if tune else body
