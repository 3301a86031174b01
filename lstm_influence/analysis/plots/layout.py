"""Panels, rows of arms, titles and keys: the layout every figure shares."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator

from lstm_influence.analysis.plots.style import (
    GRID,
    LINE_HEIGHT,
    ROW_HEIGHT,
    ROW_SHADE,
    arm_label,
)


def new_axes(ax: Axes | None, size: tuple[float, float] = (4.2, 3.3)) -> Axes:
    """``ax``, or the axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def no_data(ax: Axes, text: str = "no data") -> Axes:
    """``ax`` emptied of ticks, with ``text`` in its middle."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def finite_mask(values: pd.Series) -> np.ndarray:
    """Boolean mask of finite numbers (works on empty or object-typed columns)."""
    return np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))


def wants_log(values: np.ndarray, ratio: float = 30.0) -> bool:
    """Whether the positive finite ``values`` span more than ``ratio`` (a log axis shows them better)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() > 0 and v.max() / v.min() > ratio)


def despine(ax: Axes) -> None:
    """No top or right spine."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def arm_rows(ax: Axes, arms: Sequence[str], *, labels: bool = True, right: Sequence[str] | None = None) -> None:
    """Arms as rows from the top (the control first), every other row shaded so a row reads across panels.

    ``right``: one short text per row written on the right edge (counts, estimates).
    """
    for i in range(1, len(arms), 2):
        ax.axhspan(i - 0.5, i + 0.5, color=ROW_SHADE, zorder=0, linewidth=0)
    ax.set_yticks(range(len(arms)), [arm_label(a) for a in arms])
    ax.tick_params(axis="y", length=0, labelleft=labels)
    ax.set_ylim(len(arms) - 0.5, -0.5)
    if ax.get_xscale() == "linear":  # few ticks: a narrow range has long labels
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.grid(True, axis="x", **GRID)
    ax.set_axisbelow(True)
    despine(ax)
    if right is not None:
        side = ax.secondary_yaxis("right")
        side.set_yticks(range(len(arms)), list(right))
        side.tick_params(length=0, labelsize="small", labelcolor="#333333")
        side.spines["right"].set_visible(False)


def uniform_counts(counts: Sequence[str]) -> tuple[list[str] | None, str]:
    """Per-row ``n=…`` notes, or none and a title suffix when every row has the same plain count."""
    if counts and len(set(counts)) == 1 and re.fullmatch(r"n=\d+", counts[0]):
        return None, f" ({counts[0][2:]} seeds per arm)"
    return list(counts), ""


def rows_height(arms: Sequence[str]) -> float:
    """A panel's height in inches with one row per arm, each tall enough for its wrapped name."""
    lines = max((arm_label(a).count("\n") + 1 for a in arms), default=1)
    return max(ROW_HEIGHT, LINE_HEIGHT * lines + 0.08) * max(len(arms), 2) + 1.0


def suptitle(fig: Figure | SubFigure, text: str) -> None:
    """A title wrapped to the figure's width (a one-panel figure would cut a long title at both ends)."""
    width = fig.get_figwidth() if isinstance(fig, Figure) else fig.figure.get_figwidth()
    fig.suptitle(textwrap.fill(text, max(30, int(width / 0.11)), break_on_hyphens=False))


def legend_columns(width: float, handles: Sequence) -> int:
    """How many key entries fit side by side in ``width`` inches, balanced over the rows they need."""
    longest = max((len(h.get_label()) for h in handles), default=1)
    fits = max(1, int(width / (0.6 + 0.075 * longest)))  # a key mark, then about 0.075 in a character
    ncols = min(len(handles), fits)
    if len(handles) > ncols:
        ncols = int(np.ceil(len(handles) / np.ceil(len(handles) / ncols)))
    return max(ncols, 1)


def add_legend(fig: Figure | SubFigure, handles: Sequence, *, loc: str = "outside lower center") -> None:
    """A key laid out in as few balanced rows as fit the figure's width."""
    if not handles:
        return
    width = fig.get_figwidth() if isinstance(fig, Figure) else fig.figure.get_figwidth()
    ncols = legend_columns(width, handles)
    fig.legend(handles=list(handles), loc=loc, ncols=ncols, frameon=False, fontsize="small")


def panel_grid(
    n_panels: int, *, panel: tuple[float, float], ncols_max: int = 3, extra_height: float = 0.9
) -> tuple[Figure, list[Axes]]:
    ncols = max(1, min(ncols_max, n_panels))
    nrows = max(1, int(np.ceil(n_panels / ncols)))
    fig = Figure(figsize=(panel[0] * ncols + 0.6, panel[1] * nrows + extra_height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def datasets_of(frame: pd.DataFrame) -> list[str]:
    if frame.empty or "dataset" not in frame:
        return []
    return sorted(d for d in frame["dataset"].dropna().unique() if d != "all")
