"""Telling the user where the runs are: MLflow UI links, and the one-line messages that carry them."""

from __future__ import annotations

import sys

from lstm_influence.tracking.store import is_server

LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def ui_link(uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """The runs table of the experiment (or one run) in the MLflow UI.

    MLflow 3 opens an experiment on its GenAI overview; ``#/experiments/<id>/runs`` is the runs table, where a
    sweep's parent expands to its children. A server's links use its own address, a local store's the address
    ``mlflow ui`` serves.
    """
    base = uri.rstrip("/") if is_server(uri) else LOCAL_UI
    link = f"{base}/#/experiments/{experiment_id}/runs"
    return f"{link}/{run_id}" if run_id else link


def ui_hint(uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """A line telling the user how to open the MLflow UI on these runs (the command to start it for a local store)."""
    link = ui_link(uri, experiment_id, run_id)
    if is_server(uri):
        return f"MLflow: {link}"
    return f"MLflow: run `mlflow ui --backend-store-uri {uri}` here, then open {link}"


def announce(message: str) -> None:
    """Print a line for the user on stderr (stdout stays free for Keras's progress)."""
    print(message, file=sys.stderr, flush=True)
