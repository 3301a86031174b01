"""How a report's statistics are computed: the settings every section and the pipeline share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lstm_influence import names
from lstm_influence.metrics import PRIMARY_METRIC

SIGNIFICANCE = 0.05


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
