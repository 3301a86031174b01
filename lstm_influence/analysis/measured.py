"""The simulations a report quotes, run at the sample sizes its own cells have, before any text is written.

The report states how well its intervals cover and how large its equivalence tests are at the numbers of seeds its
cells have (:mod:`~lstm_influence.analysis.coverage`). :func:`measure` finds those sizes in the summaries and rates
and runs the simulations once; the sections then only format what :class:`Measured` holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from lstm_influence.analysis.coverage import equivalence_size, interval_coverage, rate_coverage
from lstm_influence.analysis.settings import ReportSettings
from lstm_influence.analysis.summaries import ALL_DATASETS, PAIRED_TEST

#: Below this many seeds no interval reaches its nominal level exactly, so the report quotes the measured one.
FEW_SEEDS = 10


@dataclass(frozen=True)
class Measured:
    """Simulated and exact properties of the report's methods at its cells' sample sizes.

    Attributes:
        interval_coverage: ``{n: {method: coverage}}`` for every n from 2 to 9 that a cell, its pairs or its seed
            blocks have (:func:`~lstm_influence.analysis.coverage.interval_coverage`).
        equivalence_size: ``{("paired" | "unpaired", n): size}`` of the TOST at each equivalence-tested cell's
            pairs (or runs, unpaired) (:func:`~lstm_influence.analysis.coverage.equivalence_size`).
        rate_coverage: ``{n runs: the smallest exact coverage of the rate interval over the true rates}``
            (:func:`~lstm_influence.analysis.coverage.rate_coverage`).
    """

    interval_coverage: dict[int, dict[str, float]] = field(default_factory=dict)
    equivalence_size: dict[tuple[str, int], float] = field(default_factory=dict)
    rate_coverage: dict[int, float] = field(default_factory=dict)


def coverage_sizes(summaries: dict[str, pd.DataFrame]) -> list[int]:
    """The sample sizes below :data:`FEW_SEEDS` (at least 2) of the per-dataset cells: runs with a finite value,
    pairs, and seed blocks of the mean rank."""
    sizes: set[int] = set()
    for summary in summaries.values():
        cells = summary[summary["dataset"] != ALL_DATASETS]
        sizes |= {int(n) for n in cells["n_finite"].dropna() if 2 <= n < FEW_SEEDS}
        sizes |= {int(n) for n in cells["n_pairs"].dropna() if 2 <= n < FEW_SEEDS}
        if "n_blocks" in summary:
            sizes |= {int(n) for n in summary["n_blocks"].dropna() if 2 <= n < FEW_SEEDS}
    return sorted(sizes)


def equivalence_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of one metric's summary that carry an equivalence test."""
    if "p_equiv" not in summary:
        return summary.iloc[0:0]
    return summary[summary["p_equiv"].notna()]


def equivalence_design(row: pd.Series) -> tuple[str, int]:
    """``("paired", pairs)`` or ``("unpaired", runs)``: the design whose size the report quotes for this row."""
    paired = row["test"] == PAIRED_TEST
    return ("paired", int(row["n_pairs"])) if paired else ("unpaired", int(row["n_runs"]))


def _equivalence_sizes(summaries: Iterable[pd.DataFrame], alpha: float) -> dict[tuple[str, int], float]:
    sizes: dict[tuple[str, int], float] = {}
    for summary in summaries:
        for _, row in equivalence_cells(summary).iterrows():
            test, n = key = equivalence_design(row)
            if key not in sizes:
                sizes[key] = equivalence_size(n, alpha=alpha, tests=(test,))[test]
    return sizes


def measure(summaries: dict[str, pd.DataFrame], rates: pd.DataFrame | None, settings: ReportSettings) -> Measured:
    """Run every simulation the report quotes, at the sizes of ``summaries`` and ``rates``."""
    intervals = {n: interval_coverage(n, confidence=settings.confidence) for n in coverage_sizes(summaries)}
    rate_sizes = sorted({int(n) for n in rates["n_runs"]}) if rates is not None and not rates.empty else []
    rate_floor = {n: float(rate_coverage(n, confidence=settings.confidence)[1].min()) for n in rate_sizes}
    return Measured(intervals, _equivalence_sizes(summaries.values(), settings.alpha), rate_floor)
