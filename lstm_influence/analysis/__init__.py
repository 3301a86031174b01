"""Analysis of influence sweeps: MLflow runs (or shipped files) → tidy frames → exact statistics → figures, report.

Modules:
    estimators: array estimators, pure numpy (IQM and its Tukey–McLaughlin interval, P(improvement) with
        Newcombe's interval, exact signed-rank and rank-sum tests, Hodges–Lehmann differences, Holm, mean ranks,
        Clopper–Pearson rates, the exact McNemar test, Kaplan–Meier medians).
    summaries: the estimators per dataset × arm over tidy frames (scores, each metric's summary against the control).
    rates: the solved rates per dataset × arm (Clopper–Pearson, exact McNemar or Fisher).
    bands: learning-curve bands across seeds and the reference predictors' losses.
    coverage: the intervals' coverage, by simulation at a given number of seeds (exactly for rates).
    load: read a sweep from any MLflow tracking URI into tidy frames. Runs carry ``strategy`` and ``arm`` tags;
        from here on every frame has an ``arm`` column (the ``arm`` tag, else the ``strategy`` tag).
    raw: the shipped raw data, ``runs.csv`` and ``history.csv``, written and read back without MLflow.
    environment: the runs' provenance (commits, versions, backends) and the comparisons that mix them.
    declaration: the analysis declared before the runs (primary metric, control, margins).
    plots: matplotlib figures, one module per family (curves, solved, scores, rates, per_run, improvement) over a
        shared style and layout; ``plot_*(…, ax=None) -> Axes`` and ``*_figure(…) -> Figure``, never saved here.
    settings: :class:`~lstm_influence.analysis.settings.ReportSettings`, how the statistics are computed.
    measured: the simulations the report quotes, run at its cells' sample sizes before any text is written.
    markdown: numbers, intervals and tables as the report writes them.
    result_sections, run_sections: the report's sections (what the runs show; which runs, from where).
    report: :func:`~lstm_influence.analysis.report.render_report`, the sections in order.
    files: what is written: figure files, ``summary.csv`` (whose arm column is named ``strategy``), MLflow
        artifacts.
    tuning_report: the tuning studies' table, read from MLflow.
    pipeline: :func:`analyse` (from MLflow) and :func:`analyse_files` (from shipped files), what
        ``experiments/compare.py`` runs.

Nothing here imports TensorFlow or Keras.
"""

from lstm_influence.analysis.bands import convergence_bands, reference_predictors
from lstm_influence.analysis.estimators import (
    hodges_lehmann_paired,
    holm,
    iqm,
    iqm_interval,
    kaplan_meier_median,
    mcnemar_exact,
    newcombe_interval,
    probability_of_improvement,
    proportion_ci,
    rank_sum_test,
    signed_rank_test,
)
from lstm_influence.analysis.load import SweepData, load_sweep
from lstm_influence.analysis.pipeline import AnalysisResult, analyse, analyse_files
from lstm_influence.analysis.rates import solved_rates
from lstm_influence.analysis.raw import read_raw, write_raw
from lstm_influence.analysis.summaries import metric_scores, summarize

__all__ = [
    "AnalysisResult",
    "SweepData",
    "analyse",
    "analyse_files",
    "convergence_bands",
    "hodges_lehmann_paired",
    "holm",
    "iqm",
    "iqm_interval",
    "kaplan_meier_median",
    "load_sweep",
    "mcnemar_exact",
    "metric_scores",
    "newcombe_interval",
    "probability_of_improvement",
    "proportion_ci",
    "rank_sum_test",
    "read_raw",
    "reference_predictors",
    "signed_rank_test",
    "solved_rates",
    "summarize",
    "write_raw",
]
