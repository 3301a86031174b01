"""A whole run of the framework against the same work as a plain Keras script, and the machine's sgemm roofline.

Workload (the default): the adding task, T = 100, 2 input features, a 64-unit LSTM, 5,000 training sequences,
1,000 validation and 1,000 test sequences, batch 128, 4 epochs, validation after each epoch, test at the end.

Sections, all measured in this run:

1. sgemm: numpy float32 matrix products (2048²), GFLOP/s on one core and on all cores: the roofline.
2. Whole run, in this process, interleaved: ``plain`` (build, ``fit`` with ``validation_data``, ``evaluate``, Keras
   defaults) against ``lstm_influence.run`` (validation, monitoring, MLflow logging into a SQLite store that already
   exists). The ratio framework ÷ plain is the one to keep at or below 1.0.
3. Fixed costs of one framework run, timed by part: everything a run spends besides its steady epochs, by part,
   and the store set-up (a fresh ``mlflow.db``) measured on its own.
4. Throughput in worker processes: training sequences/s of a steady epoch of the model a run trains, with its
   epoch monitor, the XLA setting ``train.jit_compile=auto`` gives the workload, and ``train.threads=auto``'s
   threads; for one run and for a 2-job sweep (two processes at once), as a share of the all-core sgemm roofline.
   Epochs are timed inside one ``fit`` (1 compiling epoch, then 3 timed), as a run's epochs are. Each process also
   reports the same model with XLA forced on, the best a steady epoch gets here. An LSTM sequence costs
   ``3 · 2 · T · 4u(u + d)`` FLOPs (forward matrix products, backward twice that).
5. ``--threads-scan``: sequences/s with 1 and with all intra-op threads per LSTM size: the numbers behind the
   ``train.threads=auto`` rule.
6. ``--jit-scan``: whole runs with ``train.jit_compile`` false and true, interleaved, per batch size: XLA's extra
   fixed cost, its saving per training sequence-step, and the break-even behind ``train.jit_compile=auto``.

The machine's load average is printed beside every section: on a shared machine compare the ratios measured in
one run of the script, not absolute figures from different runs.

Run: ``python benchmarks/throughput.py`` (about 3 minutes on 2 cores); ``--help`` for sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGETS = {"whole run vs plain": 1.0, "single run roofline": 0.35, "2-job sweep roofline": 0.50}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-eval", type=int, default=1000, help="validation and test sequences each")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="whole runs of each kind (median reported)")
    parser.add_argument("--threads-scan", nargs="*", type=int, metavar="UNITS", help="e.g. 16 64 256")
    parser.add_argument("--jit-scan", nargs="*", type=int, metavar="BATCH", help="e.g. 64 128")
    parser.add_argument("--only-scans", action="store_true", help="skip sections 2-4")
    parser.add_argument("--no-workers", action="store_true", help="skip section 4 (throughput in worker processes)")
    parser.add_argument("--worker", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    parser.add_argument("--worker-jit", default="auto,true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def overrides(args: argparse.Namespace, uri: str, *extra: str) -> list[str]:
    return [
        "dataset=synthetic",
        "dataset.task=adding",
        f"dataset.seq_len={args.seq_len}",
        f"dataset.n_train={args.n_train}",
        f"dataset.n_val={args.n_eval}",
        f"dataset.n_test={args.n_eval}",
        f"model.units={args.units}",
        f"train.batch_size={args.batch_size}",
        f"train.epochs={args.epochs}",
        "train.verbose=0",
        f"tracking.uri={uri}",
        "tracking.experiment=benchmark",
        *extra,
    ]


def flops_per_sequence(seq_len: int, units: int, input_dim: int) -> float:
    """Forward gate matrix products ``2 · T · 4u(u + d)``, times 3 for forward plus backward."""
    return 3 * 2 * seq_len * 4 * units * (units + input_dim)


def sgemm_gflops(threads: int | None, size: int = 2048, repeats: int = 5) -> float:
    """numpy float32 matrix-product speed, limited to ``threads`` BLAS threads (None: the library's default)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# -- whole runs ------------------------------------------------------------------------------------------------


def plain_keras_run(data, args: argparse.Namespace) -> float:
    """What a user writes by hand: build, fit with validation each epoch, test. Returns wall seconds."""
    import keras

    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((data.seq_len, data.n_features)), keras.layers.LSTM(args.units), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(*data.train, validation_data=data.val, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    model.evaluate(*data.test, batch_size=args.batch_size, verbose=0)
    return time.perf_counter() - start


def framework_run(args: argparse.Namespace, uri: str, *extra: str) -> float:
    return timed_framework_run(args, uri, *extra)[0]


def timed_framework_run(args: argparse.Namespace, uri: str, *extra: str) -> tuple[float, str]:
    """One ``lstm_influence.run`` of the workload (plus ``extra`` overrides): its wall seconds and run id."""
    import lstm_influence as li

    start = time.perf_counter()
    summary = li.run(li.compose(overrides(args, uri, *extra)))
    return time.perf_counter() - start, summary["run_id"]


def timed_parts(args: argparse.Namespace, uri: str) -> tuple[dict[str, float], float]:
    """One framework run with wall-clock timers around its parts: seconds per part, and the run's wall time.

    Timers wrap the functions themselves (no profiler, whose per-call overhead would inflate the many small calls
    of the gate probe and MLflow logging). Parts overlap: ``fit`` holds the validations and the gate probe.
    """
    import keras
    from mlflow.tracking import MlflowClient

    import lstm_influence.training.runner as runner

    probe_class = getattr(runner, "GateProbe", None)  # where the gate probe lived before the monitoring module
    if probe_class is None:
        from lstm_influence.training.monitoring import GateProbe as probe_class
    targets = {
        "data load": [(runner, "load_valid")],
        "model build": [(runner, "build_model")],
        "evaluations (before, validation, test)": [(keras.Model, "evaluate")],
        "gate probe (all epochs)": [(probe_class, "__call__")],
        "MLflow calls": [
            (MlflowClient, name) for name in ("create_run", "log_batch", "log_text", "set_terminated", "set_tag")
        ],
        "clear_session": [(keras.backend, "clear_session")],
        "fit (training + validation)": [(keras.Model, "fit")],
    }
    seconds = dict.fromkeys(targets, 0.0)
    originals = []
    for part, places in targets.items():
        for owner, name in places:
            original = getattr(owner, name)
            originals.append((owner, name, original))
            setattr(owner, name, _timer(original, part, seconds))
    try:
        wall = _timed(lambda: framework_run(args, uri))
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    return seconds, wall


def _timer(function, part: str, seconds: dict[str, float]):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[part] += time.perf_counter() - start

    return timed


def first_epoch_extra(uri: str) -> float:
    """The latest run's first epoch minus its median later epoch (``time/epoch_s``): compiling the train step."""
    from lstm_influence import tracking
    from lstm_influence.metrics import EPOCH_TIME

    client = tracking.make_client(uri)
    experiment = client.get_experiment_by_name("benchmark")
    (latest,) = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    epochs = sorted(client.get_metric_history(latest.info.run_id, EPOCH_TIME), key=lambda point: point.step)
    return epochs[0].value - statistics.median(point.value for point in epochs[1:])


def store_setup_seconds() -> float:
    """A fresh SQLite store's creation (schema migrations) plus the experiment: what a first run in a folder pays."""
    from lstm_influence import tracking

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        client = tracking.make_client(f"sqlite:///{os.path.join(folder, 'mlflow.db')}")
        tracking.get_or_create_experiment(client, "benchmark")
        return time.perf_counter() - start


# -- throughput in worker processes ------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Train the run's monitored model for 1 + 3 epochs in one ``fit``; print steady training sequences/s as JSON.

    Once per ``train.jit_compile`` setting in ``--worker-jit`` (comma-separated): ``seq_s[setting]`` and whether
    XLA ran, ``xla[setting]``. Epochs are timed by a callback, so the ``fit`` set-up a run pays once is not counted
    per epoch.
    """
    import keras

    import lstm_influence as li
    from lstm_influence.training import monitoring
    from lstm_influence.training.backend import apply_threads

    class EpochTimer(keras.callbacks.Callback):
        """Wall seconds of each epoch, from its start to the end of the monitor's work (placed after it)."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._started)

    threads = apply_threads(args.worker)
    result: dict = {"threads": threads, "seq_s": {}, "xla": {}}
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{os.path.join(folder, 'mlflow.db')}"
        for jit in args.worker_jit.split(","):
            cfg = li.compose(overrides(args, uri, f"train.jit_compile={jit}"))
            data = li.load_dataset(cfg)
            model = li.build_model(cfg, data)
            monitor = monitoring.monitor_training(model, cfg, data, logger=_NoLogger())
            timer = EpochTimer()
            model.fit(*data.train, batch_size=args.batch_size, epochs=4, verbose=0, callbacks=[monitor, timer])
            result["seq_s"][jit] = args.n_train / statistics.median(timer.seconds[1:])
            result["xla"][jit] = bool(model.jit_compile)
            keras.backend.clear_session()
    print(json.dumps(result), flush=True)


class _NoLogger:
    """Stands in for the MLflow run in throughput workers: training speed, not logging, is measured there."""

    def log_metrics(self, metrics, step: int = 0) -> None:
        pass


def run_workers(
    args: argparse.Namespace, threads: list[int], units: int | None = None, jit: str = "auto,true"
) -> list[dict]:
    """Start one worker per entry of ``threads`` at the same time; their JSON results."""
    base = [sys.executable, __file__, *_size_args(args, units), f"--worker-jit={jit}"]
    processes = [
        subprocess.Popen([*base, "--worker", str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in threads
    ]
    results = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"worker failed: {err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _size_args(args: argparse.Namespace, units: int | None) -> list[str]:
    return [
        f"--seq-len={args.seq_len}",
        f"--units={units or args.units}",
        f"--batch-size={args.batch_size}",
        f"--n-train={args.n_train}",
        f"--n-eval={args.n_eval}",
    ]


def load() -> str:
    """The 1-minute load average against the cores, e.g. ``load 2.6 on 2 cores``: how shared the machine was."""
    from lstm_influence.training.threads import available_cores

    return f"load {os.getloadavg()[0]:.1f} on {available_cores()} cores"


def throughput_section(args: argparse.Namespace, flops: float, one_core: float, all_cores: float) -> None:
    """Section 4: steady training sequences/s of one run and of a 2-job sweep, against the sgemm roofline."""
    from lstm_influence.training.threads import threads_for

    input_dim = 2
    single_threads = threads_for(args.units, input_dim, args.batch_size)
    sweep_threads = threads_for(args.units, input_dim, args.batch_size, parallel_jobs=2)
    started = load()
    (single,) = run_workers(args, [single_threads])
    pair = run_workers(args, [sweep_threads, sweep_threads])
    print(f"throughput (training sequences/s of a steady epoch, monitor included; {started}, then {load()})")
    print(f"  roofline: {all_cores:.0f} GFLOP/s on all cores, {one_core:.0f} on one")
    for setting, label in (("auto", "train.jit_compile=auto"), ("true", "XLA forced on")):
        xla = "XLA" if single["xla"][setting] else "no XLA"
        print(f"  {label} ({xla} for this workload):")
        rows = (
            (f"single run ({single['threads']} thread(s))", single["seq_s"][setting], "single run roofline"),
            (
                f"2-job sweep ({sweep_threads} thread(s) each)",
                sum(result["seq_s"][setting] for result in pair),
                "2-job sweep roofline",
            ),
        )
        for row, rate, target in rows:
            share = rate * flops / (all_cores * 1e9)
            gap = "" if share >= TARGETS[target] else f", {TARGETS[target] / share:.1f}x short"
            print(f"    {row:<32}{rate:8.0f} seq/s  {share:6.1%} of roofline (target {TARGETS[target]:.0%}{gap})")
    per_process = [result["seq_s"]["auto"] for result in pair]
    print(
        f"  2-job sweep / single run: {sum(per_process) / single['seq_s']['auto']:.2f}x "
        f"(each process {', '.join(f'{rate:.0f}' for rate in per_process)} seq/s)\n"
    )


def whole_run_section(args: argparse.Namespace, uri: str) -> None:
    """Sections 2 and 3: the whole run against the plain Keras script, and its fixed costs by part."""
    import keras

    import lstm_influence as li

    data = li.load_dataset(li.compose(overrides(args, uri)))
    keras.utils.set_random_seed(0)
    warm = keras.Sequential([keras.Input((4, 2)), keras.layers.Dense(1)])
    warm.compile(loss="mse")
    warm.fit(data.train[0][:8, :4], data.train[1][:8], verbose=0)  # the runtime's one-off start, paid by neither
    framework_run(args, uri)  # creates the store and imports what a first run imports; not timed
    started = load()
    plain_times, framework_times = [], []
    for _ in range(args.repeats):
        plain_times.append(plain_keras_run(data, args))
        framework_times.append(framework_run(args, uri))
    compile_extra = first_epoch_extra(uri)
    parts, timed_wall = timed_parts(args, uri)
    plain, framework = statistics.median(plain_times), statistics.median(framework_times)

    print(f"whole run (median of {args.repeats} each, interleaved, same process, store already created; {started})")
    print(f"  plain Keras script      {plain:7.2f} s   ({', '.join(f'{t:.2f}' for t in plain_times)})")
    print(f"  lstm_influence.run      {framework:7.2f} s   ({', '.join(f'{t:.2f}' for t in framework_times)})")
    ratio = framework / plain
    print(f"  ratio framework/plain   {ratio:7.2f} x   (target <= {TARGETS['whole run vs plain']:.2f})\n")

    print(f"fixed costs of one run (timed parts of one more run, wall {timed_wall:.2f} s; {load()})")
    print("  (parts overlap: fit holds the validations and the gate probe)")
    print(f"  {'first epoch minus a later one (compiling)':<40}{compile_extra:7.2f} s")
    for part, seconds in parts.items():
        print(f"  {part:<40}{seconds:7.2f} s")
    print(f"  {'store set-up (fresh mlflow.db + experiment)':<40}{store_setup_seconds():7.2f} s\n")


def jit_scan_section(args: argparse.Namespace, uri: str, batch_sizes: list[int]) -> None:
    """Section 6: whole runs with XLA off and on, interleaved: XLA's extra fixed cost, its saving, the break-even.

    For each run, ``steady`` is the median of its ``time/epoch_s`` after the first epoch (training, validation and
    monitoring of one epoch) and ``fixed`` its wall time minus ``epochs × steady``. XLA pays from
    ``(fixed_xla − fixed_plain) ÷ (steady_plain − steady_xla)`` epochs, printed in training sequence-steps and in
    batch time steps (epochs × batches an epoch × seq_len), the unit of ``train.jit_compile=auto``'s rule.
    """
    from lstm_influence import tracking
    from lstm_influence.metrics import EPOCH_TIME
    from lstm_influence.training.performance import XLA_BREAK_EVEN_BATCH_STEPS

    client = tracking.make_client(uri)
    print(f"jit scan (whole runs, XLA off and on interleaved, {args.repeats} each; {load()})")
    for batch in batch_sizes:
        fixed: dict[bool, list[float]] = {False: [], True: []}
        steady: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for xla in (False, True):
                extra = (f"train.jit_compile={str(xla).lower()}", f"train.batch_size={batch}")
                wall, run_id = timed_framework_run(args, uri, *extra)
                epochs = [value for _, value in sorted(tracking.metric_history(client, run_id, EPOCH_TIME))]
                steady[xla].append(statistics.median(epochs[1:]))
                fixed[xla].append(wall - len(epochs) * steady[xla][-1])
        extra_fixed = statistics.median(fixed[True]) - statistics.median(fixed[False])
        saving = statistics.median(steady[False]) - statistics.median(steady[True])
        sequence_steps = args.n_train * args.seq_len
        per_step_us = saving / sequence_steps * 1e6
        print(
            f"  batch {batch:>4}: fixed {statistics.median(fixed[False]):5.2f} s without XLA, "
            f"{statistics.median(fixed[True]):5.2f} s with (+{extra_fixed:.2f} s); steady epoch "
            f"{statistics.median(steady[False]):5.2f} s without, {statistics.median(steady[True]):5.2f} s with "
            f"({statistics.median(steady[False]) / statistics.median(steady[True]):.2f}x)"
        )
        if saving > 0:
            epochs_to_repay = extra_fixed / saving
            batch_steps = epochs_to_repay * math.ceil(args.n_train / batch) * args.seq_len
            print(
                f"              saving {per_step_us:.3f} µs per training sequence-step: XLA pays from "
                f"{epochs_to_repay * sequence_steps / 1e6:.1f} M sequence-steps, {batch_steps:,.0f} batch time "
                f"steps (the rule's XLA_BREAK_EVEN_BATCH_STEPS: {XLA_BREAK_EVEN_BATCH_STEPS:,})"
            )
        else:
            print("              XLA saved nothing per epoch here: it never pays at this size")
    print(f"  ({load()} at the end)")


def main() -> None:
    args = parse_args()
    if args.worker is not None:
        worker(args)
        return
    from lstm_influence.training.threads import available_cores

    cores = available_cores()
    input_dim = 2  # the adding task: a value and a marker per step
    flops = flops_per_sequence(args.seq_len, args.units, input_dim)
    one_core, all_cores = sgemm_gflops(1), sgemm_gflops(None)
    # On a busy machine the all-core figure can come out below the one-core one; the peak is the better of the two.
    all_cores = max(all_cores, one_core)
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}")
    print(f"sgemm (numpy float32, 2048²): {one_core:.0f} GFLOP/s on one core, {all_cores:.0f} on {cores} ({load()})")
    print(
        f"workload: adding T={args.seq_len}, {args.units} units, {args.n_train} train + 2 x {args.n_eval} eval "
        f"sequences, batch {args.batch_size}, {args.epochs} epochs; LSTM {flops / 1e6:.1f} MFLOP per sequence\n"
    )

    if not (args.only_scans or args.no_workers):
        # throughput first, in fresh processes, before this process holds TensorFlow's threads
        throughput_section(args, flops, one_core, all_cores)
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{os.path.join(folder, 'mlflow.db')}"
        if not args.only_scans:
            whole_run_section(args, uri)
        if args.jit_scan:
            if args.only_scans:
                framework_run(args, uri)  # creates the store and imports what a first run imports; not timed
            jit_scan_section(args, uri, args.jit_scan)

    if args.threads_scan:
        print(f"\nthreads scan (training sequences/s with XLA, one process at a time; {load()})")
        for units in args.threads_scan:
            rates = {n: run_workers(args, [n], units, jit="true")[0]["seq_s"]["true"] for n in sorted({1, cores})}
            step = args.batch_size * 4 * units * (units + input_dim)
            cells = "  ".join(f"{n} thread(s): {rate:7.0f}" for n, rate in rates.items())
            print(f"  {units:>4} units ({step / 1e6:6.1f} M multiply-adds a step): {cells}")


if __name__ == "__main__":
    main()
