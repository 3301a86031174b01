"""Comparison figures, colour-blind safe (Okabe–Ito palette, plus one marker shape per strategy).

Each ``plot_*`` function draws one panel: it takes ``ax=None`` (a new figure is made when None) and returns the
axes. Each ``*_figure`` function lays the panels out, one per dataset where that makes sense, and returns the
``matplotlib.figure.Figure``. Nothing here saves or shows a figure; the caller decides. Figures are built with
``matplotlib.figure.Figure`` directly, not pyplot, so no GUI backend is needed and no global state is touched.

Inputs are the tidy frames of :mod:`lstm_influence.analysis.summaries` (``convergence_bands``,
``metric_scores``, ``summarize``, ``reference_predictors``; their ``strategy`` column is the arm) and the long
metrics frame of :mod:`lstm_influence.analysis.load`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from lstm_influence.analysis.summaries import strategy_order

#: Okabe & Ito (2008), "Color universal design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "vermillion": "#D55E00",
    "blue": "#0072B2",
    "reddish_purple": "#CC79A7",
    "yellow": "#F0E442",
}
_FIXED = {
    "baseline": ("black", "o"),
    "custom_init": ("orange", "s"),
    "input_transform": ("sky_blue", "^"),
    "bias_init": ("bluish_green", "D"),
    "extra_variable": ("vermillion", "v"),
}
_SPARE = [("blue", "P"), ("reddish_purple", "X"), ("yellow", "*"), ("orange", "p"), ("sky_blue", "h")]
PANEL_SIZE = (4.2, 3.3)
GRID = {"color": "#dddddd", "linewidth": 0.6}


def strategy_styles(strategies: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{strategy: {"color": hex, "marker": str}}``; the project's five strategies keep fixed styles."""
    styles, spare = {}, iter(_SPARE * 4)
    for s in strategies:
        colour, marker = _FIXED.get(s) or next(spare)
        styles[s] = {"color": OKABE_ITO[colour], "marker": marker}
    return styles


def _new_axes(ax: Axes | None, size: tuple[float, float] = PANEL_SIZE) -> Axes:
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


def _maybe_log(ax: Axes, values: np.ndarray, ratio: float = 30.0) -> None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size and v.min() > 0 and v.max() / v.min() > ratio:
        ax.set_yscale("log")


def _style_axes(ax: Axes) -> None:
    ax.grid(True, axis="y", **GRID)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend_handles(styles: dict[str, dict[str, str]]) -> list[Line2D]:
    return [
        Line2D([], [], color=st["color"], marker=st["marker"], linestyle="-", markersize=6, label=name)
        for name, st in styles.items()
    ]


def _grid_figure(n_panels: int, *, ncols_max: int = 3, size=PANEL_SIZE, sharey: bool = False):
    ncols = max(1, min(ncols_max, n_panels))
    nrows = max(1, int(np.ceil(n_panels / ncols)))
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def _suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (a one-panel figure would cut a long title at both ends)."""
    chars_per_line = max(30, int(fig.get_figwidth() / 0.1))  # about 0.1 inch a character at the default size
    fig.suptitle(textwrap.fill(text, chars_per_line))


def _add_legend(fig: Figure, styles: dict[str, dict[str, str]], extra: Sequence[Line2D] = ()) -> None:
    handles = _legend_handles(styles) + list(extra)
    longest = max((len(h.get_label()) for h in handles), default=8)
    fits = max(1, int(fig.get_figwidth() / (0.55 + 0.085 * longest)))  # entries that fit on one line
    ncols = min(len(handles), fits)
    if len(handles) > ncols:  # balance the rows
        ncols = int(np.ceil(len(handles) / np.ceil(len(handles) / ncols)))
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, frameon=False)


# --------------------------------------------------------------------------------------------- (1) convergence


def plot_convergence(
    bands: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict[str, str]] | None = None,
    target: float | None = None,
    ends: pd.DataFrame | None = None,
    metric: str = "val/norm_loss",
) -> Axes:
    """Per-epoch IQM of ``metric`` with its 95 % Tukey–McLaughlin band, one line per strategy, for one dataset.

    Args:
        bands: from :func:`~lstm_influence.analysis.stats.convergence_bands`.
        dataset: which dataset to draw.
        styles: from :func:`strategy_styles` (default: styles for the strategies present).
        target: ``train.target_norm_loss``, drawn as a dashed line.
        ends: diverged runs' last finite points (``dataset, strategy, step, value``), drawn as crosses.
    """
    ax = _new_axes(ax)
    b = bands[bands["dataset"] == dataset]
    if b.empty:
        return _no_data(ax, f"{dataset}: no {metric} history")
    styles = styles or strategy_styles(strategy_order(b["strategy"].unique()))
    for strategy in [s for s in styles if s in set(b["strategy"])]:
        c = b[b["strategy"] == strategy].sort_values("step")
        st = styles[strategy]
        ax.plot(c["step"], c["iqm"], color=st["color"], linewidth=1.8, label=strategy)
        if c["low"].notna().any():
            ax.fill_between(c["step"], c["low"], c["high"], color=st["color"], alpha=0.18, linewidth=0)
        if len(c) <= 3:
            ax.plot(c["step"], c["iqm"], linestyle="none", marker=st["marker"], color=st["color"], markersize=4)
    if ends is not None and not ends.empty:
        for strategy, e in ends[ends["dataset"] == dataset].groupby("strategy"):
            colour = styles.get(strategy, {"color": "#666666"})["color"]
            ax.scatter(e["step"], e["value"], marker="x", s=40, color=colour, zorder=5, linewidths=1.5)
    ax.axhline(1.0, color="#888888", linestyle=":", linewidth=1)
    if target is not None and np.isfinite(target):
        ax.axhline(target, color="#444444", linestyle="--", linewidth=1)
    _maybe_log(ax, np.concatenate([b["iqm"], b["low"].dropna(), b["high"].dropna()]), ratio=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(dataset)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (IQM over seeds)")
    _style_axes(ax)
    return ax


def convergence_figure(
    bands: pd.DataFrame,
    *,
    targets: dict[str, float] | None = None,
    ends: pd.DataFrame | None = None,
    metric: str = "val/norm_loss",
) -> Figure:
    """Figure 1: convergence curves with 95 % CI bands, one panel per dataset."""
    datasets = sorted(bands["dataset"].unique()) if not bands.empty else []
    styles = strategy_styles(strategy_order(bands["strategy"].unique() if not bands.empty else []))
    fig, axes = _grid_figure(max(1, len(datasets)))
    if not datasets:
        _no_data(axes[0], f"no {metric} history")
    for ax, dataset in zip(axes, datasets):
        plot_convergence(
            bands, dataset, ax=ax, styles=styles, target=(targets or {}).get(dataset), ends=ends, metric=metric
        )
    extra = [
        Line2D([], [], color="#888888", linestyle=":", label="trivial predictor (= 1)"),
        Line2D([], [], color="#444444", linestyle="--", label="target"),
        Line2D([], [], color="#444444", marker="x", linestyle="none", label="diverged run stops"),
    ]
    _add_legend(fig, styles, extra)
    _suptitle(fig, f"Convergence: {metric}, IQM across seeds with 95% CI (Tukey-McLaughlin)")
    return fig


# --------------------------------------------------------------------------------------------- (2) distributions


def plot_score_distribution(
    scores: pd.DataFrame,
    summary: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict[str, str]] | None = None,
    metric: str = "test/norm_loss",
    references: pd.DataFrame | None = None,
) -> Axes:
    """One dataset's per-run scores (hollow points) beside each arm's IQM with its 95 % CI (bar).

    Runs that take the worst rank (diverged) are drawn as crosses on the top edge. ``references`` (rows
    ``dataset, predictor, value`` of :func:`~lstm_influence.analysis.summaries.reference_predictors`) are drawn as
    labelled dashed lines.
    """
    ax = _new_axes(ax)
    s = scores[(scores["dataset"] == dataset) & (scores["status"] != "missing")]
    if s.empty:
        return _no_data(ax, f"{dataset}: no {metric}")
    s = s.assign(value=s["value"].where(s["status"] != "worst", np.inf))
    strategies = strategy_order(s["strategy"].unique())
    styles = styles or strategy_styles(strategies)
    summ = summary[summary["dataset"] == dataset].set_index("strategy")
    finite_all = s.loc[_finite(s["value"]), "value"]
    for i, strategy in enumerate(strategies):
        st = styles[strategy]
        cell = s[s["strategy"] == strategy]
        finite = cell[_finite(cell["value"])]
        jitter = np.linspace(-0.12, 0.12, len(finite)) if len(finite) > 1 else np.zeros(len(finite))
        ax.scatter(
            i - 0.12 + jitter,
            finite["value"],
            s=22,
            facecolors="none",
            edgecolors=st["color"],
            marker=st["marker"],
            linewidths=1.1,
            alpha=0.9,
        )
        n_worst = int((~_finite(cell["value"])).sum())
        if n_worst:
            ax.plot(
                [i - 0.12],
                [1.0],
                marker="x",
                color=st["color"],
                transform=ax.get_xaxis_transform(),
                clip_on=False,
                markersize=7,
            )
            ax.text(
                i - 0.05,
                1.0,
                f"{n_worst} div.",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                va="center",
                color=st["color"],
            )
        if strategy in summ.index and np.isfinite(summ.at[strategy, "iqm"]):
            centre = summ.at[strategy, "iqm"]
            low, high = summ.at[strategy, "iqm_low"], summ.at[strategy, "iqm_high"]
            if np.isfinite(low):
                ax.errorbar(
                    i + 0.2, centre, yerr=[[centre - low], [high - centre]], color=st["color"], linewidth=2.2, capsize=3
                )
            else:
                ax.annotate(
                    "no CI",
                    (i + 0.2, centre),
                    xytext=(7, 0),
                    textcoords="offset points",
                    fontsize=7,
                    va="center",
                    color="#555555",
                )
            ax.plot(i + 0.2, centre, marker=st["marker"], color=st["color"], markersize=7)
    if "norm" in metric:
        ax.axhline(1.0, color="#888888", linestyle=":", linewidth=1)
    if references is not None:
        for _, ref in references[references["dataset"] == dataset].iterrows():
            ax.axhline(ref["value"], color="#555555", linestyle="--", linewidth=0.9)
            ax.annotate(
                str(ref["predictor"]),
                (1.0, ref["value"]),
                xycoords=("axes fraction", "data"),
                xytext=(-2, 2),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color="#555555",
            )
        finite_all = pd.concat([finite_all, references.loc[references["dataset"] == dataset, "value"]])
    _maybe_log(ax, finite_all.to_numpy(dtype=float))
    counts = s.groupby("strategy").size()
    labels = [f"{x}\n(n={counts.get(x, 0)})" for x in strategies]
    ax.set_xticks(range(len(strategies)), labels, rotation=25, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(strategies) - 0.4)
    ax.set_title(dataset)
    ax.set_ylabel(metric)
    _style_axes(ax)
    return ax


def distribution_figure(
    scores: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    metric: str = "test/norm_loss",
    references: pd.DataFrame | None = None,
) -> Figure:
    """Figure 2: per-arm distributions of a final score, points per seed with IQM and 95 % CI, and the reference
    predictors of each dataset as dashed lines."""
    used = scores[scores["status"] != "missing"]
    datasets = sorted(used["dataset"].unique())
    styles = strategy_styles(strategy_order(used["strategy"].unique()))
    fig, axes = _grid_figure(max(1, len(datasets)))
    if not datasets:
        _no_data(axes[0], f"no {metric}")
    for ax, dataset in zip(axes, datasets):
        plot_score_distribution(scores, summary, dataset, ax=ax, styles=styles, metric=metric, references=references)
    extra = [
        Line2D([], [], color="#444444", marker="o", markerfacecolor="none", linestyle="none", label="one seed"),
        Line2D([], [], color="#444444", marker="o", linewidth=2.2, label="IQM, 95% CI"),
    ]
    _add_legend(fig, styles, extra)
    _suptitle(fig, f"Final {metric} per strategy (lower is better)" if "loss" in metric else f"Final {metric}")
    return fig


# --------------------------------------------------------------------------------------------- (3) stability


def _grouped(datasets: Sequence[str], strategies: Sequence[str]) -> dict[tuple[str, str], float]:
    width = 0.8 / max(1, len(strategies))
    return {
        (d, s): i + (j - (len(strategies) - 1) / 2) * width
        for i, d in enumerate(datasets)
        for j, s in enumerate(strategies)
    }


def _dataset_axis(ax: Axes, datasets: Sequence[str]) -> None:
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_xlim(-0.6, len(datasets) - 0.4)
    for x in np.arange(len(datasets) - 1) + 0.5:
        ax.axvline(x, color="#eeeeee", linewidth=0.8)


def plot_seed_spread(
    scores: pd.DataFrame,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict[str, str]] | None = None,
    metric: str = "test/norm_loss",
) -> Axes:
    """Relative spread across seeds per dataset × strategy: the interquartile range of the finite scores divided by
    their median (in %), so datasets with different loss scales share one axis."""
    ax = _new_axes(ax)
    s = scores[_finite(scores["value"]) & (scores["status"] != "missing").to_numpy()]
    if s.empty:
        return _no_data(ax, f"no {metric}")
    datasets, strategies = sorted(s["dataset"].unique()), strategy_order(s["strategy"].unique())
    styles = styles or strategy_styles(strategies)
    pos, width = _grouped(datasets, strategies), 0.8 / len(strategies)
    for (d, strategy), x in pos.items():
        v = s.loc[(s["dataset"] == d) & (s["strategy"] == strategy), "value"].to_numpy(dtype=float)
        median = np.median(v) if v.size else np.nan
        if v.size < 2 or not median:
            if v.size == 1:
                ax.text(x, 0, "1 seed", rotation=90, fontsize=6, ha="center", va="bottom", color="#666666")
            continue
        q75, q25 = np.percentile(v, [75, 25])
        ax.bar(x, 100 * (q75 - q25) / abs(median), width=width * 0.9, color=styles[strategy]["color"], alpha=0.85)
    _dataset_axis(ax, datasets)
    ax.set_ylabel(f"IQR / median of {metric} (%)")
    ax.set_title("Seed spread (relative)")
    _style_axes(ax)
    return ax


def _plot_rates(
    frame: pd.DataFrame, columns: tuple[str, str, str, str], *, ax: Axes | None, styles, ylabel: str, title: str
) -> Axes:
    """Bars of a rate per dataset × arm with their interval, ``k/n`` written under each bar.

    ``columns``: the rate, its interval's low and high ends, and the event count (``n_runs`` is the total).
    """
    ax = _new_axes(ax)
    s = frame[frame["dataset"] != "all"]
    if s.empty:
        return _no_data(ax)
    rate_col, low_col, high_col, count_col = columns
    datasets, strategies = sorted(s["dataset"].unique()), strategy_order(s["strategy"].unique())
    styles = styles or strategy_styles(strategies)
    pos, width = _grouped(datasets, strategies), 0.8 / len(strategies)
    for _, row in s.iterrows():
        x, colour = pos[(row["dataset"], row["strategy"])], styles[row["strategy"]]["color"]
        rate = row[rate_col]
        ax.bar(x, rate, width=width * 0.9, color=colour, alpha=0.85)
        if np.isfinite(row[low_col]):
            ax.errorbar(
                x, rate, yerr=[[rate - row[low_col]], [row[high_col] - rate]], color="#333333", linewidth=1, capsize=2
            )
        label = f"{int(row[count_col])}/{int(row['n_runs'])}"
        ax.text(x, -0.02, label, fontsize=6, ha="center", va="top", rotation=90, color="#444444")
    _dataset_axis(ax, datasets)
    ax.set_ylim(-0.12, 1.0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _style_axes(ax)
    return ax


def plot_divergence_rate(
    summary: pd.DataFrame, *, ax: Axes | None = None, styles: dict[str, dict[str, str]] | None = None
) -> Axes:
    """Fraction of runs that diverged per dataset × arm, with Clopper–Pearson 95 % intervals."""
    columns = ("divergence_rate", "divergence_low", "divergence_high", "n_diverged")
    return _plot_rates(
        summary, columns, ax=ax, styles=styles, ylabel="divergence rate (95% Clopper-Pearson CI)", title="Divergence"
    )


def solved_figure(rates: pd.DataFrame) -> Figure:
    """Share of runs that reached the target per dataset × arm, with Clopper–Pearson 95 % intervals.

    ``rates``: from :func:`~lstm_influence.analysis.summaries.solved_rates`.
    """
    n_datasets = max(int(rates["dataset"].nunique()), 1)
    fig = Figure(figsize=(max(PANEL_SIZE[0], 2.2 * n_datasets + 2.5), PANEL_SIZE[1] + 0.6), layout="constrained")
    ax = fig.subplots()
    strategies = strategy_order(rates["strategy"].unique()) if not rates.empty else []
    styles = strategy_styles(strategies)
    _plot_rates(
        rates,
        ("rate", "rate_low", "rate_high", "n_solved"),
        ax=ax,
        styles=styles,
        ylabel="runs that reached the target (95% Clopper-Pearson CI)",
        title="Solved rate",
    )
    if strategies:
        _add_legend(fig, styles)
    return fig


def plot_run_metric(
    metrics: pd.DataFrame,
    metric: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict[str, str]] | None = None,
    reference: Sequence[float] = (),
    title: str | None = None,
) -> Axes:
    """A per-run summary metric (e.g. ``stab/grad_spikes``, ``influence/retention``): one point per run, grouped
    by dataset, with the mean across seeds as a horizontal tick. Strategies that never log it are omitted."""
    ax = _new_axes(ax)
    m = metrics[(metrics["metric"] == metric).to_numpy() & _finite(metrics["value"])]
    if m.empty:
        ax.set_title(title or metric)
        return _no_data(ax, f"no run logged {metric}")
    datasets, strategies = sorted(m["dataset"].unique()), strategy_order(m["strategy"].unique())
    styles = styles or strategy_styles(strategies)
    styles = {k: v for k, v in styles.items() if k in strategies}
    pos, width = _grouped(datasets, list(styles)), 0.8 / max(1, len(styles))
    for (d, strategy), x in pos.items():
        v = m.loc[(m["dataset"] == d) & (m["strategy"] == strategy), "value"].to_numpy(dtype=float)
        if not v.size:
            continue
        st = styles[strategy]
        jitter = np.linspace(-width * 0.25, width * 0.25, v.size) if v.size > 1 else np.zeros(1)
        ax.scatter(x + jitter, v, s=18, facecolors="none", edgecolors=st["color"], marker=st["marker"])
        ax.plot([x - width * 0.4, x + width * 0.4], [v.mean()] * 2, color=st["color"], linewidth=2.2)
    for r in reference:
        ax.axhline(r, color="#888888", linestyle=":", linewidth=1)
    _dataset_axis(ax, datasets)
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    _style_axes(ax)
    return ax


def stability_figure(scores: pd.DataFrame, summary: pd.DataFrame, metrics: pd.DataFrame) -> Figure:
    """Figure 3: seed spread of the final score, divergence rate, gradient-norm spikes per run."""
    strategies = strategy_order(pd.concat([scores["strategy"], metrics["strategy"]]).dropna().unique())
    styles = strategy_styles(strategies)
    metric = summary["metric"].iloc[0] if not summary.empty else "test/norm_loss"
    fig, axes = _grid_figure(3)
    plot_seed_spread(scores, ax=axes[0], styles=styles, metric=metric)
    plot_divergence_rate(summary, ax=axes[1], styles=styles)
    plot_run_metric(metrics, "stab/grad_spikes", ax=axes[2], styles=styles, title="Gradient-norm spikes per run")
    _add_legend(fig, styles)
    _suptitle(fig, "Stability across seeds")
    return fig


# --------------------------------------------------------------------------------------------- (4) retention


def retention_figure(metrics: pd.DataFrame) -> Figure:
    """Figure 4: ``influence/retention`` per strategy (1 = injected deviation intact, 0 = erased), and
    ``influence/extra_norm_ratio`` for extra-variable strategies when logged."""
    strategies = strategy_order(metrics["strategy"].dropna().unique())
    styles = strategy_styles(strategies)
    has_ratio = (metrics["metric"] == "influence/extra_norm_ratio").any()
    fig, axes = _grid_figure(2 if has_ratio else 1, size=(5.5, 3.6))
    plot_run_metric(
        metrics,
        "influence/retention",
        ax=axes[0],
        styles=styles,
        reference=(0.0, 1.0),
        title="Retention of the injected deviation",
    )
    if has_ratio:
        plot_run_metric(
            metrics, "influence/extra_norm_ratio", ax=axes[1], styles=styles, title="Extra variable: ‖Δ_T‖ / ‖W_T‖"
        )
    shown = metrics.loc[metrics["metric"].str.startswith("influence/"), "strategy"].unique()
    _add_legend(fig, {k: v for k, v in styles.items() if k in set(shown)} or styles)
    _suptitle(fig, "Influence retention after training (one point per run, bar = mean)")
    return fig


# --------------------------------------------------------------------------------------------- (5) improvement


def plot_probability_of_improvement(
    summary: pd.DataFrame,
    dataset: str,
    *,
    ax: Axes | None = None,
    styles: dict[str, dict[str, str]] | None = None,
    baseline: str = "baseline",
) -> Axes:
    """P(strategy beats the baseline) with its 95 % Newcombe interval, one row per strategy, for one dataset
    (``"all"``: rliable's average over datasets)."""
    ax = _new_axes(ax)
    s = summary[(summary["dataset"] == dataset) & (summary["strategy"] != baseline)]
    s = s[_finite(s["poi"])]
    if s.empty:
        ax.set_title(dataset)
        return _no_data(ax, "no baseline to compare with")
    strategies = [x for x in strategy_order(s["strategy"].unique(), baseline) if x != baseline]
    styles = styles or strategy_styles(strategies)
    s = s.set_index("strategy")
    for y, strategy in enumerate(strategies):
        st, poi = styles[strategy], s.at[strategy, "poi"]
        low, high = s.at[strategy, "poi_low"], s.at[strategy, "poi_high"]
        if np.isfinite(low):
            ax.errorbar(
                poi, y, xerr=[[poi - low], [high - poi]], color=st["color"], linewidth=2.2, capsize=3, clip_on=False
            )
        label = f"{poi:.2f}" + ("" if np.isfinite(low) else " (no CI: 1 seed)")
        ax.annotate(
            label, (poi, y), xytext=(0, 9), textcoords="offset points", ha="center", fontsize=7, color="#333333"
        )
        ax.plot(poi, y, marker=st["marker"], color=st["color"], markersize=8, clip_on=False)
    ax.axvline(0.5, color="#444444", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(strategies)), strategies)
    ax.set_ylim(-0.6, len(strategies) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    lower = bool(summary["lower_is_better"].iloc[0]) if "lower_is_better" in summary else True
    ax.set_xlabel(f"P(lower than {baseline})" if lower else f"P(higher than {baseline})")
    ax.set_title("all datasets (mean)" if dataset == "all" else dataset)
    ax.grid(True, axis="x", **GRID)
    ax.set_axisbelow(True)
    return ax


def improvement_figure(summary: pd.DataFrame, *, baseline: str = "baseline") -> Figure:
    """Figure 5: probability of improvement over the baseline, one panel per dataset plus the average."""
    metric = summary["metric"].iloc[0] if not summary.empty else "test/norm_loss"
    datasets = sorted(d for d in summary["dataset"].unique() if d != "all")
    if (summary["dataset"] == "all").any():
        datasets.append("all")
    styles = strategy_styles(strategy_order(summary["strategy"].unique(), baseline))
    fig, axes = _grid_figure(max(1, len(datasets)), size=(4.0, 2.9), sharey=False)
    if not datasets:
        _no_data(axes[0])
    for ax, dataset in zip(axes, datasets):
        plot_probability_of_improvement(summary, dataset, ax=ax, styles=styles, baseline=baseline)
    _suptitle(fig, f"Probability of improvement over {baseline} on {metric} (0.5 = no difference; 95% Newcombe CI)")
    return fig
