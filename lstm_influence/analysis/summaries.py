"""DataFrame summaries of a sweep: the estimators of :mod:`~lstm_influence.analysis.estimators` per dataset × arm.

Every function here is pure: tidy frames in, tidy frames out. Nothing reads MLflow or writes files.

Data contract. A *scores* frame (see :func:`metric_scores`) has one row per training run and the columns
``run_id, dataset, arm, seed, pair, value, status, diverged, budget``; ``arm`` is the run's arm (its
``arm`` tag, else its ``strategy`` tag), ``pair`` the key that pairs runs of different arms (seed, budget and
``dataset.data_seed``: the same data, initial-weight seed and epochs), and ``status`` is one of

* ``"ok"``: the run finished and logged a finite value;
* ``"censored"``: ``conv/epochs_to_target`` of a run that never reached the target; ``value`` holds the censoring
  value ``train.epochs + 1`` (one epoch past the budget, so it ranks below every run that reached the target);
* ``"worst"``: a run that diverged (whatever finite number it logged: a diverged run's AULC or spike count does not
  describe a finished run) or logged a non-finite value; ``value`` is ``+inf`` for a lower-is-better metric and
  ``-inf`` otherwise, so it takes the worst rank in every rank-based statistic, and it is left out of the
  location estimates (mean, median, IQM);
* ``"missing"``: a run that did not log the metric and did not diverge; it is left out of this metric.

Per dataset, each arm is compared with the control arm. When every run of both arms has a partner with the same
``pair`` key, the comparison is *paired*: the differences arm − control, the exact Wilcoxon signed-rank test and the
Hodges–Lehmann difference with its exact interval. Otherwise (missing partners) it falls back to the exact
Mann–Whitney test and the two-sample Hodges–Lehmann shift. P(improvement) (rliable's, unpaired) and the mean rank
within each dataset × seed block (complete blocks only) are reported beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstm_influence import names
from lstm_influence.analysis.estimators import (
    CONFIDENCE,
    block_ranks,
    finite_or_inf,
    hodges_lehmann_paired,
    hodges_lehmann_shift,
    holm,
    iqm,
    iqm_interval,
    kaplan_meier_median,
    mean_rank_interval,
    min_p_rank_sum,
    min_p_signed_rank,
    mover_mean_interval,
    newcombe_interval,
    paired_difference,
    probability_of_improvement,
    proportion_ci,
    rank_sum_test,
    rank_sum_tost,
    signed_rank_test,
    signed_rank_tost,
)
from lstm_influence.metrics import (
    EPOCHS_TO_TARGET,
    REACHED_TARGET,
    lower_is_better,
    non_negative,
)

#: The censored metrics and the 0/1 metric that says whether the event happened.
CENSORED_METRICS = {EPOCHS_TO_TARGET: REACHED_TARGET}
#: What the ``test`` column says produced ``p_value``.
PAIRED_TEST = "signed-rank exact"
UNPAIRED_TEST = "rank-sum exact"
CONFIRMATORY = "confirmatory"
EXPLORATORY = "exploratory"
#: Aggregate rows across datasets carry this in the ``dataset`` column.
ALL_DATASETS = "all"

SUMMARY_COLUMNS = [
    "metric",
    "family",
    "lower_is_better",
    "dataset",
    "arm",
    "n_runs",
    "n_finite",
    "n_worst",
    "n_censored",
    "seeds",
    "mean",
    "median",
    "iqm",
    "iqm_low",
    "iqm_high",
    "poi",
    "poi_low",
    "poi_high",
    "test",
    "n_pairs",
    "diff",
    "diff_low",
    "diff_high",
    "diff_coverage",
    "p_value",
    "p_min",
    "p_holm",
    "margin",
    "p_equiv",
    "p_equiv_holm",
    "mean_rank",
    "mean_rank_low",
    "mean_rank_high",
    "n_blocks",
    "n_diverged",
    "divergence_rate",
    "divergence_low",
    "divergence_high",
    "km_median",
    "km_low",
    "km_high",
    "n_reached",
    "budget",
]
SCORE_COLUMNS = ["run_id", "dataset", "arm", "seed", "pair", "value", "status", "diverged", "budget"]


def arm_order(arms: Sequence[str], control: str = names.CONTROL_ARM, order: Sequence[str] = ()) -> list[str]:
    """The control first, then the arms in ``order`` (the order they were swept, :attr:`SweepData.arms`), then
    any others in the order given; no list of arms is fixed in advance."""
    present = list(dict.fromkeys(a for a in arms if isinstance(a, str)))
    ordered = [control] if control in present else []
    ordered += [a for a in order if a in present and a not in ordered]
    ordered += [a for a in present if a not in ordered]
    return ordered


# --------------------------------------------------------------------------------------------- scores


def metric_scores(
    runs: pd.DataFrame, metrics: pd.DataFrame, metric: str, *, higher_is_better: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per included training run with its score on ``metric`` and how that score was obtained.

    Args:
        runs: the runs frame (columns ``run_id, dataset, arm, seed, data_seed, diverged, budget`` and
            ``included``; see :mod:`lstm_influence.analysis.load`); only rows with ``included`` are used.
        metrics: tidy summary metrics, columns ``run_id, metric, value``.
        metric: the metric to score.
        higher_is_better: extra metrics to treat as higher-is-better.

    Returns:
        :data:`SCORE_COLUMNS` (see the module docstring), sorted by dataset, arm and seed.
    """
    used = runs[runs["included"]] if "included" in runs else runs
    frame = used[["run_id", "dataset", "arm", "seed", "diverged", "budget"]].copy()
    frame["diverged"] = frame["diverged"].fillna(False).astype(bool)
    data_seed = used["data_seed"] if "data_seed" in used else pd.Series(np.nan, index=used.index)
    frame["pair"] = [f"seed={s}|epochs={b}|data_seed={d}" for s, b, d in zip(used["seed"], used["budget"], data_seed)]

    def logged(name: str) -> pd.Series:
        rows = metrics[metrics["metric"] == name].drop_duplicates("run_id", keep="last")
        return rows.set_index("run_id")["value"]

    m = logged(metric)
    was_logged = frame["run_id"].isin(m.index).to_numpy()
    value = finite_or_inf(frame["run_id"].map(m))
    diverged = frame["diverged"].to_numpy()
    status = np.where(np.isfinite(value), "ok", "missing").astype(object)
    worst_value = np.inf if lower_is_better(metric, higher_is_better) else -np.inf
    if metric in CENSORED_METRICS:
        flag = frame["run_id"].map(logged(CENSORED_METRICS[metric])).to_numpy(dtype=float)
        budget = frame["budget"].to_numpy(dtype=float)
        not_reached = ~np.isfinite(value) & (flag == 0) & ~diverged
        placeable = not_reached & np.isfinite(budget)  # a censored run with an unknown budget cannot be placed
        status[placeable] = "censored"
        value = np.where(placeable, budget + 1, value)
    worst = diverged | (was_logged & ~np.isfinite(value))
    status[worst] = "worst"
    frame["value"] = np.where(worst, worst_value, value)
    frame["status"] = status
    # a fixed order (by seed) makes every resample independent of the order the runs were read in
    frame = frame.sort_values(["dataset", "arm", "seed", "run_id"], kind="stable")
    return frame[SCORE_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------------------------- comparisons


def paired_values(arm: pd.DataFrame, control: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Arm and control values aligned by pair key, or None when some run has no partner (or keys repeat)."""
    keys_arm, keys_control = arm["pair"], control["pair"]
    if keys_arm.duplicated().any() or keys_control.duplicated().any():
        return None
    if set(keys_arm) != set(keys_control) or keys_arm.empty:
        return None
    a = arm.set_index("pair")["value"]
    c = control.set_index("pair")["value"].reindex(a.index)
    return a.to_numpy(dtype=float), c.to_numpy(dtype=float)


def compare_with_control(
    arm: pd.DataFrame, control: pd.DataFrame, *, confidence: float = CONFIDENCE, margin: float | None = None
) -> dict:
    """The test, difference and smallest attainable p-value of one arm's scores against the control's.

    Args:
        arm, control: rows of a scores frame (one dataset), statuses other than ``missing``.
        confidence: the difference interval's two-sided level.
        margin: an equivalence margin m > 0 in the metric's units; None: no equivalence test.

    Returns:
        ``test, n_pairs, diff, diff_low, diff_high, diff_coverage, p_value, p_min`` (arm minus control), and with a
        margin also ``margin`` and ``p_equiv``, the exact TOST p-value of equivalence within ±m (signed-rank
        where paired, rank-sum otherwise, as the difference test).
    """
    paired = paired_values(arm, control)
    n_pairs = len(set(arm["pair"]) & set(control["pair"]))
    if paired is not None:
        differences = paired_difference(*paired)
        shift = hodges_lehmann_paired(differences, confidence=confidence)
        nonzero = int(np.count_nonzero(differences))
        test, p, p_min = PAIRED_TEST, signed_rank_test(differences), min_p_signed_rank(max(nonzero, 1))
        equivalence = signed_rank_tost(differences, margin) if margin is not None else np.nan
    else:
        x, y = arm["value"].to_numpy(dtype=float), control["value"].to_numpy(dtype=float)
        shift = hodges_lehmann_shift(x, y, confidence=confidence)
        test, p, p_min = UNPAIRED_TEST, rank_sum_test(x, y), min_p_rank_sum(x.size, y.size)
        equivalence = rank_sum_tost(x, y, margin) if margin is not None else np.nan
    equivalent = {} if margin is None else {"margin": float(margin), "p_equiv": equivalence}
    return {
        "test": test,
        "n_pairs": n_pairs,
        "diff": shift.estimate,
        "diff_low": shift.low,
        "diff_high": shift.high,
        "diff_coverage": shift.coverage,
        "p_value": p,
        "p_min": p_min,
        **equivalent,
    }


def _blocks(d: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """Seed blocks of one dataset where every arm has a score: index pair key, one column per arm."""
    wide = d.drop_duplicates(["arm", "pair"], keep="last").pivot(index="pair", columns="arm", values="value")
    return wide.reindex(columns=arms).dropna()


def _mean_ranks(blocks: dict[str, pd.DataFrame], arms: list[str], lower: bool, confidence: float) -> dict[str, tuple]:
    """``{arm: (mean rank, low, high, n_blocks)}`` over the blocks of the given datasets (equal weight each)."""
    used = {d: b for d, b in blocks.items() if len(b)}
    if len(arms) < 2 or not used:
        return {}
    ranks = np.vstack([block_ranks(b.to_numpy(dtype=float), lower_is_better=lower) for b in used.values()])
    strata = np.concatenate([[d] * len(b) for d, b in used.items()])
    mean, low, high = mean_rank_interval(ranks, strata, confidence=confidence)
    n_blocks = sum(len(b) for b in used.values())
    return {a: (mean[i], low[i], high[i], n_blocks) for i, a in enumerate(arms)}


def summarize(
    scores: pd.DataFrame,
    metric: str,
    *,
    control: str = names.CONTROL_ARM,
    family: str = CONFIRMATORY,
    higher_is_better: Sequence[str] = (),
    confidence: float = CONFIDENCE,
    margin: float | None = None,
    equivalence_arms: Sequence[str] | None = None,
    order: Sequence[str] = (),
) -> pd.DataFrame:
    """Per dataset × arm statistics of one metric, plus ``dataset == "all"`` rows that are scale-free.

    Args:
        scores: from :func:`metric_scores`.
        metric: the metric's name (for the direction and the censoring rule).
        control: the reference arm for P(improvement), the differences and the tests.
        family: ``confirmatory`` (the declared primary metric) or ``exploratory``; Holm's correction runs over
            the comparisons of this metric either way, but only the confirmatory family carries a verdict.
        higher_is_better: extra metrics to treat as higher-is-better.
        confidence: every interval's two-sided level.
        margin: the metric's equivalence margin m (its units): each arm is also tested for equivalence with the
            control within ±m (:func:`compare_with_control`); None: no equivalence test, ``margin`` and
            ``p_equiv`` stay empty.
        equivalence_arms: the arms that get the equivalence test; None: every arm.
        order: the arms' order after the control (:func:`arm_order`); others follow as they appear.

    Returns:
        One row per (dataset, arm) with :data:`SUMMARY_COLUMNS`; ``p_holm`` is Holm-adjusted over the metric's
        per-dataset comparisons with the control, ``p_equiv_holm`` over its equivalence tests. Rows ``all`` (when
        two or more datasets hold every arm): the mean over datasets of P(improvement) and the mean rank across
        datasets (each dataset weighted equally), both with Newcombe's square-and-add interval, and the pooled
        divergence rate; never a pooled location.
    """
    spec = _Spec(
        metric=metric,
        family=family,
        lower=lower_is_better(metric, higher_is_better),
        control=control,
        confidence=confidence,
        margin=margin,
        equivalence_arms=equivalence_arms,
    )
    used = scores[scores["status"] != "missing"]
    arms = arm_order(used["arm"].unique(), control, order)
    rows, blocks = [], {}
    for dataset in sorted(used["dataset"].unique()):
        d = used[used["dataset"] == dataset]
        present = [a for a in arms if a in set(d["arm"])]
        blocks[dataset] = _blocks(d, present)
        ranks = _mean_ranks({dataset: blocks[dataset]}, present, spec.lower, confidence)
        rows += [_cell_row(d, dataset, arm, ranks.get(arm), spec) for arm in present]
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if not out.empty:
        out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float))
        out["p_equiv_holm"] = holm(out["p_equiv"].to_numpy(dtype=float))
    aggregate = _aggregate_rows(used, out, blocks, metric, family, arms, control, spec.lower, confidence)
    if aggregate:
        out = pd.concat([out, pd.DataFrame(aggregate, columns=SUMMARY_COLUMNS)], ignore_index=True)
    return out


@dataclass(frozen=True)
class _Spec:
    """What :func:`summarize` computes for every cell of one metric (its arguments, the direction resolved)."""

    metric: str
    family: str
    lower: bool
    control: str
    confidence: float
    margin: float | None
    equivalence_arms: Sequence[str] | None


def _cell_row(d: pd.DataFrame, dataset: str, arm: str, rank: tuple | None, spec: _Spec) -> dict:
    """One dataset × arm row of the summary: location, mean rank, divergence, the comparison with the control and,
    for a censored metric, the Kaplan–Meier median. ``d``: the dataset's scores; ``rank``: the arm's mean rank
    ``(mean, low, high, n_blocks)``, None where the dataset has no complete block."""
    cell = d[d["arm"] == arm]
    row = {"metric": spec.metric, "family": spec.family, "lower_is_better": spec.lower, "dataset": dataset, "arm": arm}
    row.update(_location(cell, spec.metric, spec.confidence))
    if rank is not None:
        row["mean_rank"], row["mean_rank_low"], row["mean_rank_high"], row["n_blocks"] = rank
    n_div = int(cell["diverged"].sum())
    row["n_diverged"] = n_div
    row["divergence_rate"], row["divergence_low"], row["divergence_high"] = proportion_ci(
        n_div, len(cell), confidence=spec.confidence
    )
    base = d[d["arm"] == spec.control]
    if arm != spec.control and not base.empty:
        tested = spec.margin is not None and (spec.equivalence_arms is None or arm in spec.equivalence_arms)
        row.update(_against_control(cell, base, spec, margin=spec.margin if tested else None))
    if spec.metric in CENSORED_METRICS:
        row.update(_time_to_target(cell, spec.confidence))
    return row


def _location(cell: pd.DataFrame, metric: str, confidence: float) -> dict:
    """Counts, seeds and the location of the runs that did not take the worst value: mean, median, IQM with its
    interval."""
    located = cell["value"].to_numpy(dtype=float)[(cell["status"] != "worst").to_numpy()]
    row = {
        "n_runs": len(cell),
        "n_finite": int(located.size),
        "n_worst": int((cell["status"] == "worst").sum()),
        "n_censored": int((cell["status"] == "censored").sum()),
        "seeds": ",".join(str(s) for s in sorted(cell["seed"].dropna().astype(int))),
        "mean": float(np.mean(located)) if located.size else np.nan,
        "median": float(np.median(located)) if located.size else np.nan,
        "iqm": float(iqm(located)) if located.size else np.nan,
    }
    low, high = (float(v) for v in iqm_interval(located, confidence=confidence))
    # A t interval of a skewed, non-negative metric can reach below 0; clipping there cannot lose coverage.
    row["iqm_low"], row["iqm_high"] = (max(low, 0.0) if non_negative(metric) else low), high
    return row


def _against_control(cell: pd.DataFrame, base: pd.DataFrame, spec: _Spec, *, margin: float | None) -> dict:
    """P(improvement) over the control with Newcombe's interval, and the test and difference
    (:func:`compare_with_control`)."""
    values, base_values = cell["value"].to_numpy(dtype=float), base["value"].to_numpy(dtype=float)
    poi = float(probability_of_improvement(values, base_values, lower_is_better=spec.lower))
    low, high = newcombe_interval(poi, values.size, base_values.size, confidence=spec.confidence)
    row = {"poi": poi, "poi_low": float(low), "poi_high": float(high)}
    row.update(compare_with_control(cell, base, confidence=spec.confidence, margin=margin))
    return row


def _time_to_target(cell: pd.DataFrame, confidence: float) -> dict:
    """The Kaplan–Meier median of a censored metric (runs not ``ok`` censored at the budget) and the budget."""
    values = cell["value"].to_numpy(dtype=float)
    event = (cell["status"] == "ok").to_numpy()
    times = np.where(event, values, cell["budget"].to_numpy(dtype=float))
    km = kaplan_meier_median(times, event, confidence=confidence)
    budgets = cell["budget"].dropna().unique()
    return {
        "km_median": km.median,
        "km_low": km.low,
        "km_high": km.high,
        "n_reached": km.n_events,
        "budget": float(budgets.max()) if budgets.size else np.nan,
    }


def _aggregate_rows(
    used: pd.DataFrame,
    per_dataset: pd.DataFrame,
    blocks: dict[str, pd.DataFrame],
    metric: str,
    family: str,
    arms: list[str],
    control: str,
    lower: bool,
    confidence: float,
) -> list[dict]:
    by_arm = {a: set(used.loc[used["arm"] == a, "dataset"]) for a in arms}
    shared = sorted(set.intersection(*by_arm.values())) if by_arm else []
    if len(shared) < 2:
        return []
    ranks = _mean_ranks({d: blocks[d][arms] for d in shared}, arms, lower, confidence)
    rows = []
    for arm in arms:
        cells = used[used["dataset"].isin(shared) & (used["arm"] == arm)]
        row: dict = {"metric": metric, "family": family, "lower_is_better": lower, "dataset": ALL_DATASETS}
        row.update(arm=arm, n_runs=len(cells), n_diverged=int(cells["diverged"].sum()))
        row["divergence_rate"], row["divergence_low"], row["divergence_high"] = proportion_ci(
            row["n_diverged"], row["n_runs"], confidence=confidence
        )
        if arm in ranks:
            row["mean_rank"], row["mean_rank_low"], row["mean_rank_high"], row["n_blocks"] = ranks[arm]
        if arm != control and control in by_arm:
            cell = per_dataset[per_dataset["dataset"].isin(shared) & (per_dataset["arm"] == arm)]
            row["poi"], row["poi_low"], row["poi_high"] = mover_mean_interval(
                cell["poi"], cell["poi_low"], cell["poi_high"]
            )
        rows.append(row)
    return rows
