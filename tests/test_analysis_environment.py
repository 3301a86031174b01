"""Reports name the environment of their runs, warn when a comparison mixes environments, and state equivalence."""

from __future__ import annotations

import pandas as pd
import pytest

from lstm_influence.analysis.declaration import Declaration
from lstm_influence.analysis.environment import (
    ENVIRONMENT_FILE,
    KNOWN_FILE,
    NOT_RECORDED,
    PROVENANCE_TAGS,
    environment_counts,
    mixed_comparisons,
    run_environments,
)
from lstm_influence.analysis.load import RunRecord, Source, assemble
from lstm_influence.analysis.pipeline import analyse_files
from lstm_influence.analysis.raw import RUNS_FILE, write_raw
from tests.helpers import experiment_script

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40
TF = {
    "mlflow.source.git.commit": COMMIT_A,
    "git_dirty": "false",
    "version.python": "3.11.9",
    "version.lstm_influence": "0.1.0",
    "version.keras": "3.15.0",
    "version.tensorflow": "2.21.0",
    "version.mlflow": "3.17.2",
    "version.numpy": "2.3.1",
    "keras_backend": "tensorflow",
    "cpu": "Example CPU @ 2.0GHz",
    "tf_threads": "2",
}
# test/norm_loss by arm and seed: 'close' within ±0.05 of the baseline on every seed, 'far' 0.5 above it
LOSS = {
    "baseline": [1.0, 1.1, 0.9, 1.2, 0.95, 1.05],
    "close": [1.01, 1.08, 0.93, 1.18, 0.96, 1.04],
    "far": [1.5, 1.6, 1.4, 1.7, 1.45, 1.55],
}


def record(arm: str, dataset: str, seed: int, tags: dict[str, str], start: int) -> RunRecord:
    base = {"strategy": arm, "arm": arm, "dataset": dataset, "seed": str(seed), "run_type": "train"}
    return RunRecord(
        run_id=f"{arm}-{dataset}-{seed}",
        run_name=f"{arm}-{dataset}-s{seed}",
        status="FINISHED",
        start_time=start,
        end_time=start + 1,
        tags={**base, "config_hash": f"{arm}-{dataset}-{seed}", **tags},
        params={"seed": str(seed), "train.epochs": "4", "train.target_norm_loss": "0.5", "dataset.data_seed": "0"},
        metrics={
            "test/norm_loss": LOSS[arm][seed],
            "conv/aulc": LOSS[arm][seed] + 0.1,
            "stab/diverged": 0.0,
            "conv/reached_target": 0.0,
        },
    )


def sweep(environment_of) -> list[RunRecord]:
    """Two datasets × three arms × six seeds; ``environment_of(arm, dataset, seed)`` gives the provenance tags."""
    runs, t = [], 1_000
    for dataset in ("text", "financial"):
        for arm in LOSS:
            for seed in range(6):
                t += 1
                runs.append(record(arm, dataset, seed, environment_of(arm, dataset, seed), t))
    return runs


def data_of(records):
    history = pd.DataFrame(columns=["run_id", "metric", "step", "value"])
    return assemble(Source("env-test", "1", "sqlite:///x.db"), records, history)


def test_one_environment_lists_every_tag_and_warns_of_nothing():
    data = data_of(sweep(lambda *_: TF))
    environments = run_environments(data)
    assert len(environments) == 36 and list(environments.columns[3:]) == list(PROVENANCE_TAGS)
    assert (environments["version.jax"] == "—").all()  # a TensorFlow run has no reason to log JAX's version
    counts = environment_counts(environments)
    assert len(counts) == 1 and counts.at[0, "runs"] == 36
    assert mixed_comparisons(environments, "baseline").empty


def test_a_comparison_that_mixes_commits_or_backends_is_named():
    def env(arm, dataset, seed):
        if dataset == "text" and arm == "far" and seed >= 3:
            return {**TF, "mlflow.source.git.commit": COMMIT_B}
        if dataset == "financial" and arm == "baseline" and seed == 0:
            return {k: v for k, v in TF.items() if k != "version.tensorflow"} | {"keras_backend": "jax"}
        return TF

    environments = run_environments(data_of(sweep(env)))
    mixed = mixed_comparisons(environments, "baseline")
    by = {(r.dataset, r.arm, r.tag): r.values for r in mixed.itertuples()}
    assert by[("text", "far", "mlflow.source.git.commit")] == f"{COMMIT_A}; {COMMIT_B}"
    assert ("text", "close", "mlflow.source.git.commit") not in by  # its runs and the control's agree
    # the control's one JAX run mixes every financial comparison; it did not log JAX's version: 'not recorded'
    for arm in ("close", "far"):
        assert by[("financial", arm, "keras_backend")] == "jax; tensorflow"
        assert by[("financial", arm, "version.jax")] == f"{NOT_RECORDED}; —"
        assert by[("financial", arm, "version.tensorflow")] == "2.21.0; —"
    assert len(environment_counts(environments)) == 3


def test_runs_without_provenance_read_not_recorded():
    environments = run_environments(data_of(sweep(lambda *_: {"tf_threads": "1"})))
    assert (environments["mlflow.source.git.commit"] == NOT_RECORDED).all()
    assert (environments["version.jax"] == NOT_RECORDED).all()  # no backend recorded: nothing can be inferred
    assert (environments["tf_threads"] == "1").all()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A report folder built from files, its rebuild, and a rebuild of a folder that predates provenance."""

    def env(arm, dataset, seed):
        return {**TF, "mlflow.source.git.commit": COMMIT_B} if (arm, seed) == ("far", 5) else TF

    root = tmp_path_factory.mktemp("env")
    write_raw(data_of(sweep(env)), root / "raw")
    declaration = Declaration(
        source="conf/analysis/env.yaml", margins={"test/norm_loss": 0.05}, equivalence_arms=("close",)
    )
    settings = {"declaration": declaration, "margins": {"conv/aulc": 0.001}}
    first = analyse_files(root / "raw", out_dir=root / "first", **settings)
    second = analyse_files(root / "first", out_dir=root / "second", **settings)
    write_raw(data_of(sweep(lambda *_: {})), root / "old")
    (root / "old" / KNOWN_FILE).write_text("Ran on commit 1234567 with TensorFlow 2.21.\n", encoding="utf-8")
    old = analyse_files(root / "old", out_dir=root / "old-report")
    return first, second, old


def test_report_names_the_environment_and_warns_where_a_comparison_mixes(shipped):
    first, _, _ = shipped
    text = first.report.read_text(encoding="utf-8")
    section = text[text.index("## Environment") : text.index("## Runs")]
    # seed 5 of 'far' ran on another commit, on both datasets: 2 of 36 runs, 2 comparisons
    assert f"| 34 | `{COMMIT_A[:12]}` | false | 3.11.9 | 0.1.0 | 3.15.0 | 2.21.0 | — | 3.17.2 | 2.3.1 |" in section
    assert f"| 2 | `{COMMIT_B[:12]}` |" in section
    assert "**Warning: 2 comparison(s) mix environments.**" in section
    for dataset in ("financial", "text"):
        assert f"| {dataset} | far | `mlflow.source.git.commit` | {COMMIT_A}; {COMMIT_B} |" in section
    assert "| close |" not in section
    lines = (first.out_dir / ENVIRONMENT_FILE).read_text(encoding="utf-8").splitlines()
    assert f"34 runs | mlflow.source.git.commit={COMMIT_A} | git_dirty=false" in "\n".join(lines)
    assert any(line.startswith("2 runs | ") and COMMIT_B in line for line in lines)


def test_report_states_equivalence_declared_and_ad_hoc(shipped):
    first, _, _ = shipped
    text = first.report.read_text(encoding="utf-8")
    section = text[text.index("## Equivalence") : text.index("## Solved rate")]
    declared, ad_hoc = section.split("### `conv/aulc`")
    assert "declared in advance in `conf/analysis/env.yaml`: a confirmatory family of 2, Holm-corrected" in declared
    # 6 pairs inside ±0.05: p equiv = 1/64 on each dataset, 2/64 after Holm over the 2 declared tests
    row = next(line for line in declared.splitlines() if line.startswith("| text | close |"))
    assert row.endswith(f"| {1 / 64:.3g} | **{2 / 64:.3g}** | **equivalent within ±0.05** |"), row
    assert "| far |" not in declared  # the declaration tests 'close' only
    # ±0.001 is narrower than every difference: not shown, and labelled exploratory
    assert "ad hoc (`--margin`), exploratory: Holm over its 2 tests" in ad_hoc
    row = next(line for line in ad_hoc.splitlines() if line.startswith("| text | close |"))
    assert row.endswith("| not shown |") and float(row.split("|")[-4]) > 0.05, row
    assert "equivalent within" not in ad_hoc
    summary = pd.read_csv(first.out_dir / "summary.csv")
    primary = summary[summary["metric"] == "test/norm_loss"].set_index(["dataset", "strategy"])
    assert primary.at[("text", "close"), "margin"] == 0.05 and primary.at[("text", "close"), "p_equiv"] == 1 / 64
    assert pd.isna(primary.at[("text", "baseline"), "p_equiv"]) and pd.isna(primary.at[("text", "far"), "margin"])


def test_rebuild_from_files_is_byte_identical(shipped):
    first, second, _ = shipped
    for name in ("report.md", "summary.csv", ENVIRONMENT_FILE, RUNS_FILE):
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name


def test_runs_that_predate_provenance_say_not_recorded_and_quote_what_is_known(shipped):
    _, _, old = shipped
    text = old.report.read_text(encoding="utf-8")
    assert "36 of 36 runs do not record their commit, versions or backend" in text
    assert "> Ran on commit 1234567 with TensorFlow 2.21." in text
    assert "Warning" not in text[text.index("## Environment") :].split("## Runs")[0]
    environment = (old.out_dir / ENVIRONMENT_FILE).read_text(encoding="utf-8")
    assert f"36 runs | mlflow.source.git.commit={NOT_RECORDED}" in environment
    assert environment.endswith("\nRan on commit 1234567 with TensorFlow 2.21.\n")
    assert (old.out_dir / KNOWN_FILE).is_file()  # shipped on with the rebuild


def test_compare_script_takes_margins_and_a_preset(shipped, tmp_path, capsys):
    compare = experiment_script("compare")
    raw = shipped[0].out_dir
    preset = tmp_path / "declared.yaml"
    preset.write_text("margins:\n  test/norm_loss: 0.05\nequivalence_arms: [close]\n", encoding="utf-8")
    out = tmp_path / "cli"
    assert compare.main(["--from", str(raw), "--out", str(out), "--preset", str(preset)]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert f"declared in advance in `{preset}`: a confirmatory family of 2" in text
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["margin"].dropna()) == {0.05}
    assert compare.main(["--from", str(raw), "--out", str(out), "--margin", "test/norm_loss=0.05"]) == 0
    assert "ad hoc (`--margin`), exploratory" in (out / "report.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        compare.main(["--from", str(raw), "--out", str(out), "--margin", "test/norm_loss=-1"])
    assert "positive finite" in capsys.readouterr().err
    assert compare.main(["--from", str(raw), "--out", str(out), "--preset", "no_such_preset"]) == 2
