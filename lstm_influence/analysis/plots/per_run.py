"""Per-run measures per arm: the seeds' spread, gradient-norm spikes, influence retention; the stability
figure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lstm_influence import names
from lstm_influence.analysis.plots.layout import (
    arm_rows,
    datasets_of,
    finite_mask,
    new_axes,
    no_data,
    rows_height,
    suptitle,
    uniform_counts,
)
from lstm_influence.analysis.plots.rates import plot_divergence_rate
from lstm_influence.analysis.plots.style import (
    REFERENCE_GREY,
    styles_for,
)
from lstm_influence.metrics import EXTRA_NORM_RATIO, GRAD_SPIKES, PRIMARY_METRIC, RETENTION


def plot_seed_spread(
    scores: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    metric: str = PRIMARY_METRIC,
    labels: bool = True,
) -> Axes:
    """Relative spread across seeds per arm on one dataset: the interquartile range of the finite scores divided
    by their median (in %), so datasets with different loss scales compare."""
    ax = new_axes(ax)
    s = scores[
        (scores["dataset"] == dataset).to_numpy()
        & finite_mask(scores["value"])
        & (scores["status"] != "missing").to_numpy()
    ]
    if s.empty:
        ax.set_title(dataset)
        return no_data(ax, f"no {metric}")
    styles = styles_for(styles, s["arm"].unique(), control)
    notes = []
    for i, (arm, st) in enumerate(styles.items()):
        v = s.loc[s["arm"] == arm, "value"].to_numpy(dtype=float)
        median = np.median(v) if v.size else np.nan
        notes.append(f"n={v.size}")
        if v.size < 2 or not median:
            continue
        q75, q25 = np.percentile(v, [75, 25])
        ax.barh(i, 100 * (q75 - q25) / abs(median), height=0.6, color=st["color"], alpha=0.85)
    arm_rows(ax, list(styles), labels=labels, right=uniform_counts(notes)[0])
    ax.set_xlim(left=0)
    ax.set_xlabel(f"IQR / median of {metric} (%)")
    return ax


def plot_run_metric(
    metrics: pd.DataFrame,
    metric: str,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    reference: Sequence[float] = (),
    labels: bool = True,
) -> Axes:
    """A per-run summary metric (e.g. ``stab/grad_spikes``, ``influence/retention``) on one dataset: a row per arm
    that logged it, one mark per run and the mean across seeds as a bar. Arms that never log it are left out."""
    ax = new_axes(ax)
    m = metrics[(metrics["metric"] == metric).to_numpy() & finite_mask(metrics["value"])]
    m = m[m["dataset"] == dataset]
    if m.empty:
        ax.set_title(dataset)
        return no_data(ax, f"no run logged {metric}")
    styles = styles_for(styles, m["arm"].unique(), control)
    for i, (arm, st) in enumerate(styles.items()):
        v = m.loc[m["arm"] == arm, "value"].to_numpy(dtype=float)
        jitter = np.linspace(-0.2, 0.2, v.size) if v.size > 1 else np.zeros(1)
        ax.scatter(v, i + jitter, s=18, facecolors="none", edgecolors=st["color"], marker=st["marker"], zorder=3)
        ax.plot([v.mean()] * 2, [i - 0.32, i + 0.32], color=st["color"], linewidth=2.4, zorder=4)
    for r in reference:
        ax.axvline(r, color=REFERENCE_GREY, linestyle=":", linewidth=1)
    arm_rows(ax, list(styles), labels=labels)
    ax.set_xlabel(metric)
    return ax


def stability_figure(
    scores: pd.DataFrame,
    summary: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
) -> Figure:
    """Per dataset (rows): seed spread of the final score, divergence rate, gradient-norm spikes per run."""
    used = scores[scores["status"] != "missing"]
    datasets = datasets_of(used)
    styles = styles_for(styles, used["arm"].unique(), control)
    metric = summary["metric"].iloc[0] if not summary.empty else PRIMARY_METRIC
    height = rows_height(list(styles))
    fig = Figure(figsize=(3.6 * 3 + 0.6, height * max(1, len(datasets)) + 0.5), layout="constrained")
    if not datasets:
        no_data(fig.add_subplot(), f"no {metric}")
        return fig
    grid = fig.subplots(len(datasets), 3, squeeze=False)  # own x scales: datasets' spike counts differ tenfold
    for row, dataset in zip(grid, datasets):
        plot_seed_spread(scores, dataset, ax=row[0], styles=styles, control=control, metric=metric)
        row[0].set_ylabel(dataset, fontweight="bold")
        plot_divergence_rate(summary, dataset, ax=row[1], styles=styles, control=control, labels=False)
        plot_run_metric(metrics, GRAD_SPIKES, dataset, ax=row[2], styles=styles, control=control, labels=False)
        for ax in row:
            ax.set_title("")
    for ax, title in zip(grid[0], ("Seed spread (relative)", "Divergence", "Gradient-norm spikes per run")):
        ax.set_title(title)
    for row in grid[:-1]:  # a column measures one thing: its label once, at the bottom
        for ax in row:
            ax.set_xlabel("")
    suptitle(fig, "Stability across seeds")
    return fig


def retention_figure(
    metrics: pd.DataFrame, *, styles: dict[str, dict] | None = None, control: str = names.CONTROL_ARM
) -> Figure:
    """``influence/retention`` per arm and dataset (1 = injected deviation intact, 0 = erased), and
    ``influence/extra_norm_ratio`` for extra-variable arms when logged."""
    shown = metrics[metrics["metric"].isin([RETENTION, EXTRA_NORM_RATIO])] if not metrics.empty else metrics
    datasets = datasets_of(shown)
    panels = [
        (RETENTION, "retention of the injected deviation", (0.0, 1.0)),
        (EXTRA_NORM_RATIO, "extra variable: ‖Δ_T‖ / ‖W_T‖", ()),
    ]
    panels = [p for p in panels if (shown["metric"] == p[0]).any()] if not shown.empty else []
    if not datasets or not panels:
        fig = Figure(figsize=(4.2, 3.3), layout="constrained")
        no_data(fig.add_subplot(), f"no run logged {RETENTION}")
        return fig
    rows = [
        (m, label, ref, styles_for(styles, shown.loc[shown["metric"] == m, "arm"].unique(), control))
        for m, label, ref in panels
    ]
    heights = [rows_height(list(st)) for *_, st in rows]
    fig = Figure(figsize=(3.9 * len(datasets) + 0.6, sum(heights) + 0.5), layout="constrained")
    grid = fig.subplots(len(rows), len(datasets), squeeze=False, height_ratios=heights)
    for line, (metric, label, ref, st) in zip(grid, rows):
        for k, (ax, dataset) in enumerate(zip(line, datasets)):
            plot_run_metric(shown, metric, dataset, ax=ax, styles=st, control=control, reference=ref, labels=k == 0)
            ax.set_xlabel(label)
            ax.set_title(dataset)
    suptitle(fig, "Influence retention after training (one mark per run, bar = mean)")
    return fig
