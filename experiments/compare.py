"""Compare influence arms from an MLflow sweep, or rebuild a report from its shipped files.

To execute (after a sweep, e.g. ``python -m lstm_influence -m experiment=smoke``)::

    python experiments/compare.py --experiment lstm-influence
    python experiments/compare.py --experiment lstm-influence --sweep-id ID --metric conv/aulc --control baseline
    python experiments/compare.py --from results/compare --out /tmp/rebuilt      # no MLflow needed

Writes ``report.md``, ``summary.csv``, ``runs.csv``, ``history.csv`` and ``figures/*.png|svg`` into
``results/<experiment>/`` (or ``--out``), and logs them as artifacts of the sweep's parent run under ``analysis/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from lstm_influence import tracking
from lstm_influence.analysis.load import DEFAULT_TRACKING_URI
from lstm_influence.analysis.pipeline import analyse, analyse_files, default_out_dir
from lstm_influence.tracking import names


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
        default=names.PRIMARY_METRIC,
        metavar="M",
        help="the confirmatory metric, Holm-corrected over its comparisons (default: %(default)s)",
    )
    p.add_argument(
        "--metric",
        nargs="+",
        action="extend",
        default=[],
        metavar="M",
        help=f"exploratory metrics to analyse besides the primary one and {names.EPOCHS_TO_TARGET}",
    )
    p.add_argument("--control", default=names.CONTROL_ARM, help="the reference arm (default: %(default)s)")
    p.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    args = p.parse_args(argv)
    if args.n_resamples < 2:
        p.error(f"--n-resamples must be at least 2, got {args.n_resamples}")
    if args.from_dir is not None and args.out is None:
        p.error("--from needs --out (a report is never rebuilt over its own files)")
    return args


TUNING_COLUMNS = [
    "dataset",
    "strategy",
    "sampler",
    "budget",
    "trials",
    "pruned",
    "searched",
    "best_value",
    "default_value",
    "improvement",
]


def tuning_summary(tracking_uri: str, experiment: str):
    """The experiment's tuning studies (sampler, budget, best and default validation score), or None without any."""
    from lstm_influence.analysis.tuning_report import tuning_results

    try:
        frame = tuning_results(tracking_uri, experiment)
    except Exception:  # an unknown experiment is reported by analyse() itself, with the valid names
        return None
    if frame.empty:
        return None
    best_values = [column for column in frame.columns if column.startswith("best.")]
    return frame[[c for c in TUNING_COLUMNS if c in frame.columns] + best_values]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {
        "metrics": args.metric,
        "primary": args.primary,
        "control": args.control,
        "n_resamples": args.n_resamples,
        "seed": args.seed,
    }
    started = time.perf_counter()
    try:
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
