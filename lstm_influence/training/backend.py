"""What differs between Keras's TensorFlow and JAX backends, for the framework around the layers.

Keras's own convention picks the backend (``KERAS_BACKEND=jax``; TensorFlow by default). The layers are Keras
only; the framework needs three things Keras leaves to the backend, and they all live here:

- :func:`train_step`: the monitored training step of a :class:`~lstm_influence.training.trainable.MonitoredModel`
  (gradients, optional global-norm clipping, the optimizer, the step recorder, the metrics). TensorFlow's trainer
  calls ``train_step(data)`` and reads variables in place; JAX's calls ``train_step(state, data)`` with every
  variable passed in and returned, so the step recorder's buffers travel as metric variables there.
- :func:`apply_threads`: the CPU threads of the run. TensorFlow sets its intra- and inter-op pools;
  JAX's XLA CPU client reads its thread pool size (``NPROC``) and ``XLA_FLAGS`` once, when it starts. On JAX it
  also keeps large freed buffers in the process (:func:`keep_large_buffers`).
- :func:`gpu_available` and :func:`xla_optional`: whether a GPU is there, and whether training without XLA is a
  real option (TensorFlow runs graphs op by op without it; JAX would run every op eagerly, from Python).

Nothing else in the package imports TensorFlow or JAX.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

import keras

TENSORFLOW, JAX = "tensorflow", "jax"
# XLA's CPU client sizes its thread pool from NPROC when set (else every schedulable core), once per process.
JAX_THREADS_VARIABLE = "NPROC"
_jax_threads: int | None = None
# glibc's mallopt parameters, and the sizes up to which freed memory stays in the process.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES = 1 << 30, 1 << 31


def name() -> str:
    """The Keras backend in use: ``tensorflow`` or ``jax``."""
    return keras.backend.backend()


def check_supported() -> None:
    """Raise ``RuntimeError`` naming the backend when it is neither TensorFlow nor JAX."""
    if name() not in (TENSORFLOW, JAX):
        raise RuntimeError(f"KERAS_BACKEND={name()!r}: lstm_influence runs on tensorflow or jax")


def gpu_available() -> bool:
    """Whether the backend sees a GPU."""
    return bool(keras.distribution.list_devices("gpu")) if name() == JAX else _tensorflow_gpu()


def _tensorflow_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def xla_optional() -> bool:
    """Whether a model may train without XLA at a sensible speed: TensorFlow's graphs yes, JAX no.

    Keras on JAX compiles every train, test and predict function with XLA unless ``jit_compile=False``, which
    runs each operation eagerly from Python: tens of times slower, never the faster choice.
    """
    return name() != JAX


def apply_threads(threads: int) -> int:
    """Give the backend ``threads`` CPU threads for this process, unless already fixed; return those in force.

    Both backends read the setting once, when their runtime starts. TensorFlow: intra- and inter-op threads; a
    caller that set them first (a sweep job) or a runtime already started keeps its setting. JAX: XLA's CPU thread
    pool (``NPROC``) and, for one thread, Eigen's multithreading off, in the environment before the first
    computation; a value the user exported is kept, and the first call in a process decides.
    """
    if name() == JAX:
        return _apply_jax_threads(threads)
    import tensorflow as tf

    in_force = tf.config.threading.get_intra_op_parallelism_threads()
    if in_force:
        return in_force
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime started with TensorFlow's default (every core)
        from lstm_influence.training.threads import available_cores

        return tf.config.threading.get_intra_op_parallelism_threads() or available_cores()
    return threads


def _apply_jax_threads(threads: int) -> int:
    global _jax_threads
    if _jax_threads is None:
        keep_large_buffers()
        exported = os.environ.get(JAX_THREADS_VARIABLE, "")
        if exported.isdigit() and int(exported) > 0:
            _jax_threads = int(exported)
        else:
            os.environ[JAX_THREADS_VARIABLE] = str(threads)
            _jax_threads = threads
        if _jax_threads == 1 and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
    return _jax_threads


def keep_large_buffers() -> bool:
    """Let glibc's malloc keep freed blocks up to 1 GiB in the process; True where it took (Linux, glibc).

    XLA's CPU runtime allocates a training step's temporaries, the scan's saved activations among them, afresh at
    every step. glibc serves a block above its largest automatic mmap threshold (32 MiB) with a new ``mmap`` and
    returns it with ``munmap``, so every step faults in the whole block again, page by page. Measured with JAX at
    64 units and batch 64: from T ≈ 160 (about 40 MB of temporaries) a step took 10,500 page faults and 40 % of
    its time in the kernel, and training ran 1.5-1.8× slower per time step than at T = 150; with both thresholds
    raised, 1 fault a step and the speed per time step of shorter sequences. The cost: freed memory up to those
    sizes stays with the process instead of going back to the system.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
            and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        )
    except (OSError, AttributeError):  # another C library (musl) has no mallopt of glibc's meaning
        return False


# -- the training step -------------------------------------------------------------------------------------------


def train_step(model: keras.Model, *args: Any) -> Any:
    """One monitored training step of ``model``, in the calling convention of the backend's Keras trainer.

    ``model`` is a :class:`~lstm_influence.training.trainable.MonitoredModel` (typed as what this module needs to
    know of it, a Keras model with ``clip_norm`` and ``update_step_metrics``, so that the two import one way).

    TensorFlow: ``train_step(model, data) -> logs``. JAX: ``train_step(model, state, data) -> (logs, state)``,
    ``state`` being Keras's (trainable, non-trainable, optimizer, metrics) variable values. Both compute the same
    maths: the loss, its gradients, their global norm before clipping, clipping to ``model``'s clip norm when it
    has one, the optimizer's update, then ``model.update_step_metrics`` (the step recorder and the metrics).
    """
    if name() == JAX:
        return _jax_train_step(model, *args)
    return _tensorflow_train_step(model, *args)


def _tensorflow_train_step(model: keras.Model, data: Any) -> dict[str, Any]:
    import tensorflow as tf

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)
    if model.clip_norm:
        gradients, grad_norm = tf.clip_by_global_norm(gradients, model.clip_norm)
    else:
        grad_norm = tf.linalg.global_norm(gradients)
    model.optimizer.apply(gradients, variables)
    return model.update_step_metrics(loss, grad_norm, x, y, y_pred, sample_weight)


def _jax_train_step(model: keras.Model, state: Any, data: Any) -> tuple[dict[str, Any], Any]:
    import jax
    import jax.numpy as jnp

    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    # Keras's own stateless loss (forward pass, layer losses, loss scaling), differentiated as its JAX trainer does.
    grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
    (_, (loss, y_pred, non_trainable, metrics_variables)), gradients = grad_fn(
        trainable,
        non_trainable,
        metrics_variables,
        x,
        y,
        sample_weight,
        training=True,
        optimizer_variables=optimizer_variables,
    )
    # The same maths as tf.linalg.global_norm and tf.clip_by_global_norm.
    grad_norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in gradients))
    if model.clip_norm:
        scale = model.clip_norm * jnp.minimum(1.0 / grad_norm, 1.0 / model.clip_norm)
        gradients = [g * scale for g in gradients]
    trainable, optimizer_variables = model.optimizer.stateless_apply(optimizer_variables, gradients, trainable)
    references = model.metrics_variables
    with keras.StatelessScope(state_mapping=list(zip(references, metrics_variables))) as scope:
        logs = model.update_step_metrics(loss, grad_norm, x, y, y_pred, sample_weight)
    metrics_variables = [
        _current(scope.get_current_value(reference), value) for reference, value in zip(references, metrics_variables)
    ]
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def _current(updated: Any, previous: Any) -> Any:
    return previous if updated is None else updated
