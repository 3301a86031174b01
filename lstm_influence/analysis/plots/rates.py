"""Rates per arm with their intervals: runs that solved the task, runs that diverged."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lstm_influence import names
from lstm_influence.analysis.plots.layout import (
    arm_rows,
    datasets_of,
    new_axes,
    no_data,
    panel_grid,
    rows_height,
    suptitle,
)
from lstm_influence.analysis.plots.style import (
    styles_for,
)


def plot_rates(
    frame: pd.DataFrame,
    dataset: str,
    columns: tuple[str, str, str, str],
    *,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    labels: bool = True,
    xlabel: str = "rate",
) -> Axes:
    """A rate per arm on one dataset: a bar with its interval, ``k/n`` on the right.

    ``columns``: the rate, its interval's low and high ends, and the event count (``n_runs`` is the total).
    """
    ax = new_axes(ax)
    s = frame[frame["dataset"] == dataset]
    if s.empty:
        ax.set_title(dataset)
        return no_data(ax)
    rate_col, low_col, high_col, count_col = columns
    styles = styles_for(styles, s["arm"].unique(), control)
    rows = s.set_index("arm")
    counts = []
    for i, (arm, st) in enumerate(styles.items()):
        row = rows.loc[arm]
        rate = float(row[rate_col])
        ax.barh(i, rate, height=0.6, color=st["color"], alpha=0.85, edgecolor=st["color"])
        if np.isfinite(row[low_col]):
            ax.errorbar(
                rate,
                i,
                xerr=[[rate - row[low_col]], [row[high_col] - rate]],
                color="#333333",
                linewidth=1,
                capsize=2.5,
            )
        counts.append(f"{int(row[count_col])}/{int(row['n_runs'])}")
    arm_rows(ax, list(styles), labels=labels, right=counts)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_title(dataset)
    return ax


def plot_divergence_rate(
    summary: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    labels: bool = True,
) -> Axes:
    """Share of runs that diverged per arm on one dataset, with Clopper–Pearson 95 % intervals."""
    columns = ("divergence_rate", "divergence_low", "divergence_high", "n_diverged")
    return plot_rates(
        summary,
        dataset,
        columns,
        ax=ax,
        styles=styles,
        control=control,
        labels=labels,
        xlabel="share diverged (95% CI)",
    )


def solved_figure(
    rates: pd.DataFrame, *, styles: dict[str, dict] | None = None, control: str = names.CONTROL_ARM
) -> Figure:
    """Share of runs that reached the target per arm, one panel per dataset, with Clopper–Pearson 95 % intervals.

    ``rates``: from :func:`~lstm_influence.analysis.rates.solved_rates`.
    """
    datasets = datasets_of(rates)
    styles = styles_for(styles, rates["arm"].unique() if not rates.empty else [], control)
    fig, axes = panel_grid(max(1, len(datasets)), panel=(3.9, rows_height(list(styles))), extra_height=0.5)
    if not datasets:
        no_data(axes[0])
        return fig
    for k, (ax, dataset) in enumerate(zip(axes, datasets)):
        plot_rates(
            rates,
            dataset,
            ("rate", "rate_low", "rate_high", "n_solved"),
            ax=ax,
            styles=styles,
            control=control,
            labels=k % 3 == 0,
            xlabel="share of runs solved",
        )
    suptitle(fig, "Runs that reached the target, per arm (solved/runs on the right; 95% Clopper-Pearson CI)")
    return fig
