"""Wall time of whole sweep presets, with the joblib launcher (parallel) and the basic one (one job at a time).

Each sweep runs in a fresh temporary folder (its own ``mlflow.db``), so nothing is skipped by resume and the
timing is of the full grid. The script prints one line per preset × launcher, the parallel speed-up, and the
machine's load average (on a shared machine, compare ratios measured in one run of the script).

    python benchmarks/sweep_cost.py                           # experiment=smoke, both launchers (a few minutes)
    python benchmarks/sweep_cost.py --presets smoke compare   # compare takes about an hour with joblib on 2 cores
    python benchmarks/sweep_cost.py --launchers joblib        # one launcher only
    python benchmarks/sweep_cost.py --launchers joblib --against train.jit_compile=true
        # also the same sweeps with these overrides, alternating with the plain ones: the ratio of the two
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

LAUNCHERS = ("joblib", "basic")


def sweep_seconds(preset: str, launcher: str, extra: list[str]) -> tuple[float, int]:
    """Run ``-m experiment=<preset>`` with ``launcher`` in a fresh folder; return (wall seconds, exit code)."""
    with tempfile.TemporaryDirectory(prefix=f"sweep-{preset}-{launcher}-") as folder:
        command = [
            sys.executable,
            "-m",
            "lstm_influence",
            "-m",
            f"experiment={preset}",
            f"hydra/launcher={launcher}",
            *extra,
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        start = time.perf_counter()
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
        return elapsed, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["smoke"], help="experiment presets to time")
    parser.add_argument("--launchers", nargs="+", default=list(LAUNCHERS), choices=LAUNCHERS)
    parser.add_argument(
        "--against", nargs="+", default=[], metavar="OVERRIDE", help="also time each sweep with these overrides"
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every sweep")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    failed = 0
    for preset in args.presets:
        timings = {}
        for launcher in args.launchers:
            variants = {"": args.overrides}
            if args.against:
                variants[" ".join(args.against)] = [*args.overrides, *args.against]
            seconds = {}
            for label, overrides in variants.items():
                started = os.getloadavg()[0]
                seconds[label], code = sweep_seconds(preset, launcher, overrides)
                status = "ok" if code == 0 else f"FAILED (exit {code})"
                failed += code != 0
                print(
                    f"experiment={preset:<10} hydra/launcher={launcher:<8} {label:<24} {seconds[label]:7.1f} s  "
                    f"{status}  (load {started:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)",
                    flush=True,
                )
            timings[launcher] = seconds[""]
            if args.against:
                ratio = seconds[""] / seconds[" ".join(args.against)]
                print(
                    f"experiment={preset:<10} hydra/launcher={launcher:<8} plain / with {' '.join(args.against)}: "
                    f"{ratio:.2f}x"
                )
        if {"joblib", "basic"} <= timings.keys():
            print(f"experiment={preset:<10} joblib speed-up over basic: {timings['basic'] / timings['joblib']:.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
