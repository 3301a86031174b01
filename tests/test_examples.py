"""``examples/``: a user's JANET strategy (its own cell), a dataset plug-in and their YAML files, run from outside the
package exactly as ``examples/README.md`` shows: one run, a two-arm sweep against ``baseline``, and the report."""

from __future__ import annotations

import pytest

from tests import helpers
from tests.helpers import REPO, TINY

EXAMPLES = REPO / "examples"
# The plug-in package is found as a user's would be: on PYTHONPATH (or installed), never inside lstm_influence.
ENV = {"PYTHONPATH": str(EXAMPLES)}
CONF = ["--config-dir", str(EXAMPLES / "conf")]
SIZES = [*TINY, "dataset=first_value"]


@pytest.mark.slow
def test_the_janet_example_runs_sweeps_and_reaches_the_report(tmp_path):
    uri = helpers.store_uri(tmp_path)
    single = helpers.cli([*CONF, "strategy=janet", *SIZES, f"tracking.uri={uri}"], tmp_path, env=ENV)
    assert single.returncode == 0, single.stderr[-3000:]
    _, (run,) = helpers.runs_of(uri)
    assert run.info.status == "FINISHED" and run.info.run_name == "janet-first_value-s0"
    assert run.data.params["strategy._target_"] == "janet_plugin.janet.Janet"
    # the cell reports its forget gate and the tied input gate; it has no output gate
    assert {"gates/forget_mean", "gates/input_mean", "gates/saturated_frac", "influence/retention"} <= set(
        run.data.metrics
    )
    assert "gate_metrics" not in run.data.tags

    typo = helpers.cli([*CONF, "strategy=janet", "+strategy.betta=2", *SIZES, f"tracking.uri={uri}"], tmp_path, env=ENV)
    assert typo.returncode == 2, typo.stderr[-3000:]
    (error,) = [line for line in typo.stderr.splitlines() if line.startswith("error:")]
    assert "strategy.betta=2" in error and "valid keys: beta, name, t_max" in error

    experiment = "janet-vs-baseline"
    grid = [*CONF, "arm=baseline,janet", "seed=0,1", *SIZES, f"tracking.uri={uri}", f"tracking.experiment={experiment}"]
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    sweep = helpers.sweep(
        [*grid, *launcher],
        tmp_path,
        env=ENV,
        timeout=900,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    _, runs = helpers.runs_of(uri, experiment)
    assert sorted(r.info.run_name for r in runs) == [
        "baseline-first_value-s0",
        "baseline-first_value-s1",
        "janet-first_value-s0",
        "janet-first_value-s1",
    ]
    assert {r.info.status for r in runs} == {"FINISHED"}

    out = tmp_path / "report"
    report = helpers.run_python(
        str(REPO / "experiments" / "compare.py"),
        *["--experiment", experiment, "--tracking-uri", uri, "--out", str(out)],
        cwd=tmp_path,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    text = (out / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| first_value | janet |")]
    assert rows, text[:3000]  # janet is compared with the control, baseline, on the plug-in dataset
