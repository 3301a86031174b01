"""The training runner: one config in, one MLflow run out.

:func:`run` reads top to bottom:

1. :func:`prepare` checks the config once (:func:`lstm_influence.config.validate`), loads the data, sizes the
   strategy to it, sets the backend's threads and builds the model. Everything a user's mistake can break happens
   here, before an MLflow run exists, so a typo leaves no FAILED run behind. A child of a sweep or a tuning study
   is the exception: its parent counts its children, so a child that cannot start is still recorded FAILED.
2. :func:`train`, inside the open run, proves the influence landed, logs the reference losses, trains with the
   epoch monitor (:mod:`lstm_influence.training.monitoring`), tests, and logs the summary metrics of the contract.
3. The run ends with its key numbers in words, then the MLflow link.

A run that diverges is not an error: it stops early, logs ``stab/diverged = 1`` and ends FINISHED.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import keras
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from lstm_influence import names, tracking
from lstm_influence.config.errors import ConfigError
from lstm_influence.config.identity import flatten, run_name
from lstm_influence.config.validation import validate
from lstm_influence.datasets import load_valid
from lstm_influence.datasets.base import NATS_PER_BIT, Dataset, DatasetError
from lstm_influence.metrics import (
    INIT_VAL_LOSS,
    INIT_VAL_NORM_LOSS,
    TEST_BPC,
    TEST_LOSS,
    TEST_NORM_LOSS,
    TRIAL_PRUNED,
)
from lstm_influence.strategies import Strategy, strategy_for_data
from lstm_influence.tracking.provenance import dataset_label
from lstm_influence.training import curves as metrics
from lstm_influence.training import monitoring
from lstm_influence.training.backend import apply_threads
from lstm_influence.training.context import STANDALONE, RunContext
from lstm_influence.training.performance import evaluation_batch_size
from lstm_influence.training.threads import ALONE, JobShare, resolve_threads
from lstm_influence.training.trainable import MonitoredModel, build_model

# A user's mistake in the config or the data: reported in one line, without a traceback.
USER_ERRORS = (ConfigError, DatasetError)


class InfluenceError(RuntimeError):
    """The strategy's influence is not in the built weights: training would test nothing."""


@dataclasses.dataclass
class Prepared:
    """What a run needs, built and checked before its MLflow run opens."""

    data: Dataset
    strategy: Strategy
    model: MonitoredModel
    threads: int


def prepare(cfg: DictConfig, share: JobShare = ALONE) -> Prepared:
    """Check ``cfg``, load its data, size the strategy to the data, set the backend's threads, build the model.

    Args:
        cfg: the run's config.
        share: the run's part of the machine (a sweep job's; alone by default), which ``train.threads=auto``
            divides by the model's size (:func:`lstm_influence.training.threads.resolve_threads`).

    Raises:
        ConfigError: a key no schema declares, a value that cannot work, or a strategy that does not fit the data.
        DatasetError: data that cannot be read or used.
    """
    valid = validate(cfg)
    data = load_valid(valid)
    units, batch_size = int(cfg.model.units), int(cfg.train.batch_size)
    strategy = strategy_for_data(valid, data)  # the strategy's own validate(), the one check that needs the data
    # Before the backend's first computation: TensorFlow and XLA read their thread counts once.
    threads = resolve_threads(
        cfg.train.threads, units=units, input_dim=data.n_features, batch_size=batch_size, share=share
    )
    threads = apply_threads(threads)
    return Prepared(data, strategy, build_model(cfg, data, strategy), threads)


def train(
    cfg: DictConfig,
    prepared: Prepared,
    logger: tracking.RunLogger,
    *,
    epoch_hook: monitoring.EpochHook | None = None,
    evaluate_test: bool = True,
) -> tuple[dict[str, float], monitoring.TrainingRecord]:
    """Train the prepared model into the open run of ``logger``; return the summary metrics and the record.

    Args:
        cfg: the run's config.
        prepared: what :func:`prepare` built from ``cfg``.
        logger: the open MLflow run.
        epoch_hook: see :data:`lstm_influence.training.monitoring.EpochHook`.
        evaluate_test: false never touches the test split (tuning must not see it).
    """
    data, strategy, model = prepared.data, prepared.strategy, prepared.model
    before = _log_inputs(cfg, prepared, logger, evaluate_test)
    splits = [data.val, data.test] if evaluate_test else [data.val]
    eval_batch = evaluation_batch_size(
        [len(x) for x, _ in splits], data.seq_len, int(cfg.model.units), int(cfg.train.batch_size)
    )
    _log_references(model, data, logger, eval_batch, evaluate_test)

    monitor = monitoring.monitor_training(model, cfg, data, logger, epoch_hook)
    if monitor.gate_note:
        logger.set_tags({names.GATE_METRICS: monitor.gate_note})
    model.fit(
        *data.train,
        validation_data=data.val,
        validation_batch_size=eval_batch,
        epochs=int(cfg.train.epochs),
        batch_size=int(cfg.train.batch_size),
        shuffle=True,
        verbose=int(cfg.train.verbose),
        callbacks=[monitor],
    )
    summary = monitor.summary()
    if evaluate_test:
        summary.update(_test_metrics(model, data, eval_batch))
    report, influence_metrics = strategy.after_training(model, before)
    summary.update(influence_metrics)
    logger.log_json({"before": before, "after": report}, "influence_report.json")
    record = monitor.record
    if record.diverged:
        logger.set_tags({names.DIVERGED: record.divergence_reason})
    if record.stopped_by_hook:
        logger.set_tags({names.STOPPED_EARLY: "epoch hook"})
        summary[TRIAL_PRUNED] = 1.0
    logger.log_metrics(summary)
    return summary, record


def _log_inputs(cfg: DictConfig, prepared: Prepared, logger: tracking.RunLogger, evaluate_test: bool) -> dict:
    """Log what the run starts from (the data's description and splits, the threads, the influence as built) and
    return the influence report; raise when the influence is not in the weights, so no such run is trained."""
    data, strategy, model = prepared.data, prepared.strategy, prepared.model
    logger.log_params({f"data.{k}": v for k, v in flatten(data.metadata).items()})
    logger.log_json(data.metadata, "dataset.json")
    splits = {"train": data.train, "val": data.val, **({"test": data.test} if evaluate_test else {})}
    logger.log_dataset(dataset_label(data.name, cfg.dataset.get("task")), splits, data.metadata.get("file"))
    logger.set_tags({names.TF_THREADS: prepared.threads})
    before = strategy.verify(model)
    logger.log_json({"before": before}, "influence_report.json")
    if not before.get("passed", False):
        failed = [check.get("name", "?") for check in before.get("checks", []) if not check.get("passed", False)]
        raise InfluenceError(
            f"strategy {cfg.strategy.name!r}: the influence did not land in the weights (failed checks: "
            f"{', '.join(failed) or 'unknown'}); see influence_report.json"
        )
    return before


def _log_references(
    model: keras.Model, data: Dataset, logger: tracking.RunLogger, eval_batch: int, evaluate_test: bool
) -> None:
    """Log the reference predictors' losses and the untrained model's validation loss, before any step."""
    init_val = _evaluate(model, data.val, eval_batch)
    references = metrics.reference_metrics(
        data.baseline_loss, getattr(data, "reference_losses", {}), ["val", "test"] if evaluate_test else ["val"]
    )
    references.update({INIT_VAL_LOSS: init_val, INIT_VAL_NORM_LOSS: data.norm_loss(init_val, "val")})
    logger.log_metrics(references)


def _test_metrics(model: keras.Model, data: Dataset, eval_batch: int) -> dict[str, float]:
    test_loss = _evaluate(model, data.test, eval_batch)
    scores = {TEST_LOSS: test_loss, TEST_NORM_LOSS: data.norm_loss(test_loss, "test")}
    if data.is_classification:
        scores[TEST_BPC] = test_loss / NATS_PER_BIT
    return scores


def _evaluate(model: keras.Model, split: tuple[Any, Any], batch_size: int) -> float:
    return float(model.evaluate(*split, batch_size=batch_size, verbose=0, return_dict=True)["loss"])


def run(cfg: DictConfig, context: RunContext = STANDALONE) -> dict[str, Any]:
    """Train one run of ``cfg``, log it to MLflow, and tell the user how it went.

    Args:
        cfg: the run's config.
        context: what a sweep or a tuning study adds (:class:`~lstm_influence.training.context.RunContext`: the
            parent run, its tags, the machine's share, the epoch hook, whether to test); none for a run on its own.
            numpy's BLAS runs on one thread during the run, whatever the share, and gets its setting back after.

    Returns:
        The summary metrics plus ``run_id``, ``experiment_id`` and ``status``.

    Raises:
        One of :data:`USER_ERRORS` before any MLflow run is opened (a child run is recorded FAILED first);
        anything else after the run was recorded FAILED with an ``error`` tag and a ``traceback.txt`` artifact.
    """
    started = time.perf_counter()
    # numpy runs on one BLAS thread: its products here (reference predictors on at most a few hundred features, the
    # gate probe) are small, and idle BLAS threads spinning beside TensorFlow's or another job's made loading the
    # data 2-10x slower on a shared 2-core machine.
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            try:
                prepared = prepare(cfg, context.share)
            except Exception as error:
                if context.is_child or not isinstance(error, USER_ERRORS):
                    with tracking.training_run(cfg, parent_run_id=context.parent_run_id, extra_tags=context.tags):
                        raise  # recorded FAILED by training_run, then raised again
                raise
            with tracking.training_run(cfg, parent_run_id=context.parent_run_id, extra_tags=context.tags) as logger:
                summary, record = train(
                    cfg, prepared, logger, epoch_hook=context.epoch_hook, evaluate_test=context.evaluate_test
                )
    finally:
        # Keras's global state goes; Python's garbage collection (about 0.5 s) is left to the process or the sweep.
        keras.backend.clear_session(free_memory=False)
    description = monitoring.describe_run(
        summary,
        prepared.data,
        target=float(cfg.train.target_norm_loss),
        epochs=int(cfg.train.epochs),
        seconds=time.perf_counter() - started,
        divergence_reason=record.divergence_reason,
    )
    tracking.announce(f"{run_name(cfg)}: {description}")
    tracking.announce(tracking.ui_hint(cfg.tracking.uri, logger.experiment_id, logger.run_id))
    return {**summary, "run_id": logger.run_id, "experiment_id": logger.experiment_id, "status": "FINISHED"}
