"""Compare influence strategies from an MLflow sweep: statistics, five figures and report.md.

To execute (after a sweep, e.g. ``python -m lstm_influence -m experiment=smoke``)::

    python experiments/compare.py --experiment lstm-influence
    python experiments/compare.py --experiment lstm-influence --sweep-id 20250101-120000 --metric conv/aulc

Writes ``results/<experiment>/report.md``, ``figures/*.png|svg``, ``summary.csv`` and ``runs.csv``, and logs them
as artifacts of the sweep's parent run under ``analysis/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lstm_influence.analysis.load import DEFAULT_TRACKING_URI
from lstm_influence.analysis.pipeline import analyse, default_out_dir, metric_list


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", required=True, help="MLflow experiment name")
    p.add_argument("--sweep-id", default=None, help="sweep_id tag (or parent run id); default: the latest sweep")
    p.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow tracking URI (default: %(default)s)")
    p.add_argument("--out", default=None, help="output folder (default: results/<experiment>/)")
    p.add_argument(
        "--metric",
        nargs="+",
        action="extend",
        default=[],
        metavar="M",
        help="summary metrics to analyse besides test/norm_loss and conv/epochs_to_target",
    )
    p.add_argument("--baseline", default="baseline", help="reference strategy (default: %(default)s)")
    p.add_argument(
        "--higher-is-better",
        nargs="+",
        action="extend",
        default=[],
        metavar="M",
        help="metrics where larger is better (losses, epochs and spikes are lower-is-better)",
    )
    p.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    args = p.parse_args(argv)
    if args.n_resamples < 2:
        p.error(f"--n-resamples must be at least 2, got {args.n_resamples}")
    return args


TUNING_COLUMNS = ["dataset", "strategy", "budget", "trials", "pruned", "best_value", "default_value", "improvement"]


def tuning_summary(tracking_uri: str, experiment: str):
    """The experiment's tuning studies (budget, best and default validation score), or None when it has none."""
    from lstm_influence.tuning_report import tuning_results

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
    try:
        result = analyse(
            args.experiment,
            sweep_id=args.sweep_id,
            tracking_uri=args.tracking_uri,
            out_dir=args.out or default_out_dir(args.experiment),
            metrics=metric_list(args.metric),
            baseline=args.baseline,
            higher_is_better=args.higher_is_better,
            n_resamples=args.n_resamples,
            seed=args.seed,
            log_to_mlflow=not args.no_log,
            tuning=tuning_summary(args.tracking_uri, args.experiment),
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    data = result.data
    print(f"report: {result.report}")
    print(f"runs used: {int(data.runs['included'].sum())}, left out: {int((~data.runs['included']).sum())}")
    if result.logged_to:
        print(
            f"logged to run {result.logged_to} under analysis/; MLflow UI: "
            f"http://127.0.0.1:5000/#/experiments/{data.experiment_id}/runs/{result.logged_to}"
        )
    for message in result.messages:
        print(f"warning: {message}", file=sys.stderr)
    return 1 if data.included.empty else 0


if __name__ == "__main__":
    sys.exit(main())
