"""The framework on each Keras backend against the plain Keras script on each backend, per shape, in one run.

For every shape (sequence length T × LSTM units) and each backend (TensorFlow, JAX), a fresh worker process
(``KERAS_BACKEND`` is read once, at import) trains, alternately and on the same adding-task data:

- ``plain``: what a user writes by hand, ``Sequential([Input((T, 2)), LSTM(u), Dense(1)])``, Adam, MSE,
  ``jit_compile=True``;
- ``framework``: the model :func:`lstm_influence.build_model` builds for ``strategy=baseline`` with XLA on (what
  ``train.jit_compile=auto`` gives a long run), trained with the run's epoch monitor (step recorder, gate probe,
  divergence check) attached.

Each trains ``--epochs`` epochs of ``--n-train`` sequences in one ``fit``; the first epoch compiles, and the best
later epoch gives the steady training sequences/s. Both use the threads ``train.threads=auto`` gives the shape
(one thread for all of these). Workers run one at a time, the backends interleaved shape by shape, repeated
``--repeats`` times; the best epoch over the repeats counts. Printed: sequences/s, and ratios of speed
(sequences/s ÷ the plain TensorFlow script's, and framework ÷ plain on the same backend), plus the first epoch's
extra time (compiling) per backend.

Run: ``python benchmarks/backends.py`` (about 15 minutes on 2 cores; ``--units 64`` alone about 6); ``--help`` for
sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BACKENDS = ("tensorflow", "jax")
KINDS = ("plain", "framework")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-lens", nargs="+", type=int, default=[50, 100, 200])
    parser.add_argument("--units", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit: the first compiles")
    parser.add_argument("--rounds", type=int, default=2, help="fits of each kind per worker, alternating")
    parser.add_argument("--repeats", type=int, default=1, help="workers per backend and shape")
    parser.add_argument("--unroll", action="store_true", help="plain script with LSTM(unroll=True) as well")
    parser.add_argument("--worker", nargs=2, type=int, metavar=("T", "UNITS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """Fit plain and framework models alternately at one shape on this process's backend; print JSON results."""
    seq_len, units = args.worker
    import keras

    import lstm_influence as li
    from lstm_influence.training import monitoring
    from lstm_influence.training.backend import apply_threads
    from lstm_influence.training.threads import threads_for

    threads = apply_threads(threads_for(units, 2, args.batch_size))
    cfg = li.compose(
        [
            "dataset=synthetic",
            "dataset.task=adding",
            f"dataset.seq_len={seq_len}",
            f"dataset.n_train={args.n_train}",
            "dataset.n_val=256",
            "dataset.n_test=256",
            f"model.units={units}",
            f"train.batch_size={args.batch_size}",
            f"train.epochs={args.epochs}",
            "train.jit_compile=true",
            "train.verbose=0",
        ]
    )
    data = li.load_dataset(cfg)

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._started)

    def plain(unroll: bool = False) -> tuple[keras.Model, list]:
        keras.utils.set_random_seed(0)
        lstm = keras.layers.LSTM(units, unroll=unroll)
        model = keras.Sequential([keras.Input((seq_len, data.n_features)), lstm, keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=True)
        return model, []

    def framework() -> tuple[keras.Model, list]:
        model = li.build_model(cfg, data)
        return model, [monitoring.monitor_training(model, cfg, data, logger=_NoLogger())]

    makers = {"plain": plain, "framework": framework}
    if args.unroll:
        makers["plain_unroll"] = lambda: plain(unroll=True)
    epochs: dict[str, list[list[float]]] = {kind: [] for kind in makers}
    for _ in range(args.rounds):
        for kind, make in makers.items():
            model, callbacks = make()
            timer = EpochTimer()
            model.fit(
                *data.train, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[*callbacks, timer]
            )
            epochs[kind].append(timer.seconds)
            keras.backend.clear_session()
    print(json.dumps({"backend": keras.backend.backend(), "threads": threads, "epochs": epochs}), flush=True)


class _NoLogger:
    """Stands in for the MLflow run: training speed, not logging, is measured here."""

    def log_metrics(self, metrics, step: int = 0) -> None:
        pass


def run_worker(args: argparse.Namespace, backend: str, seq_len: int, units: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        str(seq_len),
        str(units),
        f"--batch-size={args.batch_size}",
        f"--n-train={args.n_train}",
        f"--epochs={args.epochs}",
        f"--rounds={args.rounds}",
        *(["--unroll"] if args.unroll else []),
    ]
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{backend} worker at T={seq_len}, {units} units failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    from lstm_influence.training.threads import available_cores

    return f"load {os.getloadavg()[0]:.1f} on {available_cores()} cores"


def table_row(shape: tuple[int, int], rate, compiling) -> str:
    """One shape's row: sequences/s of the plain TensorFlow script, then ratios of speed."""
    tf_plain, tf_framework = rate("tensorflow", shape, "plain"), rate("tensorflow", shape, "framework")
    jax_plain, jax_framework = rate("jax", shape, "plain"), rate("jax", shape, "framework")
    faster = "JAX" if jax_framework > tf_framework else "TensorFlow"
    return (
        f"| {shape[0]} | {shape[1]} | {tf_plain:,.0f} | {tf_framework / tf_plain:.2f} | {jax_plain / tf_plain:.2f} "
        f"| {jax_framework / tf_plain:.2f} | {jax_framework / jax_plain:.2f} "
        f"| {compiling('tensorflow', shape, 'framework'):.1f}, {compiling('jax', shape, 'framework'):.1f} "
        f"| {faster} ({max(jax_framework, tf_framework) / min(jax_framework, tf_framework):.2f}×) |"
    )


def main() -> None:
    args = parse_args()
    if args.worker is not None:
        worker(args)
        return
    shapes = [(seq_len, units) for units in args.units for seq_len in args.seq_lens]
    print(
        f"backends: adding task, {args.n_train} training sequences, batch {args.batch_size}, {args.epochs} epochs "
        f"per fit (the first compiles), {args.rounds} fits of each kind per worker, {args.repeats} worker(s) per "
        f"backend and shape; {load()} at the start",
        flush=True,
    )
    # (backend, shape) -> kind -> every fit's epoch seconds
    fits: dict[tuple[str, tuple[int, int]], dict[str, list[list[float]]]] = {}

    def rate(backend: str, shape: tuple[int, int], kind: str) -> float:
        return args.n_train / min(seconds for run in fits[(backend, shape)][kind] for seconds in run[1:])

    def compiling(backend: str, shape: tuple[int, int], kind: str) -> float:
        runs = fits[(backend, shape)][kind]
        return min(run[0] - min(run[1:]) for run in runs)

    header = (
        "| T | units | TF plain seq/s | TF framework ÷ TF plain | JAX plain ÷ TF plain | JAX framework ÷ TF plain "
        "| JAX framework ÷ JAX plain | compiling s (TF, JAX framework) | faster for the framework |"
    )
    print("steady training speed, ratios of sequences/s (above 1: faster than the plain TensorFlow script)\n")
    print(header)
    print("|---" * (header.count("|") - 1) + "|", flush=True)
    for repeat in range(args.repeats):
        for shape in shapes:
            for backend in BACKENDS:
                result = run_worker(args, backend, *shape)
                merged = fits.setdefault((backend, shape), {})
                for kind, runs in result["epochs"].items():
                    merged.setdefault(kind, []).extend(runs)
            if repeat == args.repeats - 1:  # a row as soon as its shape is done: a stopped run keeps what it measured
                print(table_row(shape, rate, compiling), flush=True)
    print(f"  ({load()} at the end)")
    if args.unroll:
        print("\nplain script with LSTM(unroll=True), ÷ the same backend's plain script (scan / while loop)")
        for shape in shapes:
            cells = ", ".join(
                f"{backend} {rate(backend, shape, 'plain_unroll') / rate(backend, shape, 'plain'):.2f} "
                f"(compiling {compiling(backend, shape, 'plain_unroll'):.1f} s)"
                for backend in BACKENDS
            )
            print(f"  T={shape[0]}, {shape[1]} units: {cells}")


if __name__ == "__main__":
    main()
