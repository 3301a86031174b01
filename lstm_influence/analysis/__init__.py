"""Analysis of influence-strategy sweeps: MLflow runs → tidy frames → rliable-style statistics → figures and report.

Modules:
    load: read a sweep (or an experiment) from any MLflow tracking URI into tidy pandas frames.
    stats: pure statistics (IQM, stratified bootstrap intervals, probability of improvement, Mann–Whitney with
        Holm, divergence rate, censored time to target).
    plots: matplotlib figures; ``plot_*(…, ax=None) -> Axes`` and ``*_figure(…) -> Figure``, never saved here.
    report: the markdown report, figure files and MLflow artifacts.
    pipeline: :func:`analyse`, everything in one call (what ``experiments/compare.py`` runs).

Nothing here imports TensorFlow or Keras.
"""

from lstm_influence.analysis.load import SweepData, load_sweep
from lstm_influence.analysis.pipeline import AnalysisResult, analyse
from lstm_influence.analysis.stats import (
    convergence_bands,
    holm,
    iqm,
    iqm_ci,
    kaplan_meier_median,
    metric_scores,
    probability_of_improvement,
    summarize,
)

__all__ = [
    "AnalysisResult",
    "SweepData",
    "analyse",
    "convergence_bands",
    "holm",
    "iqm",
    "iqm_ci",
    "kaplan_meier_median",
    "load_sweep",
    "metric_scores",
    "probability_of_improvement",
    "summarize",
]
