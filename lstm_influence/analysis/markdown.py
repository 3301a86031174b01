"""Numbers, intervals and tables as the report writes them: the formatting every report section shares."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd


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


def code(text: Any) -> str:
    """``text`` as inline code."""
    return f"`{text}`"


def when(t: Any) -> str:
    """A timestamp in UTC to the second; ``—`` when there is none."""
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(t, pd.Timestamp) else "—"
