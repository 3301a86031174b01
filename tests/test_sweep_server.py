"""A sweep against a real MLflow tracking server on a free loopback port, read back through the MLflow client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from lstm_influence import tracking
from tests.helpers import EXPERIMENT, TINY, clean_environment, runs_of, sweep


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} did not answer within {timeout} s")


@pytest.mark.slow
def test_a_sweep_logs_to_a_real_mlflow_server(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"),
    ]  # fmt: skip
    server_log = (tmp_path / "server.log").open("w")
    # Its own session, so the server and its worker processes stop together.
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=clean_environment(),
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(url, server)
        workdir = tmp_path / "work"
        workdir.mkdir()
        result = sweep([*TINY, "tracking=server", f"tracking.uri={url}", "seed=0,1"], workdir)
        assert result.returncode == 0, result.stderr[-3000:]
        assert not (workdir / "mlflow.db").exists()  # nothing went to a local store

        client = tracking.make_client(url)
        experiment_id = tracking.find_experiment_id(client, EXPERIMENT)
        (parent,), children = runs_of(url)
        assert parent.info.status == "FINISHED"
        assert sorted(run.data.tags["seed"] for run in children) == ["0", "1"]
        for run in children:
            assert run.info.status == "FINISHED"
            assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert run.data.tags["sweep_id"] == parent.data.tags["sweep_id"]
            assert run.data.params["tracking.uri"] == url
            assert "test/loss" in run.data.metrics
            assert {item.path for item in client.list_artifacts(run.info.run_id)} >= {"config.yaml"}
        assert [m.step for m in client.get_metric_history(children[0].info.run_id, "val/loss")] == [1, 2]
        assert "jobs.json" in {item.path for item in client.list_artifacts(parent.info.run_id)}
        assert f"{url}/#/experiments/{experiment_id}/runs" in result.stderr
        assert any((tmp_path / "artifacts").rglob("config.yaml"))  # the server stored the artifacts
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        server_log.close()
