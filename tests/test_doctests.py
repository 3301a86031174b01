"""Every ``>>>`` example in the package runs, and runs as written.

The modules are found by their text, so an example added to any module is run without touching this file; each
module must run as many examples as it has ``>>>`` lines, so an example doctest cannot see (in a comment, or in a
string that is no docstring) fails here instead of staying unchecked. The layers library's examples run in
``tests/test_layers.py``, on the TensorFlow and the JAX backends, and are left out here.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import lstm_influence

PACKAGE = Path(lstm_influence.__file__).parent
RUN_ON_BOTH_BACKENDS = "lstm_influence.layers"  # by tests/test_layers.py


def module_name(path: Path) -> str:
    """``lstm_influence/tracking/runs.py`` -> ``lstm_influence.tracking.runs``; a package's ``__init__`` -> itself."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def example_lines(path: Path) -> int:
    """The number of ``>>>`` prompts in the file: one per example doctest should run."""
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith(">>>"))


EXAMPLES = {
    module_name(path): example_lines(path)
    for path in sorted(PACKAGE.rglob("*.py"))
    if example_lines(path) and not module_name(path).startswith(RUN_ON_BOTH_BACKENDS)
}


def test_the_modules_with_examples_are_found():
    # the modules known to carry examples when this test was written: discovery that finds none would pass vacuously
    assert {
        "lstm_influence.training.curves",
        "lstm_influence.training.performance",
        "lstm_influence.training.threads",
    } <= set(EXAMPLES)
    assert not [name for name in EXAMPLES if name.startswith(RUN_ON_BOTH_BACKENDS)]


@pytest.mark.parametrize(("name", "expected"), sorted(EXAMPLES.items()))
def test_every_example_of_the_module_runs_and_passes(name, expected):
    module = importlib.import_module(name)
    result = doctest.testmod(module, raise_on_error=False, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"
    assert result.attempted == expected, f"{name}: {expected} '>>>' lines, but doctest ran {result.attempted}"
