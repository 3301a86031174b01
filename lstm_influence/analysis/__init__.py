"""Analysis of influence sweeps: MLflow runs (or shipped files) → tidy frames → exact statistics → figures, report.

Modules:
    estimators: array estimators, pure numpy (IQM and its Tukey–McLaughlin interval, P(improvement) with
        Newcombe's interval, exact signed-rank and rank-sum tests, Hodges–Lehmann differences, Holm, mean ranks,
        Wilson rates, Kaplan–Meier medians).
    summaries: the estimators per dataset × arm over tidy frames (scores, summaries, reference predictors, curves).
    coverage: the intervals' coverage measured by simulation at a given number of seeds.
    load: read a sweep from any MLflow tracking URI into tidy frames.
    raw: the shipped raw data, ``runs.csv`` and ``history.csv``, written and read back without MLflow.
    plots: matplotlib figures; ``plot_*(…, ax=None) -> Axes`` and ``*_figure(…) -> Figure``, never saved here.
    report: the markdown report, figure files and MLflow artifacts.
    pipeline: :func:`analyse` (from MLflow) and :func:`analyse_files` (from shipped files), what
        ``experiments/compare.py`` runs.

Nothing here imports TensorFlow or Keras.
"""

from lstm_influence.analysis.estimators import (
    hodges_lehmann_paired,
    holm,
    iqm,
    iqm_interval,
    kaplan_meier_median,
    newcombe_interval,
    probability_of_improvement,
    rank_sum_test,
    signed_rank_test,
)
from lstm_influence.analysis.load import SweepData, load_sweep
from lstm_influence.analysis.pipeline import AnalysisResult, analyse, analyse_files
from lstm_influence.analysis.raw import read_raw, write_raw
from lstm_influence.analysis.summaries import convergence_bands, metric_scores, reference_predictors, summarize

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
    "metric_scores",
    "newcombe_interval",
    "probability_of_improvement",
    "rank_sum_test",
    "read_raw",
    "reference_predictors",
    "signed_rank_test",
    "summarize",
    "write_raw",
]
