"""The metric declarations (:mod:`lstm_influence.metrics`): the exact MLflow names, one declaration each, directions
and bounds that agree with each other, and no metric name written anywhere else in the package."""

from __future__ import annotations

import ast
import itertools
import math
import re
from pathlib import Path

import pytest

from lstm_influence import metrics
from lstm_influence.metrics import CATALOG, Direction, Kind, Metric

PACKAGE = Path(metrics.__file__).parent

# The public contract, written out: users' scripts, MLflow filters and shipped history.csv files use these strings.
CONTRACT = {
    Kind.PER_EPOCH: {
        "train/loss",
        "val/loss",
        "val/norm_loss",
        "val/bpc",
        "grad/global_norm",
        "grad/max_norm",
        "time/epoch_s",
        "gates/forget_mean",
        "gates/input_mean",
        "gates/saturated_frac",
    },
    Kind.BEFORE_TRAINING: {"init/val_loss", "init/val_norm_loss", "baseline/val_loss", "baseline/test_loss"},
    Kind.SUMMARY: {
        "final/val_loss",
        "final/epoch",
        "best/val_loss",
        "best/epoch",
        "test/loss",
        "test/norm_loss",
        "test/bpc",
        "conv/epochs_to_target",
        "conv/reached_target",
        "conv/aulc",
        "stab/loss_spikes",
        "stab/grad_spikes",
        "stab/diverged",
        "influence/retention",
        "influence/extra_norm_ratio",
    },
    Kind.TUNING: {
        "tune/objective",
        "tune/pruned",
        "tune/best_value",
        "tune/default_value",
        "tune/improvement",
        "tune/relative_improvement",
        "trial/value",
        "trial/best_value",
    },
}


def constants() -> dict[str, str]:
    """The module's metric constants: upper-case names whose value is a declared metric."""
    return {k: v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str) and v in CATALOG}


def test_the_contract_strings_are_declared_with_their_kind():
    for kind, expected in CONTRACT.items():
        assert set(metrics.of_kind(kind)) == expected, kind
    assert set(CATALOG) == set().union(*CONTRACT.values())
    assert metrics.PRIMARY_METRIC == metrics.TEST_NORM_LOSS == "test/norm_loss"


def test_the_constants_keep_their_names():
    expected = {
        "TRAIN_LOSS": "train/loss",
        "VAL_LOSS": "val/loss",
        "VAL_NORM_LOSS": "val/norm_loss",
        "VAL_BPC": "val/bpc",
        "GRAD_GLOBAL_NORM": "grad/global_norm",
        "GRAD_MAX_NORM": "grad/max_norm",
        "EPOCH_TIME": "time/epoch_s",
        "GATES_FORGET_MEAN": "gates/forget_mean",
        "GATES_INPUT_MEAN": "gates/input_mean",
        "GATES_SATURATED_FRAC": "gates/saturated_frac",
        "INIT_VAL_LOSS": "init/val_loss",
        "INIT_VAL_NORM_LOSS": "init/val_norm_loss",
        "BASELINE_VAL_LOSS": "baseline/val_loss",
        "BASELINE_TEST_LOSS": "baseline/test_loss",
        "FINAL_VAL_LOSS": "final/val_loss",
        "FINAL_EPOCH": "final/epoch",
        "BEST_VAL_LOSS": "best/val_loss",
        "BEST_EPOCH": "best/epoch",
        "TEST_LOSS": "test/loss",
        "TEST_NORM_LOSS": "test/norm_loss",
        "TEST_BPC": "test/bpc",
        "EPOCHS_TO_TARGET": "conv/epochs_to_target",
        "REACHED_TARGET": "conv/reached_target",
        "AULC": "conv/aulc",
        "LOSS_SPIKES": "stab/loss_spikes",
        "GRAD_SPIKES": "stab/grad_spikes",
        "DIVERGED_METRIC": "stab/diverged",
        "TRIAL_PRUNED": "tune/pruned",
        "RETENTION": "influence/retention",
        "EXTRA_NORM_RATIO": "influence/extra_norm_ratio",
        "TRIAL_OBJECTIVE": "tune/objective",
        "TUNE_BEST_VALUE": "tune/best_value",
        "TUNE_DEFAULT_VALUE": "tune/default_value",
        "TUNE_IMPROVEMENT": "tune/improvement",
        "TUNE_RELATIVE_IMPROVEMENT": "tune/relative_improvement",
        "STUDY_TRIAL_VALUE": "trial/value",
        "STUDY_BEST_SO_FAR": "trial/best_value",
        "PRIMARY_METRIC": "test/norm_loss",
    }
    assert constants() == expected
    assert all(type(value) is str for value in expected)  # plain strings: MLflow, dicts and pandas take them as-is


def test_every_name_is_declared_once_and_every_declaration_has_a_constant():
    with pytest.raises(ValueError, match="declared twice"):
        metrics._declare("val/loss", Direction.LOWER, metrics.NON_NEGATIVE, Kind.PER_EPOCH, "again")
    assert set(CATALOG) == set(constants().values())
    assert all(name == metric.name for name, metric in CATALOG.items())


def test_every_declaration_is_well_formed():
    for name, metric in CATALOG.items():
        assert isinstance(metric, Metric)
        assert re.fullmatch(r"[a-z]+/[a-z_]+", name), name
        assert metric.meaning and "\n" not in metric.meaning, name
        assert isinstance(metric.direction, Direction) and isinstance(metric.kind, Kind), name
        low, high = metric.bounds
        assert low <= high and not math.isnan(low) and not math.isnan(high), name
        assert metric.bounds in (metrics.UNBOUNDED, metrics.NON_NEGATIVE, metrics.UNIT_INTERVAL), name
    with pytest.raises(ValueError, match="bounds"):
        Metric("x/y", "backwards", Direction.NONE, (1.0, 0.0), Kind.SUMMARY)


def test_directions_and_bounds_agree_with_what_the_metrics_are():
    by_direction = {d: {n for n, m in CATALOG.items() if m.direction is d} for d in Direction}
    assert by_direction[Direction.HIGHER] == {"conv/reached_target", "tune/improvement", "tune/relative_improvement"}
    assert by_direction[Direction.NONE] == {
        "grad/global_norm",
        "grad/max_norm",
        "gates/forget_mean",
        "gates/input_mean",
        "gates/saturated_frac",
        "final/epoch",
        "best/epoch",
        "tune/pruned",
        "influence/retention",
        "influence/extra_norm_ratio",
    }
    for name, metric in CATALOG.items():
        if name.endswith(("loss", "/bpc", "/aulc")):  # losses and their ratios: lower is better, never negative
            assert metric.direction is Direction.LOWER and metric.non_negative, name
        if name in {"conv/reached_target", "stab/diverged"} or name.startswith("gates/"):  # flags and fractions
            assert metric.bounds == metrics.UNIT_INTERVAL, name
    # the two that can go below zero: retention (past the counterfactual) and an improvement (a worse best)
    assert {n for n, m in CATALOG.items() if not m.non_negative} == {
        "influence/retention",
        "tune/improvement",
        "tune/relative_improvement",
    }
    assert metrics.HIGHER_IS_BETTER == by_direction[Direction.HIGHER]


def test_lookups_handle_reference_and_unknown_names_explicitly():
    reference = metrics.reference_metric("ridge", "test", normalised=True)
    assert reference == "baseline/ridge/test_norm_loss"
    assert metrics.reference_metric("ngram", "val") == "baseline/ngram/val_loss"
    assert re.match(metrics.REFERENCE_NORM_PATTERN, reference)
    assert not re.match(metrics.REFERENCE_NORM_PATTERN, "baseline/ngram/val_loss")
    declared = metrics.declaration(reference)
    assert declared.direction is Direction.LOWER and declared.bounds == metrics.NON_NEGATIVE
    assert declared.kind is Kind.BEFORE_TRAINING and "ridge" in declared.meaning
    # a plug-in strategy's own metric: no declaration, ranked lower-is-better unless the caller says otherwise,
    # and no bounds assumed
    plugin = "influence/my_plugin_score"
    assert metrics.declaration(plugin) is None and metrics.direction(plugin) is None
    assert metrics.lower_is_better(plugin) and not metrics.lower_is_better(plugin, [plugin])
    assert metrics.bounds(plugin) == metrics.UNBOUNDED and not metrics.non_negative(plugin)
    # a metric with no direction is ranked as the losses are
    assert metrics.direction(metrics.BEST_EPOCH) is Direction.NONE and metrics.lower_is_better(metrics.BEST_EPOCH)
    assert not metrics.lower_is_better(metrics.REACHED_TARGET)
    assert metrics.non_negative(metrics.EPOCHS_TO_TARGET) and not metrics.non_negative(metrics.RETENTION)


# --- no metric name outside metrics.py -----------------------------------------------------------------------------

FAMILIES = sorted({name.split("/")[0] for name in CATALOG})
#: A string that is a declared name, or that starts like one (``"gates/"`` in ``f"gates/{gate}_mean"``).
METRIC_LITERAL = re.compile(
    r"^(?:" + "|".join(map(re.escape, sorted(CATALOG, key=len, reverse=True))) + r")$|^(?:" + "|".join(FAMILIES) + ")/"
)


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions (documentation may name metrics)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
        # attribute docstrings: a string statement right after an assignment
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if isinstance(statements, list):
                for before, after in itertools.pairwise(statements):
                    if isinstance(before, ast.Assign | ast.AnnAssign) and isinstance(after, ast.Expr):
                        if isinstance(after.value, ast.Constant):
                            found.add(id(after.value))
    return found


def metric_literals(source: str) -> list[tuple[int, str]]:
    """``(line, string)`` of every string in the code (not in a docstring or comment) that names a metric."""
    tree = ast.parse(source)
    skip = docstrings(tree)
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and METRIC_LITERAL.search(node.value)
    )


def test_the_scan_finds_metric_literals_and_leaves_prose_alone():
    code = '''
"""Module docs may say ``val/norm_loss``."""
A = "test/norm_loss"
B = f"gates/{gate}_mean"
C = {"stab/diverged": 1}
D = "the report says `conv/reached_target` = 1 in prose"
E = "train.target_norm_loss"
F = "baseline/"
'''
    assert [value for _, value in metric_literals(code)] == ["test/norm_loss", "gates/", "stab/diverged", "baseline/"]


def test_no_metric_name_is_written_outside_metrics_py():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "metrics.py":
            continue
        for line, value in metric_literals(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}")
    assert not found, "metric names belong in lstm_influence/metrics.py; use its constants:\n" + "\n".join(found)
