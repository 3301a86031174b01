"""``hydra/launcher=ray`` (the ``[ray]`` extra) against a local Ray instance: the same parent and children."""

from __future__ import annotations

import pytest

from tests.helpers import TINY, artifact_json, runs_of, store_uri, sweep

pytest.importorskip("ray", reason="the [ray] extra is not installed: pip install -e '.[ray]'")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the [ray] extra is not installed")

# A local instance sized for a 2-core machine, without the dashboard (it starts a web server).
RAY = (
    "hydra/launcher=ray",
    "+hydra.launcher.ray.init.num_cpus=2",
    "+hydra.launcher.ray.init.include_dashboard=false",
)


@pytest.mark.slow
def test_a_two_job_sweep_runs_on_a_local_ray_instance(tmp_path):
    uri = store_uri(tmp_path)
    result = sweep([*TINY, f"tracking.uri={uri}", "seed=0,1", *RAY], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Started a local Ray instance" in result.stderr + result.stdout
    (parent,), children = runs_of(uri)
    assert parent.info.status == "FINISHED"
    assert sorted(run.data.tags["seed"] for run in children) == ["0", "1"]
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["tf_threads"] == "1"  # a Ray task reserves one CPU by default
    progress = artifact_json(uri, parent.info.run_id, "attempts/1-progress.json")
    assert [record["k"] for record in progress] == [1, 2]
    assert sorted(record["run_id"] for record in progress) == sorted(run.info.run_id for run in children)


def test_a_ray_cluster_with_a_local_store_is_refused_before_any_job(tmp_path):
    result = sweep(
        [
            *TINY,
            f"tracking.uri={store_uri(tmp_path)}",
            "seed=0,1",
            *RAY,
            "hydra.launcher.ray.init.address=auto",
        ],
        tmp_path,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Cannot start the sweep" in result.stderr and "tracking=server" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()
