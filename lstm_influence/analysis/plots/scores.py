"""Final scores per arm: every seed, the IQM with its 95 % CI, the reference predictors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lstm_influence import names
from lstm_influence.analysis.plots.layout import (
    add_legend,
    arm_rows,
    datasets_of,
    finite_mask,
    new_axes,
    no_data,
    panel_grid,
    rows_height,
    suptitle,
    uniform_counts,
    wants_log,
)
from lstm_influence.analysis.plots.style import (
    REFERENCE_GREY,
    styles_for,
)
from lstm_influence.metrics import PRIMARY_METRIC


def _reference_lines(ax: Axes, refs: pd.DataFrame) -> None:
    """Vertical dashed lines, labelled at the top; references too close to label apart share one label."""
    if refs.empty:
        return
    refs = refs.sort_values("value")
    for value in refs["value"]:
        ax.axvline(value, color=REFERENCE_GREY, linestyle="--", linewidth=0.9, zorder=1)
    fig = ax.figure
    fig.draw_without_rendering()  # settle the limits and the axes' width, which say how far apart two labels are
    x0, x1 = ax.get_xlim()
    log = ax.get_xscale() == "log"
    width_pt = ax.get_window_extent().width * 72 / fig.dpi
    char = 7 * 0.62 / width_pt  # a character at 7 points, as a fraction of the axes' width

    def frac(v: float) -> float:
        return (np.log(v) - np.log(x0)) / (np.log(x1) - np.log(x0)) if log else (v - x0) / (x1 - x0)

    groups: list[list] = []
    for name, value in zip(refs["predictor"].astype(str), refs["value"]):
        if groups:
            last = " / ".join(n for n, _ in groups[-1])
            centre = np.mean([frac(v) for _, v in groups[-1]])
            if frac(value) - centre < char * (len(last) + len(name)) / 2 + 2 * char:
                groups[-1].append((name, value))
                continue
        groups.append([(name, value)])
    for group in groups:
        where = np.mean([frac(v) for _, v in group])
        ax.annotate(
            " / ".join(name for name, _ in group),
            (float(np.clip(where, 0, 1)), 1.0),
            xycoords="axes fraction",
            xytext=(0, 2),
            textcoords="offset points",
            ha="right" if where > 0.85 else "left" if where < 0.15 else "center",  # stay over the axes
            va="bottom",
            fontsize=7,
            color="#444444",
        )


def plot_score_distribution(
    scores: pd.DataFrame,
    summary: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    metric: str = PRIMARY_METRIC,
    references: pd.DataFrame | None = None,
    labels: bool = True,
) -> Axes:
    """One dataset's final scores: a row per arm with each seed (hollow marks) and the IQM with its 95 % CI (bar).

    Runs that diverged are counted at the right edge (``n = …, k div.``). ``references`` (rows ``dataset,
    predictor, value`` of :func:`~lstm_influence.analysis.bands.reference_predictors`) are dashed lines.
    ``labels``: write the arm names on the left (off for a panel beside another with the same rows).
    """
    ax = new_axes(ax)
    s = scores[(scores["dataset"] == dataset) & (scores["status"] != "missing")]
    if s.empty:
        ax.set_title(dataset)
        return no_data(ax, f"{dataset}: no {metric}")
    s = s.assign(value=s["value"].where(s["status"] != "worst", np.inf))
    styles = styles_for(styles, s["arm"].unique(), control)
    arms = list(styles)
    summ = summary[summary["dataset"] == dataset].set_index("arm")
    counts = [_draw_arm_scores(ax, i, s[s["arm"] == arm], summ, arm, styles[arm]) for i, arm in enumerate(arms)]
    values = s.loc[finite_mask(s["value"]), "value"].to_numpy(dtype=float)
    refs = references[references["dataset"] == dataset] if references is not None else pd.DataFrame()
    if not refs.empty:
        values = np.concatenate([values, refs["value"].to_numpy(dtype=float)])
    if wants_log(values):
        ax.set_xscale("log")
    if "norm" in metric:
        ax.axvline(1.0, color=REFERENCE_GREY, linestyle=":", linewidth=1, zorder=1)
    right, each = uniform_counts(counts)
    arm_rows(ax, arms, labels=labels, right=right)
    _reference_lines(ax, refs)
    ax.set_xlabel(f"{metric} (lower is better)" if "loss" in metric else metric)
    ax.set_title(f"{dataset}{each}", pad=14 if not refs.empty else 6)
    return ax


def _draw_arm_scores(ax: Axes, i: int, cell: pd.DataFrame, summ: pd.DataFrame, arm: str, st: dict) -> str:
    """Row ``i``: the arm's seeds (hollow marks, diverged ones counted with a cross at the right edge) and its IQM
    with the 95 % CI from ``summ`` (the dataset's summary by arm); returns the row's count note."""
    finite = cell[finite_mask(cell["value"])]
    jitter = np.linspace(-0.13, 0.13, len(finite)) if len(finite) > 1 else np.zeros(len(finite))
    ax.scatter(
        finite["value"],
        i - 0.1 + jitter,
        s=20,
        facecolors="none",
        edgecolors=st["color"],
        marker=st["marker"],
        linewidths=1.0,
        zorder=3,
    )
    n_worst = len(cell) - len(finite)
    count = f"n={len(cell)}" + (f", {n_worst} div." if n_worst else "")
    if n_worst:
        ax.plot([1.0], [i - 0.1], marker="x", color="#000000", transform=ax.get_yaxis_transform(), clip_on=False)
    if arm in summ.index and np.isfinite(summ.at[arm, "iqm"]):
        centre, low, high = (float(summ.at[arm, k]) for k in ("iqm", "iqm_low", "iqm_high"))
        if np.isfinite(low):
            ax.errorbar(
                centre,
                i + 0.27,
                xerr=[[centre - low], [high - centre]],
                color=st["color"],
                linewidth=2.2,
                capsize=2.5,
                zorder=4,
            )
        ax.plot(centre, i + 0.27, marker=st["marker"], color=st["color"], markersize=6.5, zorder=5)
        if not np.isfinite(low):
            count += ", no CI"
    return count


def distribution_figure(
    scores: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    metric: str = PRIMARY_METRIC,
    references: pd.DataFrame | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
) -> Figure:
    """Final ``metric`` per arm, one panel per dataset: each seed, the IQM with its 95 % CI, the reference
    predictors as dashed lines."""
    used = scores[scores["status"] != "missing"]
    datasets = datasets_of(used)
    styles = styles_for(styles, used["arm"].unique(), control)
    fig, axes = panel_grid(max(1, len(datasets)), panel=(4.3, rows_height(list(styles))), ncols_max=3, extra_height=1.1)
    if not datasets:
        no_data(axes[0], f"no {metric}")
        return fig
    for k, (ax, dataset) in enumerate(zip(axes, datasets)):
        plot_score_distribution(
            scores,
            summary,
            dataset,
            ax=ax,
            styles=styles,
            control=control,
            metric=metric,
            references=references,
            labels=k % 3 == 0,
        )
    add_legend(
        fig,
        [
            Line2D([], [], color="#444444", marker="o", markerfacecolor="none", linestyle="none", label="one seed"),
            Line2D([], [], color="#444444", marker="o", linewidth=2.2, label="IQM, 95% CI (Tukey-McLaughlin)"),
            Line2D([], [], color=REFERENCE_GREY, linestyle="--", label="reference predictor"),
            Line2D([], [], color="#000000", marker="x", linestyle="none", label="runs that diverged"),
        ],
    )
    suptitle(fig, f"Final {metric} per arm")
    return fig
