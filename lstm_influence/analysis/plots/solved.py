"""The share of seeds that had solved each task by each epoch, one line per arm."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from lstm_influence import names
from lstm_influence.analysis.plots.layout import (
    add_legend,
    datasets_of,
    despine,
    new_axes,
    no_data,
    panel_grid,
    suptitle,
)
from lstm_influence.analysis.plots.style import (
    GRID,
    styles_for,
)
from lstm_influence.metrics import VAL_NORM_LOSS


def solved_by_epoch(scores: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × arm and epoch 0 … budget: the share of runs that had reached the target by then.

    ``scores``: :func:`~lstm_influence.analysis.summaries.metric_scores` of ``conv/epochs_to_target``. A run
    reached the target at its ``value`` when its status is ``ok``; runs that never did (``censored``) or diverged
    (``worst``) stay unsolved to the end, so with every run followed to the budget this is the Kaplan–Meier
    estimate of the share solved. Runs that logged neither are left out.

    Returns:
        Columns ``dataset, arm, epoch, n_solved, n_runs, share``.
    """
    columns = ["dataset", "arm", "epoch", "n_solved", "n_runs", "share"]
    used = scores[scores["status"] != "missing"]
    parts = []
    for (dataset, arm), cell in used.groupby(["dataset", "arm"], sort=True):
        solved = cell.loc[cell["status"] == "ok", "value"].to_numpy(dtype=float)
        budget = pd.to_numeric(cell["budget"], errors="coerce").max()
        last = int(budget) if np.isfinite(budget) else int(solved.max(initial=0))
        epochs = np.arange(0, last + 1)
        counts = (solved[None, :] <= epochs[:, None]).sum(axis=1)
        parts.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "arm": arm,
                    "epoch": epochs,
                    "n_solved": counts,
                    "n_runs": len(cell),
                    "share": counts / len(cell),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _spread_positions(wanted: np.ndarray, heights: np.ndarray, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Centres as close to ``wanted`` as possible with no two boxes (of ``heights``) overlapping, within
    [low, high]; the order of ``wanted`` is kept."""
    order = np.argsort(wanted, kind="stable")
    w, h = wanted[order], heights[order]
    pos = w.copy()
    for i in range(len(pos)):  # push up
        floor = low + h[i] / 2 if i == 0 else pos[i - 1] + (h[i - 1] + h[i]) / 2
        pos[i] = max(pos[i], floor)
    for i in reversed(range(len(pos))):  # then down from the top
        ceiling = high - h[i] / 2 if i == len(pos) - 1 else pos[i + 1] - (h[i + 1] + h[i]) / 2
        pos[i] = min(pos[i], ceiling)
    out = np.empty_like(pos)
    out[order] = pos
    return out


def _end_labels(ax: Axes, items: Sequence[tuple[float, float, str]], fontsize: float = 7.5) -> None:
    """Texts right of the axes at the end of their lines (``(x, y, text)``), moved apart where they would collide,
    each tied to its line end by a thin leader."""
    if not items:
        return
    y0, y1 = ax.get_ylim()
    wanted = np.array([(y - y0) / (y1 - y0) for _, y, _ in items])
    labels = [
        ax.annotate(
            text,
            xy=(x, y),
            xytext=(1.04, at),
            xycoords="data",
            textcoords="axes fraction",
            va="center",
            ha="left",
            fontsize=fontsize,
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.6, "shrinkA": 1, "shrinkB": 2},
        )
        for (x, y, text), at in zip(items, wanted)
    ]
    fig = ax.figure
    fig.draw_without_rendering()  # lays the figure out: the texts' heights as fractions of the axes' height
    axes_height = ax.get_window_extent().height
    gap = 2 * fig.dpi / 72
    heights = np.array([(label.get_window_extent().height + gap) / axes_height for label in labels])
    for label, at in zip(labels, _spread_positions(wanted, heights, -0.02, 1.02)):
        label.set_position((1.04, at))


def plot_solved_by_epoch(
    curves: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    target: float | None = None,
) -> Axes:
    """Share of seeds that had reached the target by each epoch, one step line per arm, for one dataset; arms that
    end at the same count share one label at the right, with their ``solved/runs``."""
    ax = new_axes(ax)
    c = curves[curves["dataset"] == dataset]
    if c.empty:
        ax.set_title(dataset)
        return no_data(ax, "no conv/epochs_to_target")
    styles = styles_for(styles, c["arm"].unique(), control)
    last_epoch = int(c["epoch"].max())
    for arm, st in reversed(list(styles.items())):  # the control last, so on top
        a = c[c["arm"] == arm].sort_values("epoch")
        ax.step(
            a["epoch"],
            a["share"],
            where="post",
            color=st["color"],
            linestyle=st["linestyle"],
            linewidth=2.4 if arm == control else 1.9,
            zorder=4 if arm == control else 3,
        )
        ax.plot(
            a["epoch"].iloc[-1], a["share"].iloc[-1], marker=st["marker"], color=st["color"], zorder=5, clip_on=False
        )
    ax.set_xlim(0, last_epoch)
    ax.set_ylim(-0.03, 1.03)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("share of seeds solved")
    title = dataset if target is None or not np.isfinite(target) else f"{dataset} (target {target:g})"
    ax.set_title(title)
    ax.grid(True, **GRID)
    ax.set_axisbelow(True)
    despine(ax)
    _end_labels(ax, [(last_epoch, share, text) for share, text in _final_labels(c, styles)])
    return ax


def _final_labels(curves: pd.DataFrame, styles: dict[str, dict]) -> list[tuple[float, str]]:
    """``(final share, label)`` per group of arms that end at the same share: their names and ``solved/runs``."""
    ends = curves.sort_values("epoch").groupby("arm").tail(1).set_index("arm")
    arms = [a for a in styles if a in ends.index]
    out = []
    for share in sorted(set(ends.loc[arms, "share"])):
        at = [a for a in arms if ends.at[a, "share"] == share]
        by_count: dict[str, list[str]] = {}
        for a in at:
            by_count.setdefault(f"{ends.at[a, 'n_solved']}/{ends.at[a, 'n_runs']}", []).append(a)
        parts = [
            f"{'every arm' if len(group) == len(arms) > 1 else ', '.join(group)}: {count}"
            for count, group in by_count.items()
        ]
        text = textwrap.fill("; ".join(parts), 30, break_on_hyphens=False, break_long_words=False)
        out.append((float(share), text))
    return out


def solved_by_epoch_figure(
    scores: pd.DataFrame,
    *,
    targets: dict[str, float] | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    metric: str = VAL_NORM_LOSS,
) -> Figure:
    """Per task, the share of seeds that had solved it (validation loss at the target) by each epoch, one line per
    arm: which arm solves the task, and how soon.

    ``scores``: :func:`~lstm_influence.analysis.summaries.metric_scores` of ``conv/epochs_to_target``.
    """
    curves = solved_by_epoch(scores)
    datasets = datasets_of(curves)
    styles = styles_for(styles, curves["arm"].unique(), control)
    lines = [
        sum(text.count("\n") + 1 for _, text in _final_labels(curves[curves["dataset"] == d], styles)) for d in datasets
    ]
    height = max(3.4, 0.16 * max(lines, default=0) + 1.4)  # room for every end label beside the axes
    fig, axes = panel_grid(max(1, len(datasets)), panel=(5.6, height), ncols_max=2)
    if not datasets:
        no_data(axes[0], "no conv/epochs_to_target")
        return fig
    add_legend(
        fig,
        [
            Line2D([], [], color=st["color"], linestyle=st["linestyle"], marker=st["marker"], label=arm)
            for arm, st in styles.items()
        ],
    )
    suptitle(
        fig,
        f"Share of seeds that had reached the target ({metric} at or below it) by each epoch; "
        "a diverged run counts as unsolved",
    )
    for ax, dataset in zip(axes, datasets):
        plot_solved_by_epoch(
            curves, dataset, ax=ax, styles=styles, control=control, target=(targets or {}).get(dataset)
        )
    return fig
