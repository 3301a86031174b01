"""What an analysis writes: figure files, text files, ``summary.csv`` and the MLflow artifacts.

The only module of the analysis's output that touches the file system or MLflow. ``summary.csv`` is a public file
whose readers find the arm in a column named ``strategy``, so :func:`summary_csv` names it so
(:data:`SUMMARY_FILE_COLUMNS`); inside the analysis the frames call it ``arm``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from lstm_influence import tracking

FIGURE_FORMATS = ("png", "svg")
ARTIFACT_PATH = "analysis"
SUMMARY_FILE = "summary.csv"
#: The summary frames' columns that ``summary.csv`` names differently: readers of the file expect ``strategy``.
SUMMARY_FILE_COLUMNS = {"arm": "strategy"}


def summary_csv(summaries: Iterable[pd.DataFrame]) -> str:
    """``summary.csv``: every metric's summary frame, one after the other, with the file's column names."""
    frame = pd.concat(list(summaries)).rename(columns=SUMMARY_FILE_COLUMNS)
    return frame.to_csv(index=False, lineterminator="\n")


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
