"""Solved rates per dataset × arm: the share of runs that reached the target, each arm against the control.

Pure: the scores frame of ``conv/epochs_to_target`` (:func:`~lstm_influence.analysis.summaries.metric_scores`) in,
a tidy frame out. A run that never reached the target counts as unsolved; a diverged run too. Paired arms are
compared with the exact McNemar test, unpaired ones with Fisher's exact test, and each rate has its Clopper–Pearson
interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from lstm_influence import names
from lstm_influence.analysis.estimators import (
    CONFIDENCE,
    holm,
    mcnemar_exact,
    min_p_mcnemar,
    min_p_rank_sum,
    proportion_ci,
)
from lstm_influence.analysis.summaries import arm_order, paired_values

#: What the ``test`` column says produced ``p_value``.
PAIRED_RATE_TEST = "McNemar exact"
UNPAIRED_RATE_TEST = "Fisher exact"

RATE_COLUMNS = [
    "dataset",
    "arm",
    "n_runs",
    "n_solved",
    "rate",
    "rate_low",
    "rate_high",
    "test",
    "n_pairs",
    "arm_only",
    "control_only",
    "p_value",
    "p_min",
    "p_holm",
]


def solved_rates(
    scores: pd.DataFrame,
    *,
    control: str = names.CONTROL_ARM,
    confidence: float = CONFIDENCE,
    order: Sequence[str] = (),
) -> pd.DataFrame:
    """Per dataset × arm: how many runs solved the task (reached the target), and each arm against the control.

    A run solved the task when its ``conv/epochs_to_target`` is a number (status ``ok``); a run that never reached
    the target (``censored``) or diverged (``worst``) did not. Runs that logged neither are left out.

    Args:
        scores: :func:`metric_scores` of ``conv/epochs_to_target``.
        control: the reference arm.
        confidence: the rate intervals' two-sided level.
        order: the arms' order after the control (:func:`arm_order`); others follow as they appear.

    Returns:
        :data:`RATE_COLUMNS`, one row per dataset × arm in :func:`arm_order`: ``n_solved`` of ``n_runs`` with
        the Clopper–Pearson interval; against the control, paired by seed: the exact McNemar test on the pairs
        only one of the two solved (``arm_only``, ``control_only``), or Fisher's exact test where some run has no
        partner; ``p_min`` the smallest p the design allows, ``p_holm`` Holm-adjusted over every comparison here.
    """
    used = scores[scores["status"] != "missing"]
    arms = arm_order(used["arm"].unique(), control, order)
    rows = []
    for dataset in sorted(used["dataset"].unique()):
        d = used[used["dataset"] == dataset]
        base = d[d["arm"] == control]
        for arm in (a for a in arms if a in set(d["arm"])):
            cell = d[d["arm"] == arm]
            solved = int((cell["status"] == "ok").sum())
            rate, low, high = proportion_ci(solved, len(cell), confidence=confidence)
            row = {"dataset": dataset, "arm": arm, "n_runs": len(cell), "n_solved": solved}
            row.update(rate=rate, rate_low=low, rate_high=high)
            if arm != control and not base.empty:
                row.update(_compare_rates(cell, base))
            rows.append(row)
    out = pd.DataFrame(rows, columns=RATE_COLUMNS)
    if not out.empty:
        out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float))
    return out


def _compare_rates(arm: pd.DataFrame, control: pd.DataFrame) -> dict:
    """The exact test of one arm's solved runs against the control's (McNemar when paired, else Fisher)."""
    solved_arm = arm.assign(value=(arm["status"] == "ok").astype(float))
    solved_control = control.assign(value=(control["status"] == "ok").astype(float))
    paired = paired_values(solved_arm, solved_control)
    if paired is not None:
        a, c = paired
        arm_only, control_only = int(np.sum((a == 1) & (c == 0))), int(np.sum((a == 0) & (c == 1)))
        n_pairs = a.size
        return {
            "test": PAIRED_RATE_TEST,
            "n_pairs": n_pairs,
            "arm_only": arm_only,
            "control_only": control_only,
            "p_value": mcnemar_exact(arm_only, control_only),
            "p_min": min_p_mcnemar(n_pairs),
        }
    k_arm, k_control = int(solved_arm["value"].sum()), int(solved_control["value"].sum())
    table = [[k_arm, len(arm) - k_arm], [k_control, len(control) - k_control]]
    return {
        "test": UNPAIRED_RATE_TEST,
        "n_pairs": len(set(arm["pair"]) & set(control["pair"])),
        "p_value": float(stats.fisher_exact(table).pvalue),
        # complete separation (every run of one arm solved, none of the other): the rank-sum test's bound
        "p_min": min_p_rank_sum(len(arm), len(control)),
    }


# --------------------------------------------------------------------------------------------- references
