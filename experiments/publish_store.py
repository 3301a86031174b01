"""Make a SQLite MLflow store shippable: its artifact locations become paths relative to the repository root.

To execute, from the repository root, after the sweep and its report (run it again after resuming a sweep)::

    python experiments/publish_store.py results/long-range/mlflow.db

Then, from the root of any clone: ``mlflow ui --backend-store-uri sqlite:///results/long-range/mlflow.db`` shows
every run with its artifacts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lstm_influence import tracking


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stores", nargs="+", type=Path, metavar="DB", help="SQLite store files (e.g. results/x/mlflow.db)")
    p.add_argument("--root", type=Path, default=Path.cwd(), help="the folder the stores are opened from (default: .)")
    args = p.parse_args(argv)
    for store in args.stores:
        try:
            changed = tracking.relative_artifact_locations(store, args.root)
        except tracking.StoreError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{store}: {changed} artifact locations made relative to {args.root.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
