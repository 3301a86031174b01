"""The probability of improvement over the control, per dataset and on average."""

from __future__ import annotations

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
    panel_grid,
    rows_height,
    suptitle,
)
from lstm_influence.analysis.plots.style import (
    styles_for,
)
from lstm_influence.metrics import PRIMARY_METRIC


def plot_probability_of_improvement(
    summary: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    baseline: str = names.CONTROL_ARM,
    labels: bool = True,
) -> Axes:
    """P(arm beats the control) with its 95 % Newcombe interval, a row per arm, for one dataset (``"all"``:
    rliable's average over datasets); the estimate and interval are written on the right."""
    ax = new_axes(ax)
    s = summary[(summary["dataset"] == dataset) & (summary["arm"] != baseline)]
    s = s[finite_mask(s["poi"])]
    if s.empty:
        ax.set_title(dataset)
        return no_data(ax, "no control to compare with")
    styles = styles_for(styles, [*s["arm"].unique(), baseline], baseline)
    styles = {a: st for a, st in styles.items() if a != baseline}
    s = s.set_index("arm")
    texts = []
    for y, (arm, st) in enumerate(styles.items()):
        poi, low, high = (float(s.at[arm, k]) for k in ("poi", "poi_low", "poi_high"))
        if np.isfinite(low):
            ax.errorbar(
                poi, y, xerr=[[poi - low], [high - poi]], color=st["color"], linewidth=2.2, capsize=3, clip_on=False
            )
            texts.append(f"{poi:.2f} [{low:.2f}, {high:.2f}]")
        else:
            texts.append(f"{poi:.2f} (1 seed)")
        ax.plot(poi, y, marker=st["marker"], color=st["color"], markersize=7, clip_on=False, zorder=4)
    ax.axvline(0.5, color="#444444", linestyle="--", linewidth=1)
    arm_rows(ax, list(styles), labels=labels, right=texts)
    ax.set_xlim(0, 1)
    lower = bool(summary["lower_is_better"].iloc[0]) if "lower_is_better" in summary else True
    ax.set_xlabel(f"P(lower than {baseline})" if lower else f"P(higher than {baseline})")
    ax.set_title("all datasets (mean)" if dataset == "all" else dataset)
    return ax


def improvement_figure(
    summary: pd.DataFrame, *, baseline: str = names.CONTROL_ARM, styles: dict[str, dict] | None = None
) -> Figure:
    """Probability of improvement over the control, one panel per dataset plus the average."""
    metric = summary["metric"].iloc[0] if not summary.empty else PRIMARY_METRIC
    datasets = datasets_of(summary)
    if (summary["dataset"] == "all").any():
        datasets.append("all")
    styles = styles_for(styles, summary["arm"].unique(), baseline)
    arms = [a for a in styles if a != baseline]
    fig, axes = panel_grid(max(1, len(datasets)), panel=(4.3, rows_height(arms)), extra_height=0.6)
    if not datasets:
        no_data(axes[0])
        return fig
    for k, (ax, dataset) in enumerate(zip(axes, datasets)):
        plot_probability_of_improvement(summary, dataset, ax=ax, styles=styles, baseline=baseline, labels=k % 3 == 0)
    suptitle(fig, f"Probability of improvement over {baseline} on {metric} (0.5 = no difference; 95% Newcombe CI)")
    return fig
