"""Learning curves: per dataset and arm, every seed, the IQM over seeds and its 95 % band."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from lstm_influence import names
from lstm_influence.analysis.coverage import clipped_band_coverage
from lstm_influence.analysis.estimators import finite_or_inf
from lstm_influence.analysis.plots.layout import (
    add_legend,
    datasets_of,
    despine,
    legend_columns,
    new_axes,
    no_data,
    suptitle,
    wants_log,
)
from lstm_influence.analysis.plots.style import (
    GRID,
    REFERENCE_GREY,
    SEED_ALPHA,
    arm_label,
    styles_for,
)
from lstm_influence.metrics import VAL_NORM_LOSS


def seed_curves(history: pd.DataFrame, dataset: str, arm: str, metric: str = VAL_NORM_LOSS) -> pd.DataFrame:
    """One column per run of ``arm`` on ``dataset``, one row per step: the finite values of ``metric`` (else NaN).

    A run that diverged is NaN from its first non-finite step, as in the bands of
    :func:`~lstm_influence.analysis.bands.convergence_bands`.
    """
    h = history[(history["metric"] == metric) & (history["dataset"] == dataset) & (history["arm"] == arm)].copy()
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
        bands: from :func:`~lstm_influence.analysis.bands.convergence_bands`.
        dataset, arm: which cell to draw.
        history: per-epoch metrics (``run_id, dataset, arm, metric, step, value``): the seeds' own curves.
        styles: from :func:`arm_styles`.
        control: the reference arm, whose IQM is drawn under every other arm's.
        target: ``train.target_norm_loss``, drawn as a dashed line.
        ends: diverged runs' last finite points (``dataset, arm, step, value``), drawn as crosses.
    """
    ax = new_axes(ax)
    st = styles_for(styles, [arm, control], control)[arm]
    b = bands[(bands["dataset"] == dataset) & (bands["arm"] == arm)].sort_values("step")
    seeds = seed_curves(history, dataset, arm, metric) if history is not None else pd.DataFrame()
    if b.empty and seeds.empty:
        ax.set_title(arm_label(arm), fontsize="medium")
        return no_data(ax, "no history")
    for run in seeds.columns:
        ax.plot(seeds.index, seeds[run], color=st["color"], linewidth=0.7, alpha=SEED_ALPHA, zorder=2)
    if arm != control:
        c = bands[(bands["dataset"] == dataset) & (bands["arm"] == control)].sort_values("step")
        ax.plot(c["step"], c["iqm"], color="#000000", linewidth=1.0, alpha=0.8, zorder=3)
    _draw_iqm(ax, b, band_within_seeds(b, seeds), st)
    if ends is not None and not ends.empty:
        e = ends[(ends["dataset"] == dataset) & (ends["arm"] == arm)]
        ax.scatter(e["step"], e["value"], marker="x", s=36, color="#000000", zorder=5, linewidths=1.3)
    if "norm" in metric:
        ax.axhline(1.0, color=REFERENCE_GREY, linestyle=":", linewidth=1)
    if target is not None and np.isfinite(target):
        ax.axhline(target, color="#444444", linestyle="--", linewidth=0.9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.set_title(arm_label(arm), fontsize="medium")
    ax.grid(True, axis="y", **GRID)
    ax.set_axisbelow(True)
    despine(ax)
    return ax


def _draw_iqm(ax: Axes, band: pd.DataFrame, shown: pd.DataFrame, st: dict) -> None:
    """The IQM over seeds in the arm's style, over its band (``shown``: clipped to the seeds' range)."""
    if shown["low"].notna().any():
        ax.fill_between(shown["step"], shown["low"], shown["high"], color=st["color"], alpha=0.25, linewidth=0)
    ax.plot(
        band["step"],
        band["iqm"],
        color=st["color"],
        linestyle=st["linestyle"],
        marker=st["marker"],
        markevery=max(1, len(band) // 5),
        markersize=4,
        linewidth=1.9,
        zorder=4,
    )


def _band_label(bands: pd.DataFrame) -> str:
    """The band's key, with its simulated coverage at the fewest seeds a curve starts with (clipping to the seeds'
    range costs coverage only at small n: about 0.89 at 5 seeds, none at 10)."""
    label = "IQM's 95% CI clipped to the seeds' range"
    runs = bands.groupby(["dataset", "arm"])["n"].max() if not bands.empty else pd.Series(dtype=float)
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
    datasets = datasets_of(bands)
    arms = list(styles_for(styles, bands["arm"].unique() if not bands.empty else [], control))
    styles = styles_for(styles, arms, control)
    if not datasets or not arms:
        fig = Figure(figsize=(4.2, 3.3), layout="constrained")
        no_data(fig.add_subplot(), f"no {metric} history")
        return fig
    nrows = int(np.ceil(len(arms) / 5))
    ncols = int(np.ceil(len(arms) / nrows))
    panel = (2.3, 1.65)
    block = panel[1] * nrows + 0.45
    width = max(panel[0] * ncols + 0.7, 6.5)
    key = _curves_key(bands, control, metric)
    legend = 0.22 * np.ceil(len(key) / legend_columns(width, key)) + 0.2
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
                values.append(seed_curves(history, dataset, arms[k], metric).to_numpy(dtype=float).ravel())
        if wants_log(np.concatenate(values), ratio=10):
            axes[0, 0].set_yscale("log")
        sub.suptitle(dataset, fontweight="bold")
        sub.supylabel(metric, fontsize="medium")
        sub.supxlabel("epoch", fontsize="medium")
    add_legend(subs[-1], key, loc="center")
    suptitle(fig, f"Learning curves: {metric} per arm, every seed, IQM with its 95% CI (Tukey-McLaughlin)")
    return fig


def _curves_key(bands: pd.DataFrame, control: str, metric: str) -> list:
    """The key to the learning curves' marks (the trivial predictor's line only for a normalised metric)."""
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
    return key
