"""The report's sections on what the runs show: per-metric summaries, families, equivalence, solved rates,
reference predictors and the intervals' coverage.

Each function is pure: summary frames (:mod:`~lstm_influence.analysis.summaries`), the settings and the measured
simulations (:mod:`~lstm_influence.analysis.measured`) in, markdown out; an empty string where a section has
nothing to say, so the report leaves it out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstm_influence import names
from lstm_influence.analysis.estimators import min_p_signed_rank, pairs_for_clean_separation
from lstm_influence.analysis.markdown import code, fmt, fmt_interval, markdown_table
from lstm_influence.analysis.measured import Measured, equivalence_cells, equivalence_design
from lstm_influence.analysis.settings import SIGNIFICANCE, ReportSettings
from lstm_influence.analysis.summaries import ALL_DATASETS, CENSORED_METRICS, CONFIRMATORY, PAIRED_TEST
from lstm_influence.metrics import TEST_NORM_LOSS

EQUIVALENT = "equivalent within ±{margin}"
NOT_SHOWN = "not shown"

# --------------------------------------------------------------------------------------------- summary tables


def summary_section(
    summary: pd.DataFrame, metric: str, *, control: str = names.CONTROL_ARM, alpha: float = SIGNIFICANCE
) -> str:
    """Markdown for one metric's summary table (rows: dataset × arm, then the across-dataset rows)."""
    if summary.empty:
        return f"### `{metric}`\n\nNo used run logged this metric.\n"
    lower = bool(summary["lower_is_better"].iloc[0])
    confirmatory = summary["family"].iloc[0] == CONFIRMATORY
    censored = metric in CENSORED_METRICS
    rows = [_summary_row(r, control, alpha, confirmatory, censored) for _, r in summary.iterrows()]
    direction = "lower is better" if lower else "higher is better"
    label = "confirmatory (primary)" if confirmatory else "exploratory"
    text = [
        f"### `{metric}` ({direction}; {label})\n",
        markdown_table(rows, _summary_headers(control, censored)),
        "",
        _summary_key(summary, control, alpha, lower, confirmatory),
        *_summary_notes(summary, censored),
    ]
    return "\n".join(text) + "\n"


def _summary_headers(control: str, censored: bool) -> list[str]:
    headers = [
        "dataset",
        "arm",
        "n",
        "IQM [95% CI]",
        "median",
        "P(improvement) [95% CI]",
        f"diff vs {control} [95% CI]",
        "test (pairs)",
        "p",
        "p Holm",
        "mean rank [95% CI]",
        "divergence",
    ]
    if censored:
        headers[5:5] = ["reached", "KM median [95% CI]"]
    return headers


def _lacks_interval(r: pd.Series) -> bool:
    """Whether a row has an IQM or a P(improvement) but no interval for it (a single seed with a finite value)."""
    return bool(
        (np.isfinite(r["iqm"]) and not np.isfinite(r["iqm_low"]))
        or (np.isfinite(r["poi"]) and not np.isfinite(r["poi_low"]))
    )


def _summary_row(r: pd.Series, control: str, alpha: float, confirmatory: bool, censored: bool) -> list:
    """One dataset × arm row of the summary table, in the order of :func:`_summary_headers`."""
    is_control = r["arm"] == control
    mark = " †" if _lacks_interval(r) else ""
    p_holm = fmt(r["p_holm"])
    if confirmatory and np.isfinite(r["p_holm"]) and r["p_holm"] < alpha:
        p_holm = f"**{p_holm}**"
    test = "—"
    if isinstance(r["test"], str):
        short = "signed-rank" if r["test"] == PAIRED_TEST else "rank-sum"
        test = f"{short} ({int(r['n_pairs'])})"
    row = [
        r["dataset"],
        r["arm"] + mark,
        f"{int(r['n_runs'])}" if np.isfinite(r["n_runs"]) else "—",
        fmt_interval(r["iqm"], r["iqm_low"], r["iqm_high"]),
        fmt(r["median"]),
        "—" if is_control else fmt_interval(r["poi"], r["poi_low"], r["poi_high"], 2),
        "—" if is_control else fmt_interval(r["diff"], r["diff_low"], r["diff_high"]),
        test,
        fmt(r["p_value"]),
        p_holm,
        fmt_interval(r["mean_rank"], r["mean_rank_low"], r["mean_rank_high"], 2),
        f"{fmt(r['divergence_rate'], 2)} ({int(r['n_diverged'])}/{int(r['n_runs'])})",
    ]
    if censored:
        row[5:5] = _censored_cells(r)
    return row


def _censored_cells(r: pd.Series) -> list[str]:
    """The ``reached`` and Kaplan–Meier median cells of a censored metric's row."""
    km = fmt_interval(r["km_median"], r["km_low"], r["km_high"])
    if np.isfinite(r["km_median"]) and np.isfinite(r["km_low"]) and not np.isfinite(r["km_high"]):
        km = f"{fmt(r['km_median'])} [{fmt(r['km_low'])}, > {fmt(r['budget'])}]"
    if not np.isfinite(r["km_median"]):
        km = f"> {fmt(r['budget'])} (not reached)" if np.isfinite(r["budget"]) else "—"
    reached = "—" if r["dataset"] == ALL_DATASETS else f"{int(r['n_reached'])}/{int(r['n_runs'])}"
    return [reached, km]


def _summary_key(summary: pd.DataFrame, control: str, alpha: float, lower: bool, confirmatory: bool) -> str:
    """What the summary table's columns mean."""
    k = int(summary["p_value"].notna().sum())
    return (
        f"P(improvement) = P(a run of the arm {'has a lower value than' if lower else 'beats'} a run of "
        f"`{control}`), ties ½; 0.5 = no difference. diff: arm − `{control}` (Hodges–Lehmann; paired by seed "
        "where every run has a partner). test: the exact Wilcoxon signed-rank test on the paired differences, or "
        "the exact Mann–Whitney rank-sum test where partners are missing (number of pairs in brackets). p Holm: "
        f"Holm-adjusted over the {k} comparisons of this metric"
        + (f" (bold: < {alpha})." if confirmatory else "; exploratory, so no verdict is drawn from it.")
        + " Mean rank: 1 = best of the arms within each dataset × seed."
    )


def _summary_notes(summary: pd.DataFrame, censored: bool) -> list[str]:
    """The notes below a summary table that apply to it: across-dataset rows, cells without an interval,
    diverged runs, censoring."""
    notes = []
    if (summary["dataset"] == ALL_DATASETS).any():
        notes.append(
            "Rows `all`: P(improvement) averaged over datasets (Newcombe's square-and-add interval) and the mean "
            "rank across datasets, each dataset weighted equally (t interval over seed blocks with two pseudo-blocks "
            "ranked first and last, per dataset; Newcombe's square-and-add across datasets); "
            "no location is pooled across datasets, whose scales differ."
        )
    if any(_lacks_interval(r) for _, r in summary.iterrows()):
        notes.append(
            "† no interval: the cell (or the control it is compared with) has a single seed with a finite value."
        )
    if summary["n_worst"].fillna(0).sum():
        notes.append(
            "Runs that diverged are left out of IQM and median (n counts them) and take the worst rank in "
            "P(improvement), the tests, the differences and the mean rank, whatever value they logged."
        )
    if censored:
        notes.append(
            "Runs that never reached the target are censored at `train.epochs`: in IQM, median, P(improvement), "
            "the tests and the ranks they count as `train.epochs + 1` (tied, worse than any run that reached "
            "it); the Kaplan–Meier median treats them as not reached by the end of the budget."
        )
    return notes


# --------------------------------------------------------------------------------------------- families


def families_section(summaries: dict[str, pd.DataFrame], settings: ReportSettings) -> str:
    """Per family: its comparisons, the smallest p the design allows after Holm, and the pairs a verdict needs."""
    rows = []
    for metric, summary in summaries.items():
        cells = summary[summary["p_value"].notna()]
        if cells.empty:
            continue
        k = len(cells)
        smallest = float(cells["p_min"].min())
        rows.append(
            [
                code(metric),
                "confirmatory" if metric == settings.primary else "exploratory",
                k,
                ", ".join(sorted({f"{t} ({int(n)})" for t, n in zip(cells["test"], cells["n_pairs"])})),
                fmt(smallest),
                fmt(min(1.0, k * smallest)),
                pairs_for_clean_separation(k, settings.alpha),
            ]
        )
    if not rows:
        return ""
    n10 = min_p_signed_rank(10)
    return (
        "## Families and what this design can show\n\n"
        f"The primary metric `{settings.primary}` is the confirmatory family: its comparisons with "
        f"`{settings.control}` are Holm-corrected together and decide. Every other metric is exploratory. An exact "
        "test cannot give a p-value below the smallest one its design allows, however clear the data: with n pairs "
        f"the signed-rank test's smallest two-sided p is 2/2^n (5 pairs: {fmt(min_p_signed_rank(5))}; 10 pairs: "
        f"{fmt(n10)}), and Holm multiplies the smallest p of a family of k comparisons by k.\n\n"
        + markdown_table(
            rows,
            [
                "metric",
                "family",
                "comparisons k",
                "tests (pairs)",
                "smallest p possible",
                "smallest p after Holm",
                f"pairs for a clean separation to reach p Holm ≤ {settings.alpha}",
            ],
        )
        + "\n"
    )


# --------------------------------------------------------------------------------------------- equivalence


def equivalence_verdict(p_equiv_holm: float, margin: float, alpha: float = SIGNIFICANCE) -> str:
    """``equivalent within ±m`` when the Holm-adjusted TOST p is below ``alpha``, else ``not shown``; ``—`` untested."""
    if p_equiv_holm is None or not np.isfinite(p_equiv_holm):
        return "—"
    return EQUIVALENT.format(margin=fmt(margin)) if p_equiv_holm < alpha else NOT_SHOWN


def equivalence_section(summaries: dict[str, pd.DataFrame], settings: ReportSettings, measured: Measured) -> str:
    """Per metric with a margin: each arm's TOST against the control, Holm within the metric, and the verdict.

    ``measured``: the tests' sizes at the cells' numbers of pairs (:func:`~lstm_influence.analysis.measured.measure`).
    """
    parts, designs = [], set()
    for metric, summary in summaries.items():
        cells = equivalence_cells(summary)
        if cells.empty:
            continue
        designs |= {equivalence_design(r) for _, r in cells.iterrows()}
        parts += _equivalence_table(metric, cells, settings)
    if not parts:
        return ""
    sizes = ", ".join(f"{fmt(measured.equivalence_size[key])} at n = {key[1]} ({key[0]})" for key in sorted(designs))
    return _equivalence_intro(settings, sizes) + "\n".join(parts)


def _equivalence_family(metric: str, k: int, settings: ReportSettings) -> str:
    """Whether a metric's equivalence tests are a declared, confirmatory family or ad hoc ones."""
    if metric in settings.declared_margins:
        where = f" in `{settings.declaration}`" if settings.declaration else ""
        return f"declared in advance{where}: a confirmatory family of {k}, Holm-corrected"
    return f"ad hoc (`--margin`), exploratory: Holm over its {k} tests, no confirmatory claim"


def _equivalence_table(metric: str, cells: pd.DataFrame, settings: ReportSettings) -> list[str]:
    """One metric's heading and table of TOSTs, as lines of the section."""
    rows = []
    for _, r in cells.iterrows():
        paired = r["test"] == PAIRED_TEST
        p_holm = fmt(r["p_equiv_holm"])
        verdict = equivalence_verdict(r["p_equiv_holm"], r["margin"], settings.alpha)
        if verdict != NOT_SHOWN:
            p_holm, verdict = f"**{p_holm}**", f"**{verdict}**"
        rows.append(
            [
                r["dataset"],
                r["arm"],
                f"±{fmt(r['margin'])}",
                fmt_interval(r["diff"], r["diff_low"], r["diff_high"]),
                f"{'signed-rank' if paired else 'rank-sum'} ({int(r['n_pairs'])})",
                fmt(r["p_equiv"]),
                p_holm,
                verdict,
            ]
        )
    headers = [
        "dataset",
        "arm",
        "margin",
        f"diff vs {settings.control} [{settings.confidence:.0%} CI]",
        "TOST (pairs)",
        "p equiv",
        "p equiv Holm",
        "verdict",
    ]
    family = _equivalence_family(metric, len(cells), settings)
    return [
        f"### `{metric}` within ±{fmt(cells['margin'].iloc[0])}: {family}",
        "",
        markdown_table(rows, headers),
        "",
    ]


def _equivalence_intro(settings: ReportSettings, sizes: str) -> str:
    """How the equivalence tests work and what ``sizes`` (their measured sizes) mean."""
    return (
        "## Equivalence\n\n"
        f"Is an arm within ±m of `{settings.control}`? Two one-sided exact tests (TOST): the signed-rank test of "
        "d + m > 0 and of d − m < 0 on the paired differences d = arm − control (rank-sum tests where runs have no "
        "partner), p equiv = the larger of the two. Holm's correction runs over the equivalence tests of each metric. "
        f'"Equivalent within ±m" is said only where the Holm-adjusted p is below {settings.alpha}; otherwise '
        '"not shown": the data do not rule out a difference of m or more, which is no evidence of a difference '
        "either. With n pairs p equiv cannot go below 1/2^n (5 pairs: 0.031). Size of the test (the rate of "
        '"equivalent" when the true difference is exactly ±m), simulated on normal data with margins of 0.25 to 2 '
        f"SD, 20,000 experiments each: {sizes}.\n\n"
    )


# --------------------------------------------------------------------------------------------- solved rate


def solved_section(rates: pd.DataFrame | None, settings: ReportSettings, measured: Measured) -> str:
    """The runs that reached the target per dataset × arm (:func:`~lstm_influence.analysis.rates.solved_rates`).

    Datasets where every run of every arm solved the task, or none did, are listed in one line instead of a table.
    ``measured``: the rate interval's smallest coverage at the cells' numbers of runs.
    """
    if rates is None or rates.empty:
        return ""
    pct = f"{settings.confidence:.0%}"
    informative, constant = _split_constant_tasks(rates)
    rows = [_solved_row(r, settings) for _, r in rates[rates["dataset"].isin(informative)].iterrows()]
    sizes = sorted({int(n) for n in rates["n_runs"]})
    worst = ", ".join(f"{fmt(measured.rate_coverage[n])} at n = {n}" for n in sizes)
    n_tests = int(rates["p_value"].notna().sum())
    lines = [
        "## Solved rate",
        "",
        f"A run solved the task when its validation loss reached `train.target_norm_loss` within the budget "
        f"(`conv/reached_target` = 1); a run that diverged did not. Rate: {pct} Clopper–Pearson interval (exact "
        f"coverage at least {pct} at every true rate; its smallest: {worst}). Against `{settings.control}`, paired "
        "by seed: the exact McNemar test on the pairs where only one of the two solved (Fisher's exact test where a "
        f"run has no partner); Holm over all {n_tests} comparisons, those of tasks where every arm is the same "
        "included; exploratory.",
        "",
    ]
    if rows:
        headers = [
            "dataset",
            "arm",
            "solved",
            f"rate [{pct} CI]",
            f"only arm / only {settings.control}",
            "test (pairs)",
            "p",
            "p Holm",
        ]
        lines += [markdown_table(rows, headers), ""]
    if constant:
        lines += ["Every arm the same: " + "; ".join(constant) + ".", ""]
    return "\n".join(lines)


def _split_constant_tasks(rates: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(datasets where arms differ, one-line notes on those where every run solved or none did)``."""
    informative, constant = [], []
    for dataset, cells in rates.groupby("dataset", sort=True):
        solved = cells["n_solved"].to_numpy()
        if (solved == 0).all() or (solved == cells["n_runs"].to_numpy()).all():
            constant.append(f"`{dataset}` ({'none' if (solved == 0).all() else 'every run'})")
        else:
            informative.append(dataset)
    return informative, constant


def _solved_row(r: pd.Series, settings: ReportSettings) -> list:
    """One dataset × arm row of the solved-rate table."""
    is_control = r["arm"] == settings.control
    p_holm = "—" if is_control else fmt(r["p_holm"])
    if not is_control and r["p_holm"] < settings.alpha:
        p_holm = f"**{p_holm}**"
    discordant = "—" if is_control or pd.isna(r["arm_only"]) else f"{int(r['arm_only'])} / {int(r['control_only'])}"
    return [
        r["dataset"],
        r["arm"],
        f"{int(r['n_solved'])}/{int(r['n_runs'])}",
        fmt_interval(r["rate"], r["rate_low"], r["rate_high"], 2),
        discordant,
        "—" if is_control else f"{r['test']} ({int(r['n_pairs'])})",
        "—" if is_control else fmt(r["p_value"]),
        p_holm,
    ]


# --------------------------------------------------------------------------------------------- references, coverage


def references_section(references: pd.DataFrame, primary: pd.DataFrame, control: str) -> str:
    """Reference predictors' normalised test loss per dataset, beside the arms' IQM of the primary metric."""
    if references.empty:
        return ""
    test = references[references["split"] == "test"]
    rows = []
    for dataset in sorted(test["dataset"].unique()):
        arms = primary[(primary["dataset"] == dataset)]
        best = arms.loc[arms["iqm"].idxmin()] if arms["iqm"].notna().any() else None
        for _, r in test[test["dataset"] == dataset].iterrows():
            agree = "yes" if r["agree"] else f"**no**: {fmt(r['low'], 4)} to {fmt(r['high'], 4)}"
            beaten = "—"
            if best is not None and np.isfinite(r["value"]):
                better = arms.loc[arms["iqm"] < r["value"], "arm"].tolist()
                beaten = ", ".join(better) if better else "none"
            rows.append([dataset, code(r["predictor"]), fmt(r["value"], 4), int(r["n_runs"]), agree, beaten])
    return (
        "## Reference predictors\n\n"
        "Simple predictors fitted on the training split only, logged on every run as "
        "`baseline/<predictor>/test_norm_loss` (test loss ÷ the trivial predictor's, so the trivial predictor is 1). "
        "They depend on the data alone, so every run of a dataset should log the same value.\n\n"
        + markdown_table(
            rows,
            ["dataset", "predictor", TEST_NORM_LOSS, "runs", "same on every run", "arms whose IQM is lower"],
        )
        + "\n"
    )


def coverage_section(measured: Measured) -> str:
    """Simulated coverage of the intervals at the sample sizes below 10 that the report's cells have
    (``measured.interval_coverage``; empty when every cell has 10 or more)."""
    if not measured.interval_coverage:
        return ""
    rows = [
        [n, fmt(c["iqm"]), fmt(c["poi"]), fmt(c["paired_diff"]), fmt(c["mean_rank"])]
        for n, c in sorted(measured.interval_coverage.items())
    ]
    return (
        "**Coverage at these sample sizes.** Nominal 95% intervals from few seeds cover less than 95% when no exact "
        "level is reachable. Measured by simulation (2,000 normal experiments per method, seeded; P(improvement) "
        "and the difference: the worst of shifts 0, 0.5, 1 and 2 SD; mean rank: the worst of several arm layouts "
        "over 3 datasets, with rare divergence):\n\n"
        + markdown_table(
            rows, ["runs (pairs, seed blocks) per arm", "IQM", "P(improvement)", "paired difference", "mean rank"]
        )
        + "\n"
    )
