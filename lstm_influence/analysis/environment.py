"""Where the analysed runs came from: their code commits, package versions, backends and processors.

Every run carries provenance tags (:data:`PROVENANCE_TAGS`); this module reads them from the runs of a
:class:`~lstm_influence.analysis.load.SweepData` (so from the store and from ``runs.csv`` alike) and says which
comparisons mix them. Pure functions, except :func:`environment_text`, which only formats.
"""

from __future__ import annotations

import pandas as pd

from lstm_influence.analysis.load import SweepData

COMMIT = "mlflow.source.git.commit"
DIRTY = "git_dirty"
BACKEND = "keras_backend"
CPU = "cpu"
THREADS = "tf_threads"
VERSIONS = (
    "version.python",
    "version.lstm_influence",
    "version.keras",
    "version.tensorflow",
    "version.jax",
    "version.mlflow",
    "version.numpy",
)
#: The tags that say where a run came from, in the order the report lists them.
PROVENANCE_TAGS = (COMMIT, DIRTY, *VERSIONS, BACKEND, CPU, THREADS)
#: Tags that must agree within one comparison: a difference in them is a difference in the code that ran.
MUST_AGREE = (COMMIT, DIRTY, *VERSIONS, BACKEND)
NOT_RECORDED = "not recorded"
#: The version tag a run on each backend has no reason to log.
OTHER_BACKEND_VERSION = {"tensorflow": "version.jax", "jax": "version.tensorflow"}
#: A note beside a report with what is known of runs that predate the tags; appended to ``environment.txt``.
KNOWN_FILE = "known_environment.txt"
ENVIRONMENT_FILE = "environment.txt"


def run_environments(data: SweepData) -> pd.DataFrame:
    """One row per used run: ``run_id, dataset, arm`` and one column per :data:`PROVENANCE_TAGS` tag.

    A tag the run did not log reads :data:`NOT_RECORDED`, except the version of the backend a run did not use
    (``version.jax`` on a TensorFlow run, ``version.tensorflow`` on a JAX run), which reads ``—``.
    """
    tags = {r.run_id: r.tags for r in data.records}
    used = data.included[["run_id", "dataset", "arm"]]
    rows = []
    for run_id, dataset, arm in used.itertuples(index=False):
        own = tags.get(run_id, {})
        row = {"run_id": run_id, "dataset": dataset, "arm": arm}
        for tag in PROVENANCE_TAGS:
            value = own.get(tag)
            if value in (None, "") and OTHER_BACKEND_VERSION.get(own.get(BACKEND)) == tag:
                value = "—"
            row[tag] = NOT_RECORDED if value in (None, "") else str(value)
        rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", "dataset", "arm", *PROVENANCE_TAGS])


def environment_counts(environments: pd.DataFrame) -> pd.DataFrame:
    """The distinct value sets of :data:`PROVENANCE_TAGS` with how many runs had each, most frequent first."""
    if environments.empty:
        return pd.DataFrame(columns=[*PROVENANCE_TAGS, "runs"])
    counts = environments.groupby(list(PROVENANCE_TAGS), sort=True).size().reset_index(name="runs")
    return counts.sort_values("runs", ascending=False, kind="stable").reset_index(drop=True)


def mixed_comparisons(environments: pd.DataFrame, control: str) -> pd.DataFrame:
    """The comparisons (an arm against ``control`` on one dataset) whose runs differ in a :data:`MUST_AGREE` tag.

    Returns:
        Columns ``dataset, arm, tag, values`` (the distinct values, ``; ``-joined, sorted), one row per
        comparison and tag that mixes; a run without the tag counts as :data:`NOT_RECORDED`, so a comparison of
        recorded with unrecorded runs mixes too.
    """
    rows = []
    for dataset, cell in environments.groupby("dataset", sort=True):
        base = cell[cell["arm"] == control]
        for arm in sorted(set(cell["arm"]) - {control}):
            both = pd.concat([cell[cell["arm"] == arm], base])
            for tag in MUST_AGREE:
                values = sorted(set(both[tag]))
                if len(values) > 1:
                    rows.append({"dataset": dataset, "arm": arm, "tag": tag, "values": "; ".join(values)})
    return pd.DataFrame(rows, columns=["dataset", "arm", "tag", "values"])


def environment_text(environments: pd.DataFrame, known: str | None = None) -> str:
    """``environment.txt``: one line per distinct environment of the used runs, with its run count.

    Args:
        environments: from :func:`run_environments`.
        known: a note on what is known of runs that predate the tags (:data:`KNOWN_FILE`), appended as it is.
    """
    counts = environment_counts(environments)
    lines = [
        f"# The environment of the {len(environments)} runs this report analyses, from their provenance tags: one line",
        f"# per distinct set of values, with its number of runs. '{NOT_RECORDED}': the run did not log the tag (runs",
        "# made before provenance was recorded log none of them).",
    ]
    for record in counts.to_dict("records"):
        lines.append(" | ".join([f"{record['runs']} runs", *(f"{tag}={record[tag]}" for tag in PROVENANCE_TAGS)]))
    text = "\n".join(lines) + "\n"
    if known:
        text += "\n" + known.rstrip("\n") + "\n"
    return text
