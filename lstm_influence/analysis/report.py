"""The markdown report, figure files and MLflow artifacts: the side-effect edge of the analysis.

:func:`render_report` is pure (frames in, markdown text out); :func:`save_figure`, :func:`write_text` and
:func:`log_artifacts` touch the file system or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lstm_influence import names, tracking
from lstm_influence.analysis.coverage import equivalence_size, interval_coverage, rate_coverage
from lstm_influence.analysis.environment import (
    COMMIT,
    DIRTY,
    KNOWN_FILE,
    NOT_RECORDED,
    PROVENANCE_TAGS,
    environment_counts,
    mixed_comparisons,
)
from lstm_influence.analysis.estimators import min_p_signed_rank, pairs_for_clean_separation
from lstm_influence.analysis.load import SweepData, constant_and_varying_params
from lstm_influence.analysis.summaries import (
    ALL_DATASETS,
    CENSORED_METRICS,
    CONFIRMATORY,
    PAIRED_TEST,
    strategy_order,
)
from lstm_influence.metrics import PRIMARY_METRIC, TEST_NORM_LOSS

FIGURE_FORMATS = ("png", "svg")
ARTIFACT_PATH = "analysis"
SIGNIFICANCE = 0.05
#: Params that are expected to differ between the runs of one dataset × strategy cell.
_PER_RUN_KEYS = {"seed"}


@dataclass(frozen=True)
class ReportSettings:
    """How the statistics were computed, quoted in the report's methods section.

    Attributes:
        metrics: the analysed metrics, the primary one first.
        primary: the confirmatory metric.
        control: the reference arm.
        confidence: every interval's two-sided level.
        alpha: the family-wise error rate of the verdicts (differences and equivalences).
        margins: equivalence margins by metric (the metric's units); each arm gets a TOST against the control.
        declared_margins: the metrics whose margin was declared in advance (in ``declaration``); the others' are
            ad hoc and exploratory.
        declaration: where the declared margins (and primary metric) were written, for the report to name.
        equivalence_arms: the arms tested for equivalence; None: every arm.
    """

    metrics: Sequence[str]
    primary: str = PRIMARY_METRIC
    control: str = names.CONTROL_ARM
    confidence: float = 0.95
    alpha: float = SIGNIFICANCE
    margins: Mapping[str, float] = field(default_factory=dict)
    declared_margins: frozenset[str] = frozenset()
    declaration: str | None = None
    equivalence_arms: tuple[str, ...] | None = None


# --------------------------------------------------------------------------------------------- formatting


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; ``—`` for NaN/None, ``∞`` for infinity."""
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}g}"


def fmt_interval(point: Any, low: Any, high: Any, digits: int = 3) -> str:
    """``point [low, high]``, or the point alone when there is no interval."""
    if fmt(low) == "—" or fmt(high) == "—":
        return fmt(point, digits)
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def markdown_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A GitHub-flavoured markdown table; ``|`` in cells is escaped."""

    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def _code(text: Any) -> str:
    return f"`{text}`"


def _when(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(t, pd.Timestamp) else "—"


# --------------------------------------------------------------------------------------------- sections


def summary_section(
    summary: pd.DataFrame, metric: str, *, control: str = names.CONTROL_ARM, alpha: float = SIGNIFICANCE
) -> str:
    """Markdown for one metric's summary table (rows: dataset × arm, then the across-dataset rows)."""
    if summary.empty:
        return f"### `{metric}`\n\nNo used run logged this metric.\n"
    lower = bool(summary["lower_is_better"].iloc[0])
    family = summary["family"].iloc[0]
    confirmatory = family == CONFIRMATORY
    censored = metric in CENSORED_METRICS
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
    rows, single = [], False
    for _, r in summary.iterrows():
        is_control = r["strategy"] == control
        mark = ""
        if (np.isfinite(r["iqm"]) and not np.isfinite(r["iqm_low"])) or (
            np.isfinite(r["poi"]) and not np.isfinite(r["poi_low"])
        ):
            mark, single = " †", True
        p_holm = fmt(r["p_holm"])
        if confirmatory and np.isfinite(r["p_holm"]) and r["p_holm"] < alpha:
            p_holm = f"**{p_holm}**"
        test = "—"
        if isinstance(r["test"], str):
            short = "signed-rank" if r["test"] == PAIRED_TEST else "rank-sum"
            test = f"{short} ({int(r['n_pairs'])})"
        row = [
            r["dataset"],
            r["strategy"] + mark,
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
            km = fmt_interval(r["km_median"], r["km_low"], r["km_high"])
            if np.isfinite(r["km_median"]) and np.isfinite(r["km_low"]) and not np.isfinite(r["km_high"]):
                km = f"{fmt(r['km_median'])} [{fmt(r['km_low'])}, > {fmt(r['budget'])}]"
            if not np.isfinite(r["km_median"]):
                km = f"> {fmt(r['budget'])} (not reached)" if np.isfinite(r["budget"]) else "—"
            reached = "—" if r["dataset"] == ALL_DATASETS else f"{int(r['n_reached'])}/{int(r['n_runs'])}"
            row[5:5] = [reached, km]
        rows.append(row)
    direction = "lower is better" if lower else "higher is better"
    label = "confirmatory (primary)" if confirmatory else "exploratory"
    k = int(summary["p_value"].notna().sum())
    text = [
        f"### `{metric}` ({direction}; {label})\n",
        markdown_table(rows, headers),
        "",
        f"P(improvement) = P(a run of the arm {'has a lower value than' if lower else 'beats'} a run of "
        f"`{control}`), ties ½; 0.5 = no difference. diff: arm − `{control}` (Hodges–Lehmann; paired by seed "
        "where every run has a partner). test: the exact Wilcoxon signed-rank test on the paired differences, or "
        "the exact Mann–Whitney rank-sum test where partners are missing (number of pairs in brackets). p Holm: "
        f"Holm-adjusted over the {k} comparisons of this metric"
        + (f" (bold: < {alpha})." if confirmatory else "; exploratory, so no verdict is drawn from it.")
        + " Mean rank: 1 = best of the arms within each dataset × seed.",
    ]
    if (summary["dataset"] == ALL_DATASETS).any():
        text.append(
            "Rows `all`: P(improvement) averaged over datasets (Newcombe's square-and-add interval) and the mean "
            "rank across datasets, each dataset weighted equally (t interval over seed blocks with two pseudo-blocks "
            "ranked first and last, per dataset; Newcombe's square-and-add across datasets); "
            "no location is pooled across datasets, whose scales differ."
        )
    if single:
        text.append(
            "† no interval: the cell (or the control it is compared with) has a single seed with a finite value."
        )
    if summary["n_worst"].fillna(0).sum():
        text.append(
            "Runs that diverged are left out of IQM and median (n counts them) and take the worst rank in "
            "P(improvement), the tests, the differences and the mean rank, whatever value they logged."
        )
    if censored:
        text.append(
            "Runs that never reached the target are censored at `train.epochs`: in IQM, median, P(improvement), "
            "the tests and the ranks they count as `train.epochs + 1` (tied, worse than any run that reached "
            "it); the Kaplan–Meier median treats them as not reached by the end of the budget."
        )
    return "\n".join(text) + "\n"


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
                _code(metric),
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


EQUIVALENT = "equivalent within ±{margin}"
NOT_SHOWN = "not shown"


def equivalence_verdict(p_equiv_holm: float, margin: float, alpha: float = SIGNIFICANCE) -> str:
    """``equivalent within ±m`` when the Holm-adjusted TOST p is below ``alpha``, else ``not shown``; ``—`` untested."""
    if p_equiv_holm is None or not np.isfinite(p_equiv_holm):
        return "—"
    return EQUIVALENT.format(margin=fmt(margin)) if p_equiv_holm < alpha else NOT_SHOWN


def equivalence_section(summaries: dict[str, pd.DataFrame], settings: ReportSettings) -> str:
    """Per metric with a margin: each arm's TOST against the control, Holm within the metric, and the verdict."""
    parts = []
    sizes: dict[tuple[str, int], float] = {}
    for metric, summary in summaries.items():
        if "p_equiv" not in summary or summary["p_equiv"].isna().all():
            continue
        cells = summary[summary["p_equiv"].notna()]
        declared = metric in settings.declared_margins
        k = len(cells)
        family = (
            f"declared in advance{f' in `{settings.declaration}`' if settings.declaration else ''}: a confirmatory "
            f"family of {k}, Holm-corrected"
            if declared
            else f"ad hoc (`--margin`), exploratory: Holm over its {k} tests, no confirmatory claim"
        )
        rows = []
        for _, r in cells.iterrows():
            paired = r["test"] == PAIRED_TEST
            n = int(r["n_pairs"]) if paired else int(r["n_runs"])
            key = ("paired" if paired else "unpaired", n)
            if key not in sizes:
                sizes[key] = equivalence_size(n, alpha=settings.alpha, tests=(key[0],))[key[0]]
            p_holm = fmt(r["p_equiv_holm"])
            verdict = equivalence_verdict(r["p_equiv_holm"], r["margin"], settings.alpha)
            if verdict != NOT_SHOWN:
                p_holm, verdict = f"**{p_holm}**", f"**{verdict}**"
            rows.append(
                [
                    r["dataset"],
                    r["strategy"],
                    f"±{fmt(r['margin'])}",
                    fmt_interval(r["diff"], r["diff_low"], r["diff_high"]),
                    f"{'signed-rank' if paired else 'rank-sum'} ({int(r['n_pairs'])})",
                    fmt(r["p_equiv"]),
                    p_holm,
                    verdict,
                ]
            )
        parts += [
            f"### `{metric}` within ±{fmt(cells['margin'].iloc[0])}: {family}",
            "",
            markdown_table(
                rows,
                [
                    "dataset",
                    "arm",
                    "margin",
                    f"diff vs {settings.control} [{settings.confidence:.0%} CI]",
                    "TOST (pairs)",
                    "p equiv",
                    "p equiv Holm",
                    "verdict",
                ],
            ),
            "",
        ]
    if not parts:
        return ""
    measured = ", ".join(f"{fmt(v)} at n = {n} ({test})" for (test, n), v in sorted(sizes.items()))
    intro = (
        "## Equivalence\n\n"
        f"Is an arm within ±m of `{settings.control}`? Two one-sided exact tests (TOST): the signed-rank test of "
        "d + m > 0 and of d − m < 0 on the paired differences d = arm − control (rank-sum tests where runs have no "
        "partner), p equiv = the larger of the two. Holm's correction runs over the equivalence tests of each metric. "
        f'"Equivalent within ±m" is said only where the Holm-adjusted p is below {settings.alpha}; otherwise '
        '"not shown": the data do not rule out a difference of m or more, which is no evidence of a difference '
        "either. With n pairs p equiv cannot go below 1/2^n (5 pairs: 0.031). Size of the test (the rate of "
        '"equivalent" when the true difference is exactly ±m), simulated on normal data with margins of 0.25 to 2 '
        f"SD, 20,000 experiments each: {measured}.\n\n"
    )
    return intro + "\n".join(parts)


def solved_section(rates: pd.DataFrame, settings: ReportSettings) -> str:
    """The runs that reached the target per dataset × arm (:func:`~lstm_influence.analysis.summaries.solved_rates`).

    Datasets where every run of every arm solved the task, or none did, are listed in one line instead of a table.
    """
    if rates is None or rates.empty:
        return ""
    pct = f"{settings.confidence:.0%}"
    informative, constant = [], []
    for dataset, cells in rates.groupby("dataset", sort=True):
        solved = cells["n_solved"].to_numpy()
        if (solved == 0).all() or (solved == cells["n_runs"].to_numpy()).all():
            constant.append(f"`{dataset}` ({'none' if (solved == 0).all() else 'every run'})")
        else:
            informative.append(dataset)
    rows = []
    for _, r in rates[rates["dataset"].isin(informative)].iterrows():
        is_control = r["strategy"] == settings.control
        p_holm = "—" if is_control else fmt(r["p_holm"])
        if not is_control and r["p_holm"] < settings.alpha:
            p_holm = f"**{p_holm}**"
        discordant = "—" if is_control or pd.isna(r["arm_only"]) else f"{int(r['arm_only'])} / {int(r['control_only'])}"
        rows.append(
            [
                r["dataset"],
                r["strategy"],
                f"{int(r['n_solved'])}/{int(r['n_runs'])}",
                fmt_interval(r["rate"], r["rate_low"], r["rate_high"], 2),
                discordant,
                "—" if is_control else f"{r['test']} ({int(r['n_pairs'])})",
                "—" if is_control else fmt(r["p_value"]),
                p_holm,
            ]
        )
    sizes = sorted({int(n) for n in rates["n_runs"]})
    smallest = {n: float(rate_coverage(n, confidence=settings.confidence)[1].min()) for n in sizes}
    worst = ", ".join(f"{fmt(c)} at n = {n}" for n, c in smallest.items())
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
                better = arms.loc[arms["iqm"] < r["value"], "strategy"].tolist()
                beaten = ", ".join(better) if better else "none"
            rows.append([dataset, _code(r["predictor"]), fmt(r["value"], 4), int(r["n_runs"]), agree, beaten])
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


def coverage_section(summaries: dict[str, pd.DataFrame], settings: ReportSettings) -> str:
    """Simulated coverage of the intervals at the sample sizes below 10 that the report's cells have."""
    sizes: set[int] = set()
    for summary in summaries.values():
        cells = summary[summary["dataset"] != ALL_DATASETS]
        sizes |= {int(n) for n in cells["n_finite"].dropna() if 2 <= n < 10}
        sizes |= {int(n) for n in cells["n_pairs"].dropna() if 2 <= n < 10}
        if "n_blocks" in summary:
            sizes |= {int(n) for n in summary["n_blocks"].dropna() if 2 <= n < 10}
    if not sizes:
        return ""
    rows = []
    for n in sorted(sizes):
        c = interval_coverage(n, confidence=settings.confidence)
        rows.append([n, fmt(c["iqm"]), fmt(c["poi"]), fmt(c["paired_diff"]), fmt(c["mean_rank"])])
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


def environment_section(
    environments: pd.DataFrame, control: str, *, note: str | None = None, max_rows: int = 10
) -> str:
    """The commits, package versions, backends and processors of the used runs, and the comparisons that mix them.

    Args:
        environments: :func:`~lstm_influence.analysis.environment.run_environments` of the used runs.
        control: the reference arm; a comparison is an arm against it on one dataset.
        note: what is known of runs that predate the tags (``known_environment.txt``), quoted.
        max_rows: distinct environments listed here; ``environment.txt`` lists all.
    """
    if environments.empty:
        return ""
    counts = environment_counts(environments)
    short = {"version.lstm_influence": "lstm_influence", "mlflow.source.git.commit": "commit", "git_dirty": "dirty"}
    headers = ["runs", *(short.get(t, t.removeprefix("version.")) for t in PROVENANCE_TAGS)]
    rows = []
    for record in counts.head(max_rows).to_dict("records"):
        commit = record[COMMIT]
        record[COMMIT] = _code(commit[:12]) if commit != NOT_RECORDED else commit
        rows.append([record["runs"], *(record[t] for t in PROVENANCE_TAGS)])
    lines = [
        "## Environment",
        "",
        "Where the analysed runs came from, by their provenance tags: the code's git commit (and whether the working "
        "tree had uncommitted changes), the package versions, the Keras backend and the processor. One row per "
        f"distinct environment; `environment.txt` beside this report lists every one with its run count. "
        f'"{NOT_RECORDED}": the runs did not log the tag (runs made before provenance was recorded log none).',
        "",
        markdown_table(rows, headers),
    ]
    if len(counts) > max_rows:
        lines.append(f"\n({len(counts) - max_rows} more environments in `environment.txt`.)")
    unrecorded = int((environments[COMMIT] == NOT_RECORDED).sum())
    if unrecorded:
        lines.append(
            f"\n{unrecorded} of {len(environments)} runs do not record their commit, versions or backend: "
            "which code produced them is not known from the runs themselves."
        )
    if note:
        quoted = "\n".join(f"> {line}".rstrip() for line in note.strip("\n").splitlines())
        lines += ["", f"What is known from outside the runs (`{KNOWN_FILE}`, shipped with the report):", "", quoted]
    dirty = int((environments[DIRTY] == "true").sum())
    if dirty:
        lines.append(
            f"\n{dirty} runs ran from a working tree with uncommitted changes: their commit alone does not "
            "identify their code."
        )
    mixed = mixed_comparisons(environments, control)
    if not mixed.empty:
        rows = [[r["dataset"], r["strategy"], _code(r["tag"]), r["values"]] for _, r in mixed.iterrows()]
        n = len(mixed.groupby(["dataset", "strategy"]))
        lines += [
            "",
            f"**Warning: {n} comparison(s) mix environments.** The runs of an arm and of `{control}` on one dataset "
            "differ in the code, a package version or the backend below, so a difference between the arms may come "
            "from the environment rather than from the arm:",
            "",
            markdown_table(rows, ["dataset", "arm", "tag", f"values (arm and {control} together)"]),
        ]
    return "\n".join(lines) + "\n"


def run_counts_section(data: SweepData) -> str:
    """Run counts per dataset × strategy, and the runs left out with the reason."""
    runs = data.runs
    lines = [
        f"Training runs found: {len(runs)}; used: {int(runs['included'].sum())}; "
        f"left out: {int((~runs['included']).sum())}."
    ]
    if data.ignored:
        other = ", ".join(f"{n} with run_type={k}" for k, n in sorted(data.ignored.items()))
        lines.append(f"Other runs in the selection, not analysed: {other}.")
    used = data.included
    if not used.empty:
        rows = []
        for (d, s), cell in sorted(used.groupby(["dataset", "strategy"]), key=lambda kv: kv[0]):
            seeds = ",".join(str(x) for x in sorted(cell["seed"].dropna().astype(int)))
            rows.append([d, s, len(cell), seeds, int(cell["diverged"].sum())])
        order = {s: i for i, s in enumerate(strategy_order(used["strategy"].unique(), order=data.arms))}
        rows.sort(key=lambda r: (r[0], order[r[1]]))
        lines += ["", markdown_table(rows, ["dataset", "strategy", "runs used", "seeds", "diverged"])]
        counts = used.groupby(["dataset", "strategy"]).size()
        if counts.nunique() > 1:
            lines.append(
                f"\nSeeds per cell are unequal ({counts.min()} to {counts.max()}); every statistic uses the runs "
                "each cell has."
            )
    left = data.left_out
    lines.append("\n**Runs left out**\n")
    if left.empty:
        lines.append("None.")
    else:
        rows = [[r["run_name"], _code(r["run_id"][:12]), r["status"], r["reason"]] for _, r in left.iterrows()]
        lines.append(markdown_table(rows, ["run", "run id", "status", "reason"]))
    return "\n".join(lines) + "\n"


def missing_metrics_section(scores: dict[str, pd.DataFrame]) -> str:
    """Runs that are used but did not log one of the analysed metrics."""
    rows = []
    for metric, s in scores.items():
        for _, r in s[s["status"] == "missing"].iterrows():
            rows.append([_code(metric), r["dataset"], r["strategy"], r["seed"], _code(r["run_id"][:12])])
    if not rows:
        return ""
    return (
        "**Metrics missing from used runs** (these runs are left out of that metric only)\n\n"
        + markdown_table(rows, ["metric", "dataset", "strategy", "seed", "run id"])
        + "\n"
    )


def configuration_section(data: SweepData) -> str:
    """The sweep's parent run, the params shared by every used run, and those that vary."""
    lines = []
    if data.sweep:
        sw = data.sweep
        lines.append(
            markdown_table(
                [
                    ["sweep_id", _code(sw["sweep_id"])],
                    ["parent run", f"{sw['run_name']} ({_code(sw['run_id'])})" if sw["run_id"] else "—"],
                    ["started", _when(sw["start_time"])],
                    ["status", sw["status"] or "—"],
                ]
                + [[f"tag {k}", v] for k, v in sorted(sw["tags"].items()) if k not in {"sweep_id"}]
                + [[f"param {k}", v] for k, v in sorted(sw["params"].items())],
                ["", ""],
            )
        )
    used = data.included
    constant, varying = constant_and_varying_params(data.params, used["run_id"])
    if varying:
        rows = [[_code(k), ", ".join(map(str, v[:12])) + (" …" if len(v) > 12 else "")] for k, v in varying.items()]
        lines += ["", "Params that vary across the used runs:", "", markdown_table(rows, ["param", "values"])]
    confounds = _varying_within_cells(data)
    if confounds:
        lines += [
            "",
            "**Warning**: these params vary *within* a dataset × strategy cell (other than the seed), so a cell "
            f"mixes configurations: {', '.join(_code(k) for k in confounds)}. Split the sweep or filter it.",
        ]
    if constant:
        rows = [[_code(k), v] for k, v in constant.items()]
        lines += [
            "",
            "<details><summary>Params shared by every used run</summary>",
            "",
            markdown_table(rows, ["param", "value"]),
            "",
            "</details>",
        ]
    if len(data.sweeps) > 1:
        rows = [
            [_code(r["sweep_id"]), r["run_name"], _when(r["start_time"]), r["status"]]
            for _, r in data.sweeps.iterrows()
        ]
        lines += [
            "",
            "Sweeps in this experiment (newest first):",
            "",
            markdown_table(rows, ["sweep_id", "parent run", "started", "status"]),
        ]
    return "\n".join(lines) + "\n"


def _varying_within_cells(data: SweepData) -> list[str]:
    used = data.included
    p = data.params[data.params["run_id"].isin(used["run_id"])]
    if p.empty:
        return []
    p = p.merge(used[["run_id", "dataset", "strategy"]], on="run_id")
    n_values = p.groupby(["dataset", "strategy", "key"])["value"].nunique()
    keys = sorted(set(n_values[n_values > 1].index.get_level_values("key")) - _PER_RUN_KEYS)
    return [k for k in keys if not k.startswith(("tracking.", "hydra."))]


def _tuning_cell(value: object) -> object:
    """A tuning-table cell: "—" where nothing was recorded (pandas prints missing integers as ``<NA>``)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt(value) if isinstance(value, float) else value


def tuning_section(tuning: pd.DataFrame | None, *, max_rows: int = 20) -> str:
    """A markdown section summarising a frame of tuning results.

    Args:
        tuning: one row per trial or per best configuration (any columns; sorted by ``value`` or ``objective``
            when present, ascending). None or empty gives an empty string, so the report omits the section.
    """
    if tuning is None or tuning.empty:
        return ""
    frame = tuning
    for key in ("value", "objective"):
        if key in frame:
            frame = frame.sort_values(key)
            break
    shown = frame.head(max_rows)
    rows = [[_tuning_cell(v) for v in row] for row in shown.itertuples(index=False)]
    more = f"\n\n({len(frame) - max_rows} more rows not shown.)" if len(frame) > max_rows else ""
    return "## Tuning\n\n" + markdown_table(rows, list(shown.columns)) + more + "\n"


def methods_section(settings: ReportSettings) -> str:
    """How every number in the report was computed."""
    pct = f"{settings.confidence:.0%}"
    return f"""## Methods

- Unit of analysis: one training run (one seed) of an arm on a dataset. Arms are the runs' `arm` tags (the
  `strategy` tag where a run has none). Every arm sees the same data (`dataset.data_seed`) and `seed` fixes the
  initial weights and the shuffling, so runs of two arms with the same seed, budget and data seed are pairs.
- Primary comparison, per dataset, each arm against `{settings.control}`: the paired differences arm − control;
  their Hodges–Lehmann estimate (median of the Walsh averages) with the exact {pct} interval from the Wilcoxon
  signed-rank distribution; the exact two-sided Wilcoxon signed-rank test (the sign-flip permutation distribution
  of the rank sum, computed exactly, ties by midranks, zero differences dropped). Where some run has no partner:
  the exact Mann–Whitney rank-sum test (full permutation distribution, ties by midranks) and the two-sample
  Hodges–Lehmann shift with its exact interval. No p-value comes from a normal approximation, so none is below the
  smallest the design allows.
- Families: `{settings.primary}` is confirmatory; Holm's step-down correction over its comparisons. Other metrics are
  exploratory (Holm within each metric, no verdict).
- Equivalence, where a metric has a margin m (declared in advance, or ad hoc with `--margin`): two one-sided exact
  tests (TOST) against `{settings.control}`, signed-rank on d + m > 0 and on d − m < 0 (rank-sum without partners),
  p = the larger, Holm within the metric; "equivalent within ±m" only when it passes, "not shown" otherwise. A
  difference test that does not reject says nothing about equivalence and is never read as "no difference".
- IQM: interquartile mean, the 25% trimmed mean (rliable); {pct} Tukey–McLaughlin interval (trimmed mean ± t(h − 1)
  × winsorized SE, h the runs kept), its lower end clipped at 0 for metrics that cannot be negative. The learning
  curves' bands are the same interval of the IQM at each epoch.
- P(improvement): P(a run of the arm beats a run of `{settings.control}`) + ½ P(tie) (rliable), with Newcombe's
  score-type interval (Hanley–McNeil variance), which stays open at complete separation. Across datasets: the mean
  over datasets with Newcombe's square-and-add interval.
- Mean rank: arms ranked within each dataset × seed block where every arm has a run (1 = best, ties share), averaged
  over blocks and then over datasets; per dataset a t interval over the blocks with two pseudo-blocks added, one
  where the arm ranks first and one where it ranks last (so it never collapses to a point), and across datasets
  Newcombe's square-and-add. (A percentile bootstrap covered only 49% at 10 seeds in simulation.)
- Diverged runs (`stab/diverged = 1`) take the worst rank in every metric, whatever value they logged, and are left
  out of IQM and median; their rate has a Clopper–Pearson interval.
- Censoring of `conv/epochs_to_target`: a run that never reached `train.target_norm_loss` is right-censored at
  `train.epochs`; rank-based statistics and IQM use `train.epochs + 1`, the Kaplan–Meier median
  (`scipy.stats.ecdf` on `CensoredData`, log-log pointwise band) treats it as not reached by the budget.
- Runs left out: not FINISHED (FAILED with their `error` tag, still RUNNING, KILLED), without strategy/dataset tags,
  or superseded by a later run of the same `config_hash`.
- Data: this report is built from `runs.csv` (every run's tags, params and summary metrics) and `history.csv`
  (every per-epoch value) beside it; `python experiments/compare.py --from <this folder> --out DIR` rebuilds it.
"""


def _figure_markdown(caption: str, png: str) -> str:
    """A figure's caption (with a link to its SVG beside the PNG) and the image."""
    svg = str(Path(png).with_suffix(".svg"))
    return f"**{caption}** ([SVG]({svg}))\n\n![{caption}]({png})"


def render_report(
    data: SweepData,
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, pd.DataFrame],
    figures: dict[str, str],
    settings: ReportSettings,
    *,
    references: pd.DataFrame | None = None,
    rates: pd.DataFrame | None = None,
    tuning: pd.DataFrame | None = None,
    environments: pd.DataFrame | None = None,
    environment_note: str | None = None,
    extra_sections: Sequence[str] = (),
    headline: str | None = None,
) -> str:
    """The whole report as markdown (a pure function of its inputs: the same files give the same bytes).

    Args:
        data: what was loaded.
        summaries: ``{metric: summarize(...) frame}``, the primary metric first.
        scores: ``{metric: metric_scores(...) frame}`` (for the missing-metric list).
        figures: ``{caption: relative path of the PNG}`` (an SVG beside it is linked).
        settings: the statistics settings.
        references: from :func:`~lstm_influence.analysis.summaries.reference_predictors`.
        rates: from :func:`~lstm_influence.analysis.summaries.solved_rates` (the solved-rate section).
        tuning: optional tuning results (see :func:`tuning_section`).
        environments: the used runs' provenance
            (:func:`~lstm_influence.analysis.environment.run_environments`; the environment section).
        environment_note: what is known of runs that predate the provenance tags, quoted in that section.
        extra_sections: further markdown sections appended at the end.
        headline: the caption (a key of ``figures``) of the figure that answers the study's question: shown
            first, before the summary, and not again among the figures.
    """
    scope = f"sweep `{data.sweep['sweep_id']}`" if data.sweep else "all training runs of the experiment (no sweep)"
    parent_run = data.sweep["run_id"] if data.sweep else None
    head = [
        f"# Influence strategies compared: `{data.experiment_name}`",
        "",
        f"Experiment `{data.experiment_name}` (id {data.experiment_id}) at `{data.tracking_uri}`; analysed: "
        f"{scope}. {tracking.ui_hint(data.tracking_uri, data.experiment_id, parent_run)}.",
    ]
    head += [f"> {note}" for note in data.notes]
    body = [_figure_markdown(headline, figures[headline]), ""] if headline in figures else []
    body += ["## Summary", ""]
    if not summaries or all(s.empty for s in summaries.values()):
        body.append("No finished training run with the analysed metrics: nothing to summarise.\n")
    for metric, summary in summaries.items():
        body.append(summary_section(summary, metric, control=settings.control, alpha=settings.alpha))
    primary = summaries.get(settings.primary)
    sections = [
        equivalence_section(summaries, settings),
        solved_section(rates, settings),
        references_section(references, primary, settings.control)
        if references is not None and primary is not None
        else "",
        families_section(summaries, settings),
        coverage_section(summaries, settings),
    ]
    body += [section for section in sections if section]
    missing = missing_metrics_section(scores)
    if missing:
        body.append(missing)
    if figures:
        body += ["## Figures", ""]
        if headline in figures:
            body += [f"{headline.split(':')[0]}, the headline, is at the top.", ""]
        for caption, png in figures.items():
            if caption != headline:
                body += [_figure_markdown(caption, png), ""]
    if environments is not None:
        body.append(environment_section(environments, settings.control, note=environment_note))
    body += ["## Runs", "", run_counts_section(data), "## Sweep configuration", "", configuration_section(data)]
    tune = tuning_section(tuning)
    if tune:
        body.append(tune)
    body.append(methods_section(settings))
    body += list(extra_sections)
    return "\n".join([*head, "", *body]).rstrip() + "\n"


# --------------------------------------------------------------------------------------------- side effects


def save_figure(
    fig: Figure, out_dir: Path, name: str, *, formats: Sequence[str] = FIGURE_FORMATS, dpi: int = 150
) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.<fmt>`` for each format; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = out_dir / f"{name}.{ext}"
        # A fixed salt and no date: SVG element ids are otherwise random, and a rebuild must be byte-identical.
        with matplotlib.rc_context({"svg.hashsalt": name}):
            fig.savefig(path, dpi=dpi, metadata={"Date": None} if ext == "svg" else None)
        paths.append(path)
    return paths


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def log_artifacts(
    tracking_uri: str, run_id: str, out_dir: Path, files: Iterable[Path], artifact_path: str = ARTIFACT_PATH
) -> None:
    """Log ``files`` (inside ``out_dir``) as artifacts of ``run_id``, keeping their paths relative to
    ``out_dir`` under ``artifact_path``."""
    tracking.log_files(tracking.make_client(tracking_uri), run_id, files, root=out_dir, artifact_path=artifact_path)
