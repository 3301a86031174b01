"""Comparison figures: one style per arm across a report, names on the axes, the seeds behind every summary.

Each ``plot_*`` function draws one panel: it takes ``ax=None`` (a new figure is made when None) and returns the
axes. Each ``*_figure`` function lays the panels out and returns the ``matplotlib.figure.Figure``. Nothing here
saves or shows a figure; the caller decides. Figures are built with ``matplotlib.figure.Figure`` directly, not
pyplot, so no GUI backend is needed and no global state is touched.

Every figure takes ``styles`` from :func:`arm_styles` (one colour, marker and line style per arm, the control in
black) and ``control``; the report passes the same styles to all of them, so an arm looks the same everywhere.
Arms are drawn in the order of ``styles`` (the report's order: the control first). Categorical axes are arms, one
row each, labelled with the arm's name; a legend is only a key to marks, never the only way to tell arms apart.

Inputs are the analysis's tidy frames (``metric_scores`` and ``summarize`` from :mod:`~.analysis.summaries`,
``solved_rates`` from :mod:`~.analysis.rates`, ``convergence_bands`` and ``reference_predictors`` from
:mod:`~.analysis.bands`; each has an ``arm`` column) and the long metric frames of :mod:`~.analysis.load`.

One module per figure family, every name importable from here (``lstm_influence.analysis.plots.arm_styles``):
``style`` (:func:`arm_styles`, :func:`arm_label`, the palette), ``layout`` (rows of arms, panels, titles, keys),
``curves`` (learning curves), ``solved`` (share solved by epoch), ``scores`` (final scores), ``rates`` (solved and
divergence rates), ``per_run`` (seed spread, spikes, retention; the stability figure) and ``improvement``
(P(improvement)).
"""

from __future__ import annotations

from lstm_influence.analysis.plots.curves import band_within_seeds, convergence_figure, plot_arm_curves, seed_curves
from lstm_influence.analysis.plots.improvement import improvement_figure, plot_probability_of_improvement
from lstm_influence.analysis.plots.per_run import plot_run_metric, plot_seed_spread, retention_figure, stability_figure
from lstm_influence.analysis.plots.rates import plot_divergence_rate, plot_rates, solved_figure
from lstm_influence.analysis.plots.scores import distribution_figure, plot_score_distribution
from lstm_influence.analysis.plots.solved import plot_solved_by_epoch, solved_by_epoch, solved_by_epoch_figure
from lstm_influence.analysis.plots.style import (
    CONTROL_STYLE,
    GRID,
    LABEL_WIDTH,
    LINE_HEIGHT,
    LINESTYLES,
    MARKERS,
    REFERENCE_GREY,
    ROW_HEIGHT,
    ROW_SHADE,
    SEED_ALPHA,
    TOL_MUTED,
    arm_label,
    arm_styles,
)

__all__ = [
    "CONTROL_STYLE",
    "GRID",
    "LABEL_WIDTH",
    "LINESTYLES",
    "LINE_HEIGHT",
    "MARKERS",
    "REFERENCE_GREY",
    "ROW_HEIGHT",
    "ROW_SHADE",
    "SEED_ALPHA",
    "TOL_MUTED",
    "arm_label",
    "arm_styles",
    "band_within_seeds",
    "convergence_figure",
    "distribution_figure",
    "improvement_figure",
    "plot_arm_curves",
    "plot_divergence_rate",
    "plot_probability_of_improvement",
    "plot_rates",
    "plot_run_metric",
    "plot_score_distribution",
    "plot_seed_spread",
    "plot_solved_by_epoch",
    "retention_figure",
    "seed_curves",
    "solved_by_epoch",
    "solved_by_epoch_figure",
    "solved_figure",
    "stability_figure",
]
