"""One style per arm across a report's figures (Paul Tol's muted colours, a marker, a line style; the control
in black) and arm names wrapped for the axes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lstm_influence import names
from lstm_influence.analysis.summaries import arm_order

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
    distinct in greyscale; colour adds to that. Pass the arms in the report's order (``arm_order``) to match
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


def styles_for(styles: dict | None, present: Sequence[str], control: str) -> dict[str, dict]:
    """The given styles restricted to ``present`` (in the styles' order), or fresh ones for ``present``."""
    if styles is None:
        return arm_styles(arm_order(list(present), control), control)
    present = set(present)
    missing = [a for a in arm_order(list(present), control) if a not in styles]
    full = {**styles, **arm_styles([*styles, *missing], control)} if missing else styles
    return {a: st for a, st in full.items() if a in present}
