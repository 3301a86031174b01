"""Compare influence arms from an MLflow sweep, or rebuild a report from its shipped files.

To execute (after a sweep, e.g. ``python -m lstm_influence -m experiment=smoke``)::

    python experiments/compare.py --experiment lstm-influence
    python experiments/compare.py --experiment lstm-influence --sweep-id ID --metric conv/aulc --control baseline
    python experiments/compare.py --from results/compare --out /tmp/rebuilt      # no MLflow needed
    python experiments/compare.py --experiment my-study --preset my_study        # the analysis declared in advance
    python experiments/compare.py --experiment lr-control --margin test/norm_loss=0.01   # ad hoc equivalence

Writes ``report.md``, ``summary.csv``, ``environment.txt``, ``runs.csv``, ``history.csv`` and ``figures/*.png|svg`` into
``results/<experiment>/`` (or ``--out``), and logs them as artifacts of the sweep's parent run under ``analysis/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import pandas as pd

from lstm_influence import names, tracking
from lstm_influence.analysis.declaration import load_declaration, parse_margin
from lstm_influence.analysis.load import DEFAULT_TRACKING_URI
from lstm_influence.analysis.pipeline import analyse, analyse_files, default_out_dir
from lstm_influence.metrics import EPOCHS_TO_TARGET, PRIMARY_METRIC


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--experiment", help="MLflow experiment name")
    source.add_argument(
        "--from",
        dest="from_dir",
        metavar="DIR",
        help="rebuild from a report folder's runs.csv and history.csv (no MLflow); needs --out",
    )
    p.add_argument("--sweep-id", default=None, help="sweep_id tag (or parent run id); default: the latest sweep")
    p.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow tracking URI (default: %(default)s)")
    p.add_argument("--out", default=None, help="output folder (default: results/<experiment>/)")
    p.add_argument(
        "--primary",
        default=None,
        metavar="M",
        help=f"the confirmatory metric, Holm-corrected over its comparisons (default: the preset's, else "
        f"{PRIMARY_METRIC})",
    )
    p.add_argument(
        "--metric",
        nargs="+",
        action="extend",
        default=[],
        metavar="M",
        help=f"exploratory metrics to analyse besides the primary one and {EPOCHS_TO_TARGET}",
    )
    p.add_argument(
        "--control", default=None, help=f"the reference arm (default: the preset's, else {names.CONTROL_ARM})"
    )
    p.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help="read the analysis declared in conf/analysis/NAME.yaml (or a YAML file): primary metric, control, "
        "metrics and equivalence margins; flags given here win",
    )
    p.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="test each arm for equivalence with the control within ±VALUE on METRIC (exact paired TOST; "
        "ad hoc, so exploratory); repeatable",
    )
    p.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    args = p.parse_args(argv)
    if args.from_dir is not None and args.out is None:
        p.error("--from needs --out (a report is never rebuilt over its own files)")
    try:
        args.margins = dict(parse_margin(text) for text in args.margin)
    except ValueError as err:
        p.error(str(err))
    return args


TUNING_COLUMNS = [
    "dataset",
    "strategy",
    "sampler",
    "budget",
    "trials",
    "search_trials",
    "pruned",
    "searched",
    "best_value",
    "default_value",
    "improvement",
]
#: The report's column that says whether a study's best values were searched for, and its words.
VERDICT_COLUMN = "best values"
TUNED = "tuned"
ONE_DRAW = "not searched: one draw"
DEFAULT_ONLY = "not searched: default only"
UNRECORDED = "unrecorded"


def tuning_verdict(searched: bool, search_trials) -> str:
    """What a study's best values are: ``tuned`` only when the study searched (two or more search trials).

    Args:
        searched: the study's ``searched`` flag.
        search_trials: its finished trials besides the default configuration; missing for studies run before it
            was recorded.
    """
    if searched:
        return TUNED
    if pd.isna(search_trials):
        return UNRECORDED
    return DEFAULT_ONLY if int(search_trials) == 0 else ONE_DRAW


def tuning_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The tuning table as the report shows it: :data:`TUNING_COLUMNS`, the verdict, then per-parameter columns.

    Args:
        frame: one row per study, from :func:`lstm_influence.analysis.tuning_report.tuning_table`.

    Returns:
        The columns of :data:`TUNING_COLUMNS` that ``frame`` has, :data:`VERDICT_COLUMN` (``tuned``, ``not
        searched: one draw``, ``not searched: default only`` or ``unrecorded``), then ``best.<name>`` (the best
        values) and ``tried.<name>`` (how many distinct values the finished trials ran with).
    """
    view = frame[[c for c in TUNING_COLUMNS if c in frame.columns]].copy()
    view[VERDICT_COLUMN] = [
        tuning_verdict(bool(searched), trials)
        for searched, trials in zip(frame["searched"], frame["search_trials"], strict=True)
    ]
    per_parameter = [c for c in frame.columns if c.startswith("best.")]
    per_parameter += [c for c in frame.columns if c.startswith("tried.")]
    return pd.concat([view, frame[per_parameter]], axis=1)


def tuning_summary(tracking_uri: str, experiment: str) -> pd.DataFrame | None:
    """The experiment's tuning studies as :func:`tuning_view` shows them, or None without any."""
    from lstm_influence.analysis.tuning_report import tuning_results

    try:
        frame = tuning_results(tracking_uri, experiment)
    except Exception:  # an unknown experiment is reported by analyse() itself, with the valid names
        return None
    if frame.empty:
        return None
    return tuning_view(frame)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        settings = {
            "metrics": args.metric,
            "primary": args.primary,
            "control": args.control,
            "margins": args.margins,
            "declaration": load_declaration(args.preset) if args.preset else None,
        }
        if args.from_dir is not None:
            result = analyse_files(args.from_dir, out_dir=args.out, **settings)
        else:
            result = analyse(
                args.experiment,
                sweep_id=args.sweep_id,
                tracking_uri=args.tracking_uri,
                out_dir=args.out or default_out_dir(args.experiment),
                log_to_mlflow=not args.no_log,
                tuning=tuning_summary(args.tracking_uri, args.experiment),
                **settings,
            )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    data = result.data
    print(f"report: {result.report} ({time.perf_counter() - started:.1f} s)")
    print(f"runs used: {int(data.runs['included'].sum())}, left out: {int((~data.runs['included']).sum())}")
    if result.logged_to:
        link = tracking.ui_link(args.tracking_uri, data.experiment_id, result.logged_to)
        print(f"logged to run {result.logged_to} under analysis/; MLflow UI: {link}")
    for message in result.messages:
        print(f"warning: {message}", file=sys.stderr)
    return 1 if data.included.empty else 0


if __name__ == "__main__":
    sys.exit(main())
