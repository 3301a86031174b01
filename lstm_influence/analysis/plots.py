"""Comparison figures: one style per arm across a report, names on the axes, the seeds behind every summary.

Each ``plot_*`` function draws one panel: it takes ``ax=None`` (a new figure is made when None) and returns the
axes. Each ``*_figure`` function lays the panels out and returns the ``matplotlib.figure.Figure``. Nothing here
saves or shows a figure; the caller decides. Figures are built with ``matplotlib.figure.Figure`` directly, not
pyplot, so no GUI backend is needed and no global state is touched.

Every figure takes ``styles`` from :func:`arm_styles` (one colour, marker and line style per arm, the control in
black) and ``control``; the report passes the same styles to all of them, so an arm looks the same everywhere.
Arms are drawn in the order of ``styles`` (the report's order: the control first). Categorical axes are arms, one
row each, labelled with the arm's name; a legend is only a key to marks, never the only way to tell arms apart.

Inputs are the tidy frames of :mod:`lstm_influence.analysis.summaries` (``convergence_bands``,
``metric_scores``, ``summarize``, ``solved_rates``, ``reference_predictors``; their ``strategy`` column is the
arm) and the long metric frames of :mod:`lstm_influence.analysis.load`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from lstm_influence import names
from lstm_influence.analysis.coverage import clipped_band_coverage
from lstm_influence.analysis.estimators import finite_or_inf
from lstm_influence.analysis.summaries import strategy_order
from lstm_influence.metrics import EXTRA_NORM_RATIO, GRAD_SPIKES, PRIMARY_METRIC, RETENTION, VAL_NORM_LOSS

#: Paul Tol's "muted" scheme (colour-blind safe, readable on white), in the order arms other than the control take
#: them. Nine colours: from the tenth arm on, colours repeat and marker and line style keep the arms apart.
TOL_MUTED = (
    "#332288",  # indigo
    "#CC6677",  # rose
    "#117733",  # green
    "#882255",  # wine
    "#44AA99",  # teal
    "#999933",  # olive
    "#AA4499",  # purple
    "#88CCEE",  # cyan: the two pale ones last, where a line is faintest on white
    "#DDCC77",  # sand
)
CONTROL_STYLE = {"color": "#000000", "marker": "o", "linestyle": "-"}
#: Fourteen filled shapes, none the control's circle; with four line styles, (marker, line style) pairs repeat only
#: after 28 arms, so arms stay distinct where colour is lost (greyscale print, colour-vision deficiency). No dotted
#: style: a dotted line next to its seeds' faint lines is the hardest to follow.
MARKERS = ("s", "^", "D", "v", "P", "X", "*", "p", "h", "<", ">", "d", "H", "8")
LINESTYLES = ("--", "-.", (0, (5, 1.5, 1, 1.5, 1, 1.5)), "-")
GRID = {"color": "#dddddd", "linewidth": 0.6}
ROW_SHADE = "#f2f2f2"
REFERENCE_GREY = "#666666"
#: Inches per arm row on categorical axes for a one-line name, and per further line of a wrapped one.
ROW_HEIGHT = 0.27
LINE_HEIGHT = 0.19
LABEL_WIDTH = 24
SEED_ALPHA = 0.45


def arm_styles(arms: Sequence[str], control: str = names.CONTROL_ARM) -> dict[str, dict]:
    """``{arm: {"color", "marker", "linestyle"}}``: the style every figure of a report gives each arm.

    The control is always black with circles and a solid line; the other arms take, in the order given, Paul Tol's
    muted colours, a filled marker and a line style. Any 28 arms differ in (marker, line style), so they stay
    distinct in greyscale; colour adds to that. Pass the arms in the report's order (``strategy_order``) to match
    its figures.

    Args:
        arms: arm names (repeats are ignored).
        control: the reference arm; drawn in black wherever it is in ``arms``.

    Returns:
        One dict per arm, in the order of ``arms``; matplotlib accepts each value as is (``color=``, ``marker=``,
        ``linestyle=``).
    """
    styles: dict[str, dict] = {}
    others = 0
    for arm in dict.fromkeys(arms):
        if arm == control:
            styles[arm] = dict(CONTROL_STYLE)
            continue
        styles[arm] = {
            "color": TOL_MUTED[others % len(TOL_MUTED)],
            "marker": MARKERS[others % len(MARKERS)],
            "linestyle": LINESTYLES[others % len(LINESTYLES)],
        }
        others += 1
    return styles


def arm_label(name: str, width: int = LABEL_WIDTH) -> str:
    """``name`` broken after ``_``, ``-``, ``.`` or ``/`` into lines of at most ``width`` characters."""
    if len(name) <= width:
        return name
    lines, line = [], ""
    for part in re.split(r"(?<=[_\-./])", name):
        while len(part) > width:  # a part without separators: cut it
            if line:
                lines.append(line)
                line = ""
            lines.append(part[:width])
            part = part[width:]
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = part
        else:
            line += part
    lines.append(line)
    return "\n".join(x for x in lines if x)


def _styles_for(styles: dict | None, present: Sequence[str], control: str) -> dict[str, dict]:
    """The given styles restricted to ``present`` (in the styles' order), or fresh ones for ``present``."""
    if styles is None:
        return arm_styles(strategy_order(list(present), control), control)
    present = set(present)
    missing = [a for a in strategy_order(list(present), control) if a not in styles]
    full = {**styles, **arm_styles([*styles, *missing], control)} if missing else styles
    return {a: st for a, st in full.items() if a in present}


def _new_axes(ax: Axes | None, size: tuple[float, float] = (4.2, 3.3)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def _no_data(ax: Axes, text: str = "no data") -> Axes:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _finite(values: pd.Series) -> np.ndarray:
    """Boolean mask of finite numbers (works on empty or object-typed columns)."""
    return np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))


def _wants_log(values: np.ndarray, ratio: float = 30.0) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() > 0 and v.max() / v.min() > ratio)


def _despine(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _arm_rows(ax: Axes, arms: Sequence[str], *, labels: bool = True, right: Sequence[str] | None = None) -> None:
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
    _despine(ax)
    if right is not None:
        side = ax.secondary_yaxis("right")
        side.set_yticks(range(len(arms)), list(right))
        side.tick_params(length=0, labelsize="small", labelcolor="#333333")
        side.spines["right"].set_visible(False)


def _uniform_counts(counts: Sequence[str]) -> tuple[list[str] | None, str]:
    """Per-row ``n=…`` notes, or none and a title suffix when every row has the same plain count."""
    if counts and len(set(counts)) == 1 and re.fullmatch(r"n=\d+", counts[0]):
        return None, f" ({counts[0][2:]} seeds per arm)"
    return list(counts), ""


def _rows_height(arms: Sequence[str]) -> float:
    """A panel's height in inches with one row per arm, each tall enough for its wrapped name."""
    lines = max((arm_label(a).count("\n") + 1 for a in arms), default=1)
    return max(ROW_HEIGHT, LINE_HEIGHT * lines + 0.08) * max(len(arms), 2) + 1.0


def _suptitle(fig: Figure | SubFigure, text: str) -> None:
    """A title wrapped to the figure's width (a one-panel figure would cut a long title at both ends)."""
    width = fig.get_figwidth() if isinstance(fig, Figure) else fig.figure.get_figwidth()
    fig.suptitle(textwrap.fill(text, max(30, int(width / 0.11)), break_on_hyphens=False))


def _legend_columns(width: float, handles: Sequence) -> int:
    """How many key entries fit side by side in ``width`` inches, balanced over the rows they need."""
    longest = max((len(h.get_label()) for h in handles), default=1)
    fits = max(1, int(width / (0.6 + 0.075 * longest)))  # a key mark, then about 0.075 in a character
    ncols = min(len(handles), fits)
    if len(handles) > ncols:
        ncols = int(np.ceil(len(handles) / np.ceil(len(handles) / ncols)))
    return max(ncols, 1)


def _add_legend(fig: Figure | SubFigure, handles: Sequence, *, loc: str = "outside lower center") -> None:
    """A key laid out in as few balanced rows as fit the figure's width."""
    if not handles:
        return
    width = fig.get_figwidth() if isinstance(fig, Figure) else fig.figure.get_figwidth()
    ncols = _legend_columns(width, handles)
    fig.legend(handles=list(handles), loc=loc, ncols=ncols, frameon=False, fontsize="small")


def _panel_grid(
    n_panels: int, *, panel: tuple[float, float], ncols_max: int = 3, extra_height: float = 0.9
) -> tuple[Figure, list[Axes]]:
    ncols = max(1, min(ncols_max, n_panels))
    nrows = max(1, int(np.ceil(n_panels / ncols)))
    fig = Figure(figsize=(panel[0] * ncols + 0.6, panel[1] * nrows + extra_height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def _datasets(frame: pd.DataFrame) -> list[str]:
    if frame.empty or "dataset" not in frame:
        return []
    return sorted(d for d in frame["dataset"].dropna().unique() if d != "all")


# --------------------------------------------------------------------------------------------- learning curves


def seed_curves(history: pd.DataFrame, dataset: str, arm: str, metric: str = VAL_NORM_LOSS) -> pd.DataFrame:
    """One column per run of ``arm`` on ``dataset``, one row per step: the finite values of ``metric`` (else NaN).

    A run that diverged is NaN from its first non-finite step, as in the bands of
    :func:`~lstm_influence.analysis.summaries.convergence_bands`.
    """
    h = history[(history["metric"] == metric) & (history["dataset"] == dataset) & (history["strategy"] == arm)].copy()
    if h.empty:
        return pd.DataFrame()
    h["value"] = finite_or_inf(h["value"])
    h = h[np.isfinite(h["value"])]
    return h.pivot_table(index="step", columns="run_id", values="value", aggfunc="last").sort_index()


def band_within_seeds(band: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """``band`` (``step, low, high``) clipped at each step to the smallest and largest value a seed logged there.

    An interval for the IQM can reach past every observed value when a few seeds spike (it is symmetric around the
    IQM); drawn as is, it would show losses no run had.
    """
    if seeds.empty or band.empty:
        return band
    lo = seeds.min(axis=1).reindex(band["step"]).to_numpy(dtype=float)
    hi = seeds.max(axis=1).reindex(band["step"]).to_numpy(dtype=float)
    out = band.copy()
    out["low"] = np.fmax(band["low"].to_numpy(dtype=float), lo)
    out["high"] = np.fmin(band["high"].to_numpy(dtype=float), hi)
    out.loc[band["low"].isna(), ["low", "high"]] = np.nan
    return out


def plot_arm_curves(
    bands: pd.DataFrame,
    dataset: str,
    arm: str,
    *,
    history: pd.DataFrame | None = None,
    ax: Axes | None = None,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
    target: float | None = None,
    ends: pd.DataFrame | None = None,
    metric: str = VAL_NORM_LOSS,
) -> Axes:
    """One arm's learning curves on one dataset: each seed faintly, the IQM over seeds and its 95 % band (clipped
    to the seeds' range), with the control's IQM in thin black for comparison.

    Args:
        bands: from :func:`~lstm_influence.analysis.summaries.convergence_bands`.
        dataset, arm: which cell to draw.
        history: per-epoch metrics (``run_id, dataset, strategy, metric, step, value``): the seeds' own curves.
        styles: from :func:`arm_styles`.
        control: the reference arm, whose IQM is drawn under every other arm's.
        target: ``train.target_norm_loss``, drawn as a dashed line.
        ends: diverged runs' last finite points (``dataset, strategy, step, value``), drawn as crosses.
    """
    ax = _new_axes(ax)
    st = _styles_for(styles, [arm, control], control)[arm]
    b = bands[(bands["dataset"] == dataset) & (bands["strategy"] == arm)].sort_values("step")
    seeds = seed_curves(history, dataset, arm, metric) if history is not None else pd.DataFrame()
    if b.empty and seeds.empty:
        ax.set_title(arm_label(arm), fontsize="medium")
        return _no_data(ax, "no history")
    for run in seeds.columns:
        ax.plot(seeds.index, seeds[run], color=st["color"], linewidth=0.7, alpha=SEED_ALPHA, zorder=2)
    if arm != control:
        c = bands[(bands["dataset"] == dataset) & (bands["strategy"] == control)].sort_values("step")
        ax.plot(c["step"], c["iqm"], color="#000000", linewidth=1.0, alpha=0.8, zorder=3)
    shown = band_within_seeds(b, seeds)
    if shown["low"].notna().any():
        ax.fill_between(shown["step"], shown["low"], shown["high"], color=st["color"], alpha=0.25, linewidth=0)
    every = max(1, len(b) // 5)
    ax.plot(
        b["step"],
        b["iqm"],
        color=st["color"],
        linestyle=st["linestyle"],
        marker=st["marker"],
        markevery=every,
        markersize=4,
        linewidth=1.9,
        zorder=4,
    )
    if ends is not None and not ends.empty:
        e = ends[(ends["dataset"] == dataset) & (ends["strategy"] == arm)]
        ax.scatter(e["step"], e["value"], marker="x", s=36, color="#000000", zorder=5, linewidths=1.3)
    if "norm" in metric:
        ax.axhline(1.0, color=REFERENCE_GREY, linestyle=":", linewidth=1)
    if target is not None and np.isfinite(target):
        ax.axhline(target, color="#444444", linestyle="--", linewidth=0.9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.set_title(arm_label(arm), fontsize="medium")
    ax.grid(True, axis="y", **GRID)
    ax.set_axisbelow(True)
    _despine(ax)
    return ax


def _band_label(bands: pd.DataFrame) -> str:
    """The band's key, with its simulated coverage at the fewest seeds a curve starts with (clipping to the seeds'
    range costs coverage only at small n: about 0.89 at 5 seeds, none at 10)."""
    label = "IQM's 95% CI clipped to the seeds' range"
    runs = bands.groupby(["dataset", "strategy"])["n"].max() if not bands.empty else pd.Series(dtype=float)
    runs = runs[runs >= 2]
    if runs.empty:
        return label
    n = int(runs.min())
    return f"{label} (coverage {clipped_band_coverage(n)['clipped']:.2f} at {n} seeds)"


def convergence_figure(
    bands: pd.DataFrame,
    *,
    history: pd.DataFrame | None = None,
    targets: dict[str, float] | None = None,
    ends: pd.DataFrame | None = None,
    metric: str = VAL_NORM_LOSS,
    styles: dict[str, dict] | None = None,
    control: str = names.CONTROL_ARM,
) -> Figure:
    """Learning curves as small multiples: per dataset, one panel per arm (seeds, IQM, 95 % band, the control's
    IQM beneath), every panel of a dataset on the same axes."""
    datasets = _datasets(bands)
    arms = list(_styles_for(styles, bands["strategy"].unique() if not bands.empty else [], control))
    styles = _styles_for(styles, arms, control)
    if not datasets or not arms:
        fig = Figure(figsize=(4.2, 3.3), layout="constrained")
        _no_data(fig.add_subplot(), f"no {metric} history")
        return fig
    nrows = int(np.ceil(len(arms) / 5))
    ncols = int(np.ceil(len(arms) / nrows))
    panel = (2.3, 1.65)
    block = panel[1] * nrows + 0.45
    width = max(panel[0] * ncols + 0.7, 6.5)
    key = [
        Line2D([], [], color="#777777", linewidth=0.7, alpha=0.8, label="one seed"),
        Line2D([], [], color="#777777", linewidth=1.9, label="IQM over seeds"),
        Patch(color="#777777", alpha=0.3, linewidth=0, label=_band_label(bands)),
        Line2D([], [], color="#000000", linewidth=1.0, label=f"{control} (control) IQM"),
        Line2D([], [], color=REFERENCE_GREY, linestyle=":", label="trivial predictor (= 1)"),
        Line2D([], [], color="#444444", linestyle="--", label="target"),
        Line2D([], [], color="#000000", marker="x", linestyle="none", label="a diverged run stops"),
    ]
    if "norm" not in metric:
        key = [h for h in key if not h.get_label().startswith("trivial")]
    legend = 0.22 * np.ceil(len(key) / _legend_columns(width, key)) + 0.2
    fig = Figure(figsize=(width, block * len(datasets) + legend + 0.35), layout="constrained")
    subs = fig.subfigures(len(datasets) + 1, 1, height_ratios=[block] * len(datasets) + [legend])
    for sub, dataset in zip(subs, datasets):
        axes = sub.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
        values = [bands.loc[bands["dataset"] == dataset, "iqm"].to_numpy(dtype=float)]
        for k, ax in enumerate(axes.ravel()):
            if k >= len(arms):
                ax.set_visible(False)
                axes.ravel()[k - ncols].tick_params(labelbottom=True)
                continue
            plot_arm_curves(
                bands,
                dataset,
                arms[k],
                history=history,
                ax=ax,
                styles=styles,
                control=control,
                target=(targets or {}).get(dataset),
                ends=ends,
                metric=metric,
            )
            if history is not None:
                seeds = seed_curves(history, dataset, arms[k], metric)
                values.append(seeds.to_numpy(dtype=float).ravel())
        if _wants_log(np.concatenate(values), ratio=10):
            axes[0, 0].set_yscale("log")
        sub.suptitle(dataset, fontweight="bold")
        sub.supylabel(metric, fontsize="medium")
        sub.supxlabel("epoch", fontsize="medium")
    _add_legend(subs[-1], key, loc="center")
    _suptitle(fig, f"Learning curves: {metric} per arm, every seed, IQM with its 95% CI (Tukey-McLaughlin)")
    return fig


# --------------------------------------------------------------------------------------------- solved over time


def solved_by_epoch(scores: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × arm and epoch 0 … budget: the share of runs that had reached the target by then.

    ``scores``: :func:`~lstm_influence.analysis.summaries.metric_scores` of ``conv/epochs_to_target``. A run
    reached the target at its ``value`` when its status is ``ok``; runs that never did (``censored``) or diverged
    (``worst``) stay unsolved to the end, so with every run followed to the budget this is the Kaplan–Meier
    estimate of the share solved. Runs that logged neither are left out.

    Returns:
        Columns ``dataset, strategy, epoch, n_solved, n_runs, share``.
    """
    columns = ["dataset", "strategy", "epoch", "n_solved", "n_runs", "share"]
    used = scores[scores["status"] != "missing"]
    parts = []
    for (dataset, arm), cell in used.groupby(["dataset", "strategy"], sort=True):
        solved = cell.loc[cell["status"] == "ok", "value"].to_numpy(dtype=float)
        budget = pd.to_numeric(cell["budget"], errors="coerce").max()
        last = int(budget) if np.isfinite(budget) else int(solved.max(initial=0))
        epochs = np.arange(0, last + 1)
        counts = (solved[None, :] <= epochs[:, None]).sum(axis=1)
        parts.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "strategy": arm,
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
    ax = _new_axes(ax)
    c = curves[curves["dataset"] == dataset]
    if c.empty:
        ax.set_title(dataset)
        return _no_data(ax, "no conv/epochs_to_target")
    styles = _styles_for(styles, c["strategy"].unique(), control)
    last_epoch = int(c["epoch"].max())
    for arm, st in reversed(list(styles.items())):  # the control last, so on top
        a = c[c["strategy"] == arm].sort_values("epoch")
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
    _despine(ax)
    _end_labels(ax, [(last_epoch, share, text) for share, text in _final_labels(c, styles)])
    return ax


def _final_labels(curves: pd.DataFrame, styles: dict[str, dict]) -> list[tuple[float, str]]:
    """``(final share, label)`` per group of arms that end at the same share: their names and ``solved/runs``."""
    ends = curves.sort_values("epoch").groupby("strategy").tail(1).set_index("strategy")
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
    datasets = _datasets(curves)
    styles = _styles_for(styles, curves["strategy"].unique(), control)
    lines = [
        sum(text.count("\n") + 1 for _, text in _final_labels(curves[curves["dataset"] == d], styles)) for d in datasets
    ]
    height = max(3.4, 0.16 * max(lines, default=0) + 1.4)  # room for every end label beside the axes
    fig, axes = _panel_grid(max(1, len(datasets)), panel=(5.6, height), ncols_max=2)
    if not datasets:
        _no_data(axes[0], "no conv/epochs_to_target")
        return fig
    _add_legend(
        fig,
        [
            Line2D([], [], color=st["color"], linestyle=st["linestyle"], marker=st["marker"], label=arm)
            for arm, st in styles.items()
        ],
    )
    _suptitle(
        fig,
        f"Share of seeds that had reached the target ({metric} at or below it) by each epoch; "
        "a diverged run counts as unsolved",
    )
    for ax, dataset in zip(axes, datasets):
        plot_solved_by_epoch(
            curves, dataset, ax=ax, styles=styles, control=control, target=(targets or {}).get(dataset)
        )
    return fig


# --------------------------------------------------------------------------------------------- final scores


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
    predictor, value`` of :func:`~lstm_influence.analysis.summaries.reference_predictors`) are dashed lines.
    ``labels``: write the arm names on the left (off for a panel beside another with the same rows).
    """
    ax = _new_axes(ax)
    s = scores[(scores["dataset"] == dataset) & (scores["status"] != "missing")]
    if s.empty:
        ax.set_title(dataset)
        return _no_data(ax, f"{dataset}: no {metric}")
    s = s.assign(value=s["value"].where(s["status"] != "worst", np.inf))
    styles = _styles_for(styles, s["strategy"].unique(), control)
    arms = list(styles)
    summ = summary[summary["dataset"] == dataset].set_index("strategy")
    counts = []
    for i, arm in enumerate(arms):
        st = styles[arm]
        cell = s[s["strategy"] == arm]
        finite = cell[_finite(cell["value"])]
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
        counts.append(f"n={len(cell)}" + (f", {n_worst} div." if n_worst else ""))
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
                counts[-1] += ", no CI"
    values = s.loc[_finite(s["value"]), "value"].to_numpy(dtype=float)
    refs = references[references["dataset"] == dataset] if references is not None else pd.DataFrame()
    if not refs.empty:
        values = np.concatenate([values, refs["value"].to_numpy(dtype=float)])
    if _wants_log(values):
        ax.set_xscale("log")
    if "norm" in metric:
        ax.axvline(1.0, color=REFERENCE_GREY, linestyle=":", linewidth=1, zorder=1)
    right, each = _uniform_counts(counts)
    _arm_rows(ax, arms, labels=labels, right=right)
    _reference_lines(ax, refs)
    ax.set_xlabel(f"{metric} (lower is better)" if "loss" in metric else metric)
    ax.set_title(f"{dataset}{each}", pad=14 if not refs.empty else 6)
    return ax


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
    datasets = _datasets(used)
    styles = _styles_for(styles, used["strategy"].unique(), control)
    fig, axes = _panel_grid(
        max(1, len(datasets)), panel=(4.3, _rows_height(list(styles))), ncols_max=3, extra_height=1.1
    )
    if not datasets:
        _no_data(axes[0], f"no {metric}")
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
    _add_legend(
        fig,
        [
            Line2D([], [], color="#444444", marker="o", markerfacecolor="none", linestyle="none", label="one seed"),
            Line2D([], [], color="#444444", marker="o", linewidth=2.2, label="IQM, 95% CI (Tukey-McLaughlin)"),
            Line2D([], [], color=REFERENCE_GREY, linestyle="--", label="reference predictor"),
            Line2D([], [], color="#000000", marker="x", linestyle="none", label="runs that diverged"),
        ],
    )
    _suptitle(fig, f"Final {metric} per arm")
    return fig


# --------------------------------------------------------------------------------------------- rates


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
    ax = _new_axes(ax)
    s = frame[frame["dataset"] == dataset]
    if s.empty:
        ax.set_title(dataset)
        return _no_data(ax)
    rate_col, low_col, high_col, count_col = columns
    styles = _styles_for(styles, s["strategy"].unique(), control)
    rows = s.set_index("strategy")
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
    _arm_rows(ax, list(styles), labels=labels, right=counts)
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

    ``rates``: from :func:`~lstm_influence.analysis.summaries.solved_rates`.
    """
    datasets = _datasets(rates)
    styles = _styles_for(styles, rates["strategy"].unique() if not rates.empty else [], control)
    fig, axes = _panel_grid(max(1, len(datasets)), panel=(3.9, _rows_height(list(styles))), extra_height=0.5)
    if not datasets:
        _no_data(axes[0])
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
    _suptitle(fig, "Runs that reached the target, per arm (solved/runs on the right; 95% Clopper-Pearson CI)")
    return fig


# --------------------------------------------------------------------------------------------- per-run metrics


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
    ax = _new_axes(ax)
    s = scores[
        (scores["dataset"] == dataset).to_numpy()
        & _finite(scores["value"])
        & (scores["status"] != "missing").to_numpy()
    ]
    if s.empty:
        ax.set_title(dataset)
        return _no_data(ax, f"no {metric}")
    styles = _styles_for(styles, s["strategy"].unique(), control)
    notes = []
    for i, (arm, st) in enumerate(styles.items()):
        v = s.loc[s["strategy"] == arm, "value"].to_numpy(dtype=float)
        median = np.median(v) if v.size else np.nan
        notes.append(f"n={v.size}")
        if v.size < 2 or not median:
            continue
        q75, q25 = np.percentile(v, [75, 25])
        ax.barh(i, 100 * (q75 - q25) / abs(median), height=0.6, color=st["color"], alpha=0.85)
    _arm_rows(ax, list(styles), labels=labels, right=_uniform_counts(notes)[0])
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
    ax = _new_axes(ax)
    m = metrics[(metrics["metric"] == metric).to_numpy() & _finite(metrics["value"])]
    m = m[m["dataset"] == dataset]
    if m.empty:
        ax.set_title(dataset)
        return _no_data(ax, f"no run logged {metric}")
    styles = _styles_for(styles, m["strategy"].unique(), control)
    for i, (arm, st) in enumerate(styles.items()):
        v = m.loc[m["strategy"] == arm, "value"].to_numpy(dtype=float)
        jitter = np.linspace(-0.2, 0.2, v.size) if v.size > 1 else np.zeros(1)
        ax.scatter(v, i + jitter, s=18, facecolors="none", edgecolors=st["color"], marker=st["marker"], zorder=3)
        ax.plot([v.mean()] * 2, [i - 0.32, i + 0.32], color=st["color"], linewidth=2.4, zorder=4)
    for r in reference:
        ax.axvline(r, color=REFERENCE_GREY, linestyle=":", linewidth=1)
    _arm_rows(ax, list(styles), labels=labels)
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
    datasets = _datasets(used)
    styles = _styles_for(styles, used["strategy"].unique(), control)
    metric = summary["metric"].iloc[0] if not summary.empty else PRIMARY_METRIC
    height = _rows_height(list(styles))
    fig = Figure(figsize=(3.6 * 3 + 0.6, height * max(1, len(datasets)) + 0.5), layout="constrained")
    if not datasets:
        _no_data(fig.add_subplot(), f"no {metric}")
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
    _suptitle(fig, "Stability across seeds")
    return fig


def retention_figure(
    metrics: pd.DataFrame, *, styles: dict[str, dict] | None = None, control: str = names.CONTROL_ARM
) -> Figure:
    """``influence/retention`` per arm and dataset (1 = injected deviation intact, 0 = erased), and
    ``influence/extra_norm_ratio`` for extra-variable arms when logged."""
    shown = metrics[metrics["metric"].isin([RETENTION, EXTRA_NORM_RATIO])] if not metrics.empty else metrics
    datasets = _datasets(shown)
    panels = [
        (RETENTION, "retention of the injected deviation", (0.0, 1.0)),
        (EXTRA_NORM_RATIO, "extra variable: ‖Δ_T‖ / ‖W_T‖", ()),
    ]
    panels = [p for p in panels if (shown["metric"] == p[0]).any()] if not shown.empty else []
    if not datasets or not panels:
        fig = Figure(figsize=(4.2, 3.3), layout="constrained")
        _no_data(fig.add_subplot(), f"no run logged {RETENTION}")
        return fig
    rows = [
        (m, label, ref, _styles_for(styles, shown.loc[shown["metric"] == m, "strategy"].unique(), control))
        for m, label, ref in panels
    ]
    heights = [_rows_height(list(st)) for *_, st in rows]
    fig = Figure(figsize=(3.9 * len(datasets) + 0.6, sum(heights) + 0.5), layout="constrained")
    grid = fig.subplots(len(rows), len(datasets), squeeze=False, height_ratios=heights)
    for line, (metric, label, ref, st) in zip(grid, rows):
        for k, (ax, dataset) in enumerate(zip(line, datasets)):
            plot_run_metric(shown, metric, dataset, ax=ax, styles=st, control=control, reference=ref, labels=k == 0)
            ax.set_xlabel(label)
            ax.set_title(dataset)
    _suptitle(fig, "Influence retention after training (one mark per run, bar = mean)")
    return fig


# --------------------------------------------------------------------------------------------- improvement


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
    ax = _new_axes(ax)
    s = summary[(summary["dataset"] == dataset) & (summary["strategy"] != baseline)]
    s = s[_finite(s["poi"])]
    if s.empty:
        ax.set_title(dataset)
        return _no_data(ax, "no control to compare with")
    styles = _styles_for(styles, [*s["strategy"].unique(), baseline], baseline)
    styles = {a: st for a, st in styles.items() if a != baseline}
    s = s.set_index("strategy")
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
    _arm_rows(ax, list(styles), labels=labels, right=texts)
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
    datasets = _datasets(summary)
    if (summary["dataset"] == "all").any():
        datasets.append("all")
    styles = _styles_for(styles, summary["strategy"].unique(), baseline)
    arms = [a for a in styles if a != baseline]
    fig, axes = _panel_grid(max(1, len(datasets)), panel=(4.3, _rows_height(arms)), extra_height=0.6)
    if not datasets:
        _no_data(axes[0])
        return fig
    for k, (ax, dataset) in enumerate(zip(axes, datasets)):
        plot_probability_of_improvement(summary, dataset, ax=ax, styles=styles, baseline=baseline, labels=k % 3 == 0)
    _suptitle(fig, f"Probability of improvement over {baseline} on {metric} (0.5 = no difference; 95% Newcombe CI)")
    return fig
