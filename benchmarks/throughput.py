"""Training throughput of the framework against a hand-written plain Keras ``model.fit``, as ratios.

Everything runs in one process on the same data, model size and batch size. Variants are timed one epoch at a
time, interleaved (A B C ... A B C ...), after one warm-up epoch each (tracing and XLA compilation), and each
variant's throughput is the median over the repetitions, in training sequences per second (the epoch includes
its validation pass, as a user's fit with ``validation_data`` would).

Variants:
    keras_fit           plain ``keras.Sequential([LSTM, Dense]).fit``, Keras defaults (the anchor, ratio 1.00)
    keras_fit_xla       the same with ``jit_compile=True``
    framework_bare      the framework's model and train step, no monitoring and no MLflow
    framework_<name>    the framework's full path for strategy <name>: step recorder, gate probe, divergence
                        checks and one MLflow ``log_batch`` per epoch into a throwaway SQLite store

Ratios above 1 are faster than plain Keras. The monitoring overhead is ``framework_bare / framework_baseline``
(the time cost of monitoring and logging; the target is at most 1.05).

Run: ``python benchmarks/throughput.py`` (about 3-5 minutes on 2 cores); ``--help`` for sizes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STRATEGIES = ("baseline", "custom_init", "input_transform", "bias_init", "extra_variable")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=2048)
    parser.add_argument("--n-val", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per variant (median reported)")
    parser.add_argument("--strategies", nargs="*", default=list(STRATEGIES))
    parser.add_argument("--skip-startup", action="store_true", help="skip the start-up timings")
    return parser.parse_args()


def overrides(args: argparse.Namespace, strategy: str, uri: str) -> list[str]:
    return [
        f"strategy={strategy}",
        "dataset=synthetic",
        "dataset.task=adding",
        f"dataset.seq_len={args.seq_len}",
        f"dataset.n_train={args.n_train}",
        f"dataset.n_val={args.n_val}",
        f"dataset.n_test={args.n_val}",
        f"model.units={args.units}",
        f"train.batch_size={args.batch_size}",
        "train.verbose=0",
        f"tracking.uri={uri}",
        "tracking.experiment=benchmark",
    ]


class Variant:
    """One way of training: ``epoch()`` runs one epoch of fit and returns its wall time."""

    def __init__(self, name: str, model, fit_kwargs: dict, callbacks: list | None = None):
        self.name = name
        self.model = model
        self.fit_kwargs = fit_kwargs
        self.callbacks = callbacks or []
        self.times: list[float] = []

    def epoch(self) -> float:
        start = time.perf_counter()
        self.model.fit(**self.fit_kwargs, epochs=1, verbose=0, callbacks=self.callbacks)
        return time.perf_counter() - start


def build_variants(args: argparse.Namespace, store: str) -> list[Variant]:
    import keras

    import lstm_influence as li
    from lstm_influence import tracking
    from lstm_influence.model import StepRecorder, build_model, strategy_for
    from lstm_influence.runner import EpochMonitor, GateProbe

    base_cfg = li.compose(overrides(args, "baseline", store))
    data = li.load_dataset(base_cfg)
    fit_kwargs = {
        "x": data.train[0],
        "y": data.train[1],
        "validation_data": data.val,
        "batch_size": args.batch_size,
        "shuffle": True,
    }
    variants: list[Variant] = []

    for name, jit in (("keras_fit", "auto"), ("keras_fit_xla", True)):
        keras.utils.set_random_seed(0)
        plain = keras.Sequential(
            [keras.Input((data.seq_len, data.n_features)), keras.layers.LSTM(args.units), keras.layers.Dense(1)]
        )
        plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit)
        variants.append(Variant(name, plain, fit_kwargs))

    bare = build_model(base_cfg, data)
    variants.append(Variant("framework_bare", bare, fit_kwargs))

    client = tracking.make_client(store)
    experiment_id = tracking.get_or_create_experiment(client, "benchmark")
    for strategy_name in args.strategies:
        cfg = li.compose(overrides(args, strategy_name, store))
        strategy = strategy_for(cfg, data)
        model = build_model(cfg, data, strategy)
        recorder = StepRecorder(-(-len(data.train[0]) // args.batch_size))
        model.attach_recorder(recorder, clip_norm=cfg.train.clip_norm)
        run = client.create_run(experiment_id, run_name=f"bench-{strategy_name}")
        logger = tracking.RunLogger(client, run.info.run_id, experiment_id, store)
        probe = GateProbe(model, data.val[0][: cfg.train.gate_probe_batch])
        monitor = EpochMonitor(cfg, data, recorder, probe, logger)
        variants.append(Variant(f"framework_{strategy_name}", model, fit_kwargs, [monitor]))
    return variants


def startup_timings() -> dict[str, float]:
    """Wall seconds of CLI commands in a fresh process: --help, and a one-step training run end to end."""
    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        commands = {
            "python -m lstm_influence --help": [sys.executable, "-m", "lstm_influence", "--help"],
            "import lstm_influence": [sys.executable, "-c", "import lstm_influence"],
            "one-step run, command to finish": [
                sys.executable,
                "-m",
                "lstm_influence",
                "train.epochs=1",
                "dataset.n_train=64",
                "dataset.n_val=64",
                "dataset.n_test=64",
                "train.verbose=0",
            ],
        }
        for label, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=folder, check=True, capture_output=True)
            timings[label] = time.perf_counter() - start
    return timings


def main() -> None:
    args = parse_args()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, TF {tf.__version__}")
    if not gpus:
        print("GPU: none found; the cuDNN-kernel check runs only on a GPU machine and is skipped here.")
    print(
        f"workload: adding task T={args.seq_len}, {args.units} units, batch {args.batch_size}, "
        f"{args.n_train} train + {args.n_val} val sequences per epoch; median of {args.repeats} epochs\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{os.path.join(folder, 'bench.db')}"
        variants = build_variants(args, store)
        for variant in variants:  # warm-up: tracing and XLA compilation
            variant.epoch()
        for _ in range(args.repeats):
            for variant in variants:
                variant.times.append(variant.epoch())

    throughput = {v.name: args.n_train / statistics.median(v.times) for v in variants}
    anchor = throughput["keras_fit"]
    print(f"{'variant':<28}{'seq/s':>10}{'vs keras_fit':>14}{'spread (min-max s)':>22}")
    for variant in variants:
        spread = f"{min(variant.times):.3f}-{max(variant.times):.3f}"
        rate = throughput[variant.name]
        print(f"{variant.name:<28}{rate:>10.0f}{rate / anchor:>13.2f}x{spread:>22}")

    print()
    if "framework_baseline" in throughput:
        overhead = throughput["framework_bare"] / throughput["framework_baseline"]
        print(f"monitoring + MLflow logging overhead (bare / monitored time ratio): {overhead:.3f}x  (target <= 1.05)")
        for name in args.strategies:
            key = f"framework_{name}"
            if key in throughput and name != "baseline":
                ratio = throughput["framework_baseline"] / throughput[key]
                print(f"{name:<16} time vs baseline strategy: {ratio:.3f}x  (target <= 1.10)")
    if not args.skip_startup:
        print()
        for label, seconds in startup_timings().items():
            print(f"start-up: {label:<36}{seconds:>7.2f} s")


if __name__ == "__main__":
    main()
