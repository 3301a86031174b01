"""Analysis on a real (temporary) MLflow store with known metric values.

The expected statistics are computed here independently (by hand, by brute-force enumeration of every sign pattern
or split, or by a root finder), then compared with what the analysis package reports, in its frames, in report.md,
in the shipped files and on the sweep's parent run.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from scipy import optimize, stats

from lstm_influence import tracking
from lstm_influence.analysis import AnalysisResult, analyse, load_sweep
from lstm_influence.analysis.estimators import holm, iqm, iqm_interval, kaplan_meier_median, probability_of_improvement
from lstm_influence.analysis.markdown import fmt, fmt_interval
from lstm_influence.analysis.pipeline import FIGURES
from lstm_influence.analysis.run_sections import tuning_section
from lstm_influence.analysis.summaries import SUMMARY_COLUMNS
from tests.helpers import Store, experiment_script, run_python

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT = "analysis-test"
EPOCHS = 6

# test/norm_loss by dataset, strategy, seed (None: not logged)
NORM_LOSS = {
    ("synthetic", "baseline"): [0.50, 0.55, 0.60, 0.45, 0.70],
    ("synthetic", "bias_init"): [0.20, 0.25, 0.30, 0.22, 0.90],
    ("synthetic", "custom_init"): [0.40, 0.52, 0.48, None],  # seed 3 diverges and logs no test loss
    ("text", "baseline"): [0.80, 0.85, 0.90, 0.82, 0.88],
    ("text", "bias_init"): [0.60],  # a single seed
    ("text", "custom_init"): [0.70, 0.75],
}
# conv/epochs_to_target (None: target never reached)
EPOCHS_TO_TARGET = {
    ("synthetic", "baseline"): [5, None, 6, 4, None],
    ("synthetic", "bias_init"): [2, 3, 2, 3, 4],
    ("synthetic", "custom_init"): [4, 5, None, None],
    ("text", "baseline"): [None] * 5,
    ("text", "bias_init"): [3],
    ("text", "custom_init"): [None, 6],
}
DIVERGED = {("synthetic", "custom_init", 3)}
RETENTION = {"bias_init": 0.8, "custom_init": 0.4}
# reference predictors: ridge is the same on every run of a dataset; text's persistence disagrees on one run
REFERENCES = {("synthetic", "ridge"): 0.31, ("text", "ridge"): 0.93, ("text", "persistence"): 1.7}


def _ms(t: float) -> int:
    return int(t * 1000)


def _make_run(
    client,
    exp_id,
    *,
    strategy,
    dataset,
    seed,
    sweep_id,
    parent_id,
    start,
    status="FINISHED",
    metrics=None,
    history=None,
    extra_tags=None,
    run_type="train",
    config_hash=None,
):
    tags = {
        "strategy": strategy,
        "dataset": dataset,
        "seed": str(seed),
        "config_hash": config_hash or f"{strategy}-{dataset}-{seed}-{sweep_id}",
        "run_type": run_type,
    }
    if sweep_id:
        tags["sweep_id"] = sweep_id
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    tags.update(extra_tags or {})
    run = client.create_run(exp_id, start_time=_ms(start), tags=tags, run_name=f"{strategy}-{dataset}-s{seed}")
    rid = run.info.run_id
    params = {
        "seed": seed,
        "train.epochs": EPOCHS,
        "train.learning_rate": 0.01,
        "train.target_norm_loss": 0.3,
        "model.units": 8,
        "strategy.name": strategy,
        "dataset.name": dataset,
    }
    ms = [Metric(k, float(v), _ms(start), 0) for k, v in (metrics or {}).items()]
    ms += [Metric("val/norm_loss", float(v), _ms(start) + step, step) for step, v in (history or [])]
    client.log_batch(rid, metrics=ms, params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(rid, status=status, end_time=_ms(start + 1))
    return rid


def _curve(final: float) -> list[tuple[int, float]]:
    return [(e, final + (1 - final) * 0.5 ** (e - 1)) for e in range(1, EPOCHS + 1)]


class Analysed(NamedTuple):
    """The module's store with known runs, and the analysis of its latest sweep."""

    uri: str
    client: MlflowClient  # the store's client, from tracking.make_client
    parent: str  # the latest sweep's parent run id
    ids: dict  # (dataset, strategy, seed), "superseded" or "failed" -> run id
    result: AnalysisResult  # analyse() of the latest sweep, with conv/aulc as an extra metric
    out: Path  # the analysis's out folder
    root: Path  # the store's folder


@pytest.fixture(scope="module")
def analysed(mlflow_store: Store) -> Analysed:
    """A sqlite store: an old sweep, the latest sweep (known values, a FAILED, a diverged, a superseded and a
    tuning run), and a second experiment with no sweep parent; and the analysis of the latest sweep."""
    root, uri = mlflow_store
    client = tracking.make_client(uri)
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    t0 = time.time() - 10_000

    old = client.create_run(
        exp_id, start_time=_ms(t0), tags={"run_type": "sweep", "sweep_id": "sweep-old"}, run_name="sweep-old"
    )
    for seed in range(2):
        _make_run(
            client,
            exp_id,
            strategy="baseline",
            dataset="synthetic",
            seed=seed,
            sweep_id="sweep-old",
            parent_id=old.info.run_id,
            start=t0 + 1 + seed,
            metrics={"test/norm_loss": 9.0},
        )
    client.set_terminated(old.info.run_id, "FINISHED")

    t1 = t0 + 100
    parent = client.create_run(
        exp_id, start_time=_ms(t1), tags={"run_type": "sweep", "sweep_id": "sweep-new"}, run_name="sweep-new"
    )
    pid = parent.info.run_id
    client.log_param(pid, "sweep.overrides", "strategy=baseline,bias_init,custom_init dataset=synthetic,text")
    ids = {}
    t = t1 + 10
    for (dataset, strategy), losses in NORM_LOSS.items():
        for seed, loss in enumerate(losses):
            ett = EPOCHS_TO_TARGET[(dataset, strategy)][seed]
            diverged = (dataset, strategy, seed) in DIVERGED
            m = {
                "stab/diverged": float(diverged),
                "conv/reached_target": float(ett is not None),
                "stab/grad_spikes": seed % 3,
            }
            if loss is not None:
                m["test/norm_loss"] = loss
            if ett is not None:
                m["conv/epochs_to_target"] = ett
            if strategy in RETENTION:
                m["influence/retention"] = RETENTION[strategy] + 0.01 * seed
            # the diverged run logs the best AULC of all: it must still rank worst
            m["conv/aulc"] = 0.01 if diverged else (loss or 1.0) + 0.1
            for (ds, predictor), value in REFERENCES.items():
                if ds == dataset:
                    off = 0.05 if (predictor == "persistence" and strategy == "custom_init" and seed == 1) else 0
                    m[f"baseline/{predictor}/test_norm_loss"] = value + off
            hist = [(1, 0.9), (2, 0.8), (3, float("inf"))] if diverged else _curve(loss)
            t += 1
            ids[(dataset, strategy, seed)] = _make_run(
                client,
                exp_id,
                strategy=strategy,
                dataset=dataset,
                seed=seed,
                sweep_id="sweep-new",
                parent_id=pid,
                start=t,
                metrics=m,
                history=hist,
            )
    # an earlier attempt of synthetic/baseline/seed 0 with the same config hash: superseded
    ids["superseded"] = _make_run(
        client,
        exp_id,
        strategy="baseline",
        dataset="synthetic",
        seed=0,
        sweep_id="sweep-new",
        parent_id=pid,
        start=t1 + 5,
        metrics={"test/norm_loss": 5.0},
        config_hash="baseline-synthetic-0-sweep-new",
    )
    ids["failed"] = _make_run(
        client,
        exp_id,
        strategy="bias_init",
        dataset="text",
        seed=1,
        sweep_id="sweep-new",
        parent_id=pid,
        start=t + 1,
        status="FAILED",
        extra_tags={"error": "ValueError: boom in the strategy"},
    )
    _make_run(
        client,
        exp_id,
        strategy="bias_init",
        dataset="text",
        seed=7,
        sweep_id="sweep-new",
        parent_id=None,
        start=t + 2,
        run_type="trial",
        metrics={"test/norm_loss": 0.01},
    )
    client.set_terminated(pid, "FINISHED")

    flat = client.create_experiment("no-sweep", artifact_location=(root / "artifacts2").as_uri())
    for strategy, values in {"baseline": [0.5, 0.6], "bias_init": [0.3, 0.4]}.items():
        for seed, v in enumerate(values):
            _make_run(
                client,
                flat,
                strategy=strategy,
                dataset="synthetic",
                seed=seed,
                sweep_id=None,
                parent_id=None,
                start=t + 10 + seed,
                metrics={"test/norm_loss": v},
                history=_curve(v),
            )

    out = root / "out"
    result = analyse(EXPERIMENT, tracking_uri=uri, out_dir=out, metrics=["conv/aulc"])
    return Analysed(uri, client, pid, ids, result, out, root)


# ------------------------------------------------------------------------------------------- independent maths


def hand_iqm(x) -> float:
    x = np.sort(np.asarray(x, dtype=float))
    k = int(0.25 * x.size)
    return float(x[k : x.size - k].mean())


def hand_tukey_mclaughlin(x, confidence=0.95):
    """Trimmed mean ± t(h-1) · sqrt((n-1) s_w² / (h (h-1))), s_w² the winsorized variance."""
    x = np.sort(np.asarray(x, dtype=float))
    n = x.size
    g = int(0.25 * n)
    h = n - 2 * g
    w = x.copy()
    w[:g] = x[g]
    w[n - g :] = x[n - g - 1]
    se = np.sqrt((n - 1) * np.var(w, ddof=1) / (h * (h - 1)))
    half = stats.t.ppf(0.5 + confidence / 2, h - 1) * se
    return hand_iqm(x) - half, hand_iqm(x) + half


def hand_poi(x, y) -> float:
    """P(x < y) + ½ P(x = y): lower is better."""
    x, y = np.asarray(x, float)[:, None], np.asarray(y, float)[None, :]
    return float(np.mean((x < y) + 0.5 * (x == y)))


def hand_newcombe(theta, m, n, z=1.959963984540054):
    """Newcombe's method 5 by a root finder: (theta - t)^2 = z^2 V(t) below and above theta."""
    k = (m + n) / 2 - 1

    def f(t):
        v = t * (1 - t) / (m * n) * (1 + k * ((1 - t) / (2 - t) + t / (1 + t)))
        return (theta - t) ** 2 - z**2 * v

    low = 0.0 if theta == 0 else optimize.brentq(f, 0.0, theta - 1e-12)
    high = 1.0 if theta == 1 else optimize.brentq(f, theta + 1e-12, 1.0)
    return low, high


def hand_signed_rank_p(d):
    """Enumerate every sign pattern of the non-zero differences; ranks of |d| with midranks."""
    d = np.asarray([v for v in d if v != 0], dtype=float)
    r = stats.rankdata(np.abs(d))
    observed = abs(np.sum(np.sign(d) * r))
    hits = [abs(np.dot(signs, r)) >= observed - 1e-9 for signs in itertools.product([-1, 1], repeat=d.size)]
    return float(np.mean(hits))


def hand_rank_sum_p(x, y):
    """Enumerate every split of the pooled runs into groups of len(x) and len(y); midranks."""
    pooled = np.concatenate([x, y])
    r = stats.rankdata(pooled)
    centre = len(x) * (len(pooled) + 1) / 2
    observed = abs(r[: len(x)].sum() - centre)
    hits = [
        abs(r[list(c)].sum() - centre) >= observed - 1e-9 for c in itertools.combinations(range(len(pooled)), len(x))
    ]
    return float(np.mean(hits))


def hand_hodges_lehmann(d, confidence=0.95):
    """Median of Walsh averages; interval from the W+ distribution enumerated over all 2^n sign patterns."""
    d = np.asarray(d, dtype=float)
    n = d.size
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(n) for j in range(i, n)])
    w_plus = [sum(i + 1 for i, s in enumerate(signs) if s) for signs in itertools.product([0, 1], repeat=n)]
    counts = np.bincount(w_plus) / 2**n
    cdf = np.cumsum(counts)
    k = max([c + 1 for c in range(cdf.size) if cdf[c] <= (1 - confidence) / 2] or [1])
    return float(np.median(walsh)), float(walsh[k - 1]), float(walsh[walsh.size - k])


def hand_holm(p):
    p = np.asarray(p, float)
    order = np.argsort(p)
    m = p.size
    adj, running = np.empty(m), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def scores_of(dataset, strategy, table=NORM_LOSS, worst=np.inf):
    return [worst if v is None else v for v in table[(dataset, strategy)]]


def row(summary, dataset, strategy):
    r = summary[(summary["dataset"] == dataset) & (summary["arm"] == strategy)]
    assert len(r) == 1, (dataset, strategy)
    return r.iloc[0]


# ------------------------------------------------------------------------------------------- pure functions


def test_holm_matches_hand_computation_and_keeps_nan():
    p = [0.01, 0.04, 0.03, np.nan, 0.2]
    expected = hand_holm([0.01, 0.04, 0.03, 0.2])
    got = holm(p)
    np.testing.assert_allclose(np.delete(got, 3), expected)
    assert np.isnan(got[3])
    np.testing.assert_allclose(expected, [0.04, 0.09, 0.09, 0.2])


def test_probability_of_improvement_direction_and_ties():
    assert probability_of_improvement([1, 2], [3, 4]) == 1.0  # lower losses: always better
    assert probability_of_improvement([1, 2], [3, 4], lower_is_better=False) == 0.0
    assert probability_of_improvement([1, 3], [3, 3]) == hand_poi([1, 3], [3, 3]) == 0.75
    assert np.isnan(probability_of_improvement([], [1.0]))


def test_kaplan_meier_median_with_censoring():
    # events at 4, 5, 6; two runs censored at the budget 6: S = .8, .6, .4 -> median 6
    km = kaplan_meier_median([5, 6, 6, 4, 6], [True, False, True, True, False])
    assert km.median == 6 and km.n_events == 3 and km.n == 5
    assert km.low <= km.median
    never = kaplan_meier_median([6, 6, 6], [False, False, False])
    assert np.isnan(never.median) and never.n_events == 0
    # with censored runs S(t) never reaches 0: the upper end stays open ("> budget")
    assert np.isnan(km.high)


def test_kaplan_meier_interval_closes_once_every_run_reached_the_target():
    # S = .8 after 11, 0 after 12: the band collapses onto S where S is 0, so the median lies in [11, 12]
    km = kaplan_meier_median([11, 12, 12, 12, 12], [True] * 5)
    assert (km.median, km.low, km.high) == (12, 11, 12)
    same = kaplan_meier_median([1, 1, 1, 1, 1], [True] * 5)
    assert (same.median, same.low, same.high) == (1, 1, 1)


def test_tuning_hook_renders_a_table():
    assert tuning_section(None) == ""
    frame = pd.DataFrame({"strategy": ["a", "b"], "value": [0.5, 0.25]})
    text = tuning_section(frame)
    assert text.startswith("## Tuning") and text.index("| b |") < text.index("| a |")


# ------------------------------------------------------------------------------------------- loading


def test_tidy_frames(analysed):
    data = analysed.result.data
    runs = data.runs
    n_expected = sum(len(v) for v in NORM_LOSS.values())
    assert int(runs["included"].sum()) == n_expected
    assert data.sweep["sweep_id"] == "sweep-new" and data.sweep["run_id"] == analysed.parent
    assert data.ignored == {"trial": 1}
    assert any("2 sweeps" in n for n in data.notes)
    left = data.left_out.set_index("run_id")
    assert "boom" in left.at[analysed.ids["failed"], "reason"]
    assert left.at[analysed.ids["failed"], "status"] == "FAILED"
    assert "superseded" in left.at[analysed.ids["superseded"], "reason"]
    assert set(data.metrics.columns) == {"run_id", "dataset", "arm", "seed", "metric", "value"}
    rid = analysed.ids[("synthetic", "bias_init", 2)]
    value = data.metrics.query("run_id == @rid and metric == 'test/norm_loss'")["value"]
    assert value.tolist() == [0.30]
    h = data.history[data.history["run_id"] == rid]
    assert h["step"].tolist() == list(range(1, EPOCHS + 1))
    assert h["value"].tolist() == pytest.approx([v for _, v in _curve(0.30)])
    diverged = runs.set_index("run_id").loc[analysed.ids[("synthetic", "custom_init", 3)]]
    assert diverged["diverged"] and diverged["budget"] == EPOCHS


def test_old_sweep_by_id_and_unknown_names(analysed):
    old = load_sweep(EXPERIMENT, sweep_id="sweep-old", tracking_uri=analysed.uri)
    assert int(old.runs["included"].sum()) == 2
    assert (old.metrics.query("metric == 'test/norm_loss'")["value"] == 9.0).all()
    with pytest.raises(ValueError, match="sweep-new"):
        load_sweep(EXPERIMENT, sweep_id="nope", tracking_uri=analysed.uri)
    with pytest.raises(ValueError, match=EXPERIMENT):
        load_sweep("missing-experiment", tracking_uri=analysed.uri)


# ------------------------------------------------------------------------------------------- statistics


def test_iqm_and_its_interval(analysed):
    summary = analysed.result.summaries["test/norm_loss"]
    for (dataset, strategy), values in NORM_LOSS.items():
        finite = [v for v in values if v is not None]
        r = row(summary, dataset, strategy)
        assert r["iqm"] == pytest.approx(hand_iqm(finite))
        assert r["median"] == pytest.approx(np.median(finite))
        if len(finite) >= 2:
            assert (r["iqm_low"], r["iqm_high"]) == pytest.approx(hand_tukey_mclaughlin(finite))
    # 5 values: the IQM drops the best and the worst seed, so the 0.90 outlier of bias_init does not count
    assert row(summary, "synthetic", "bias_init")["iqm"] == pytest.approx(np.mean([0.22, 0.25, 0.30]))


def test_probability_of_improvement_and_newcombe_interval(analysed):
    summary = analysed.result.summaries["test/norm_loss"]
    for dataset, strategy in [("synthetic", "bias_init"), ("synthetic", "custom_init"), ("text", "custom_init")]:
        x, y = scores_of(dataset, strategy), scores_of(dataset, "baseline")
        r = row(summary, dataset, strategy)
        assert r["poi"] == pytest.approx(hand_poi(x, y))
        assert (r["poi_low"], r["poi_high"]) == pytest.approx(hand_newcombe(hand_poi(x, y), len(x), len(y)), abs=1e-9)
    # complete separation still gives an open interval
    separated = row(summary, "text", "custom_init")
    assert separated["poi"] == 1.0 and separated["poi_low"] < 0.9 and separated["poi_high"] == 1.0


def test_paired_signed_rank_p_difference_and_interval(analysed):
    """synthetic: bias_init and baseline have seeds 0-4 each, so the comparison is paired by seed."""
    summary = analysed.result.summaries["test/norm_loss"]
    r = row(summary, "synthetic", "bias_init")
    d = np.subtract(NORM_LOSS[("synthetic", "bias_init")], NORM_LOSS[("synthetic", "baseline")])
    assert r["test"] == "signed-rank exact" and r["n_pairs"] == 5
    assert r["p_value"] == pytest.approx(hand_signed_rank_p(d))
    # 4 of 5 seeds better, the one worse seed has the smallest |d| (W+ = 1): P(W+ <= 1 or >= 14) = 4/32
    assert r["p_value"] == pytest.approx(4 / 32)
    estimate, low, high = hand_hodges_lehmann(d)
    assert (r["diff"], r["diff_low"], r["diff_high"]) == pytest.approx((estimate, low, high))
    assert r["diff_coverage"] == pytest.approx(1 - 2 / 32)


def test_unpaired_cells_fall_back_to_exact_rank_sum(analysed):
    """synthetic custom_init has seeds 0-3 (seed 3 diverged), baseline 0-4: seed 4 has no partner."""
    summary = analysed.result.summaries["test/norm_loss"]
    r = row(summary, "synthetic", "custom_init")
    x, y = scores_of("synthetic", "custom_init"), scores_of("synthetic", "baseline")
    assert r["test"] == "rank-sum exact" and r["n_pairs"] == 4
    assert r["p_value"] == pytest.approx(hand_rank_sum_p(x, y))
    assert r["p_min"] == pytest.approx(2 / 126)
    ps = summary.loc[summary["p_value"].notna() & (summary["dataset"] != "all"), "p_value"].to_numpy()
    holms = summary.loc[summary["p_value"].notna() & (summary["dataset"] != "all"), "p_holm"].to_numpy()
    np.testing.assert_allclose(holms, hand_holm(ps))


def test_mean_ranks_within_dataset_and_seed(analysed):
    summary = analysed.result.summaries["test/norm_loss"]
    # synthetic blocks: seeds 0-3 hold all three arms (custom_init's seed 3 diverged: worst rank)
    arms = ["baseline", "custom_init", "bias_init"]
    blocks = np.array([[scores_of("synthetic", a)[s] for a in arms] for s in range(4)])
    expected = stats.rankdata(blocks, axis=1).mean(axis=0)
    for arm, rank in zip(arms, expected):
        r = row(summary, "synthetic", arm)
        assert r["mean_rank"] == pytest.approx(rank) and r["n_blocks"] == 4
        assert r["mean_rank_low"] <= r["mean_rank"] <= r["mean_rank_high"]


def test_diverged_run_ranks_worst_whatever_it_logged(analysed):
    summary = analysed.result.summaries["conv/aulc"]
    r = row(summary, "synthetic", "custom_init")
    assert r["n_worst"] == 1 and r["n_diverged"] == 1
    finite = [v + 0.1 for v in NORM_LOSS[("synthetic", "custom_init")] if v is not None]
    assert r["iqm"] == pytest.approx(hand_iqm(finite))  # its 0.01 is not averaged in
    x = [0.5, 0.62, 0.58, np.inf]
    assert r["poi"] == pytest.approx(hand_poi(x, [v + 0.1 for v in NORM_LOSS[("synthetic", "baseline")]]))


def test_divergence_rate_with_clopper_pearson_interval(analysed):
    summary = analysed.result.summaries["test/norm_loss"]
    r = row(summary, "synthetic", "custom_init")
    assert r["n_diverged"] == 1 and r["divergence_rate"] == 0.25
    ci = stats.binomtest(1, 4).proportion_ci(method="exact")
    assert (r["divergence_low"], r["divergence_high"]) == pytest.approx((ci.low, ci.high))
    assert row(summary, "synthetic", "baseline")["divergence_rate"] == 0


def test_single_seed_has_no_interval(analysed):
    summary = analysed.result.summaries["test/norm_loss"]
    r = row(summary, "text", "bias_init")
    assert r["n_runs"] == 1 and r["iqm"] == pytest.approx(0.6)
    assert np.isnan(r["iqm_low"]) and np.isnan(r["iqm_high"]) and np.isnan(r["poi_low"])
    assert r["poi"] == 1.0


def test_epochs_to_target_is_censored_not_dropped(analysed):
    summary = analysed.result.summaries["conv/epochs_to_target"]
    base = row(summary, "synthetic", "baseline")
    censored = [EPOCHS + 1 if v is None else v for v in EPOCHS_TO_TARGET[("synthetic", "baseline")]]
    assert base["n_runs"] == 5 and base["n_censored"] == 2 and base["n_reached"] == 3
    assert base["iqm"] == pytest.approx(hand_iqm(censored))
    assert base["km_median"] == 6
    x = [EPOCHS + 1 if v is None else v for v in EPOCHS_TO_TARGET[("synthetic", "bias_init")]]
    r = row(summary, "synthetic", "bias_init")
    assert r["poi"] == pytest.approx(hand_poi(x, censored))
    assert r["p_value"] == pytest.approx(hand_signed_rank_p(np.subtract(x, censored)))
    assert np.isnan(row(summary, "text", "baseline")["km_median"])  # never reached within the budget


def test_aggregate_rows_are_scale_free(analysed):
    summary = analysed.result.summaries["test/norm_loss"]
    r = row(summary, "all", "custom_init")
    cells = [row(summary, d, "custom_init") for d in ("synthetic", "text")]
    assert r["poi"] == pytest.approx(np.mean([c["poi"] for c in cells]))
    low = r["poi"] - np.sqrt(sum((c["poi"] - c["poi_low"]) ** 2 for c in cells)) / 2
    assert r["poi_low"] == pytest.approx(max(0.0, low))
    assert np.isnan(r["iqm"]) and np.isnan(r["median"])  # no location pooled across datasets
    # mean rank across datasets: each dataset's mean rank weighted equally
    ranks = [row(summary, d, "custom_init")["mean_rank"] for d in ("synthetic", "text")]
    assert r["mean_rank"] == pytest.approx(np.mean(ranks))


def test_reference_predictors_are_reported_and_disagreement_flagged(analysed):
    from lstm_influence.analysis.bands import reference_predictors

    data = analysed.result.data
    refs = reference_predictors(data.metrics, data.runs).set_index(["dataset", "predictor", "split"])
    assert refs.at[("synthetic", "ridge", "test"), "value"] == pytest.approx(0.31)
    assert refs.at[("synthetic", "ridge", "test"), "agree"]
    assert not refs.at[("text", "persistence", "test"), "agree"]
    assert refs.at[("text", "persistence", "test"), "high"] == pytest.approx(1.75)
    text = analysed.result.report.read_text(encoding="utf-8")
    assert "## Reference predictors" in text and "| synthetic | `ridge` | 0.31 | 14 | yes |" in text
    assert "**no**: 1.7 to 1.75" in text


def test_convergence_bands_are_per_epoch_iqm(analysed):
    from lstm_influence.analysis.bands import convergence_bands

    data = analysed.result.data
    bands = convergence_bands(data.history)
    b = bands[(bands["dataset"] == "synthetic") & (bands["arm"] == "baseline")].set_index("step")
    at3 = [dict(_curve(v))[3] for v in NORM_LOSS[("synthetic", "baseline")]]
    assert b.at[3, "iqm"] == pytest.approx(hand_iqm(at3))
    assert b.at[3, "n"] == 5
    # the band is the summary tables' Tukey-McLaughlin interval of the IQM at that epoch
    assert (b.at[3, "low"], b.at[3, "high"]) == pytest.approx(tuple(max(float(v), 0.0) for v in iqm_interval(at3)))
    c = bands[(bands["dataset"] == "synthetic") & (bands["arm"] == "custom_init")].set_index("step")
    assert c.at[2, "n"] == 4 and c.at[3, "n"] == 3  # the diverged run leaves after its last finite epoch
    single = bands[(bands["dataset"] == "text") & (bands["arm"] == "bias_init")]
    assert single["low"].isna().all()
    assert iqm(np.array(at3)) == pytest.approx(hand_iqm(at3))


# ------------------------------------------------------------------------------------------- outputs


def test_report_and_figures_hold_the_numbers(analysed):
    result = analysed.result
    text = result.report.read_text(encoding="utf-8")
    summary = result.summaries["test/norm_loss"]
    r = row(summary, "synthetic", "bias_init")
    assert fmt_interval(r["iqm"], r["iqm_low"], r["iqm_high"]) in text
    assert fmt_interval(r["poi"], r["poi_low"], r["poi_high"], 2) in text
    assert fmt_interval(r["diff"], r["diff_low"], r["diff_high"]) in text
    assert "signed-rank (5)" in text and "rank-sum (4)" in text
    assert fmt(r["p_holm"]) in text
    assert "0.25 (1/4)" in text  # divergence rate of synthetic/custom_init
    assert "custom_init †" not in text and "bias_init †" in text and "a single seed" in text
    assert "boom in the strategy" in text and "superseded" in text
    assert "sweep-new" in text and "strategy=baseline,bias_init,custom_init" in text
    assert "> 6 (not reached)" in text
    assert "1 with run_type=trial" in text
    assert "(lower is better; confirmatory (primary))" in text and "`conv/aulc` (lower is better; exploratory)" in text
    # the families table: 4 comparisons, smallest p 2/32 (paired, 5 pairs) ... after Holm 4 × that
    assert "| `test/norm_loss` | confirmatory | 4 |" in text
    # smallest: the 4-vs-5 rank-sum, 2/C(9, 4); 4 comparisons need 8 pairs for 4 · 2/2^8 ≤ 0.05
    assert f"| {fmt(2 / 126)} | {fmt(8 / 126)} | 8 |" in text
    assert "Coverage at these sample sizes" in text
    for stem in ("convergence", "final_loss", "stability", "retention", "improvement"):
        for ext in ("png", "svg"):
            path = result.out_dir / "figures" / f"{stem}.{ext}"
            assert path.stat().st_size > 1000, path
        assert f"figures/{stem}.png" in text
    csv = pd.read_csv(result.out_dir / "summary.csv")
    assert set(csv["metric"]) == {"test/norm_loss", "conv/epochs_to_target", "conv/aulc"}
    for column in ("test", "n_pairs", "diff", "diff_low", "diff_high", "p_value", "p_holm", "n_worst"):
        assert column in csv.columns
    # the file keeps its column for the arm named strategy, where the frames call it arm
    assert "strategy" in csv.columns and "arm" not in csv.columns
    assert list(csv.columns) == [{"arm": "strategy"}.get(c, c) for c in SUMMARY_COLUMNS]


def test_raw_data_ship_with_the_report(analysed):
    out = analysed.out
    runs = pd.read_csv(out / "runs.csv", dtype=str, keep_default_na=False)
    ids = analysed.ids
    rid = ids[("synthetic", "bias_init", 2)]
    one = runs.set_index("run_id").loc[rid]
    assert float(one["metrics.test/norm_loss"]) == 0.30 and one["tags.strategy"] == "bias_init"
    assert one["params.train.epochs"] == str(EPOCHS) and one["role"] == "run" and one["included"] == "True"
    assert runs.set_index("run_id").at[analysed.parent, "role"] == "sweep"
    assert runs.set_index("run_id").at[ids["failed"], "included"] == "False"
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["run_id", "step", "metric", "value"]
    h = history[(history["run_id"] == rid) & (history["metric"] == "val/norm_loss")]
    assert h["value"].tolist() == pytest.approx([v for _, v in _curve(0.30)])


def test_rebuild_from_shipped_files_is_identical(analysed, tmp_path):
    """compare.py --from, in a fresh interpreter where any MLflow client raises, reproduces the report."""
    code = (
        "import runpy, sys\n"
        "from mlflow.tracking import MlflowClient\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('--from must not open an MLflow client')\n"
        "MlflowClient.__init__ = refuse\n"
        "sys.argv = ['experiments/compare.py', *sys.argv[1:]]\n"
        "runpy.run_path('experiments/compare.py', run_name='__main__')\n"
    )
    out = tmp_path / "rebuilt"
    args = ["--from", str(analysed.out), "--out", str(out), "--metric", "conv/aulc"]
    proc = run_python("-c", code, *args)
    assert proc.returncode == 0, proc.stderr
    for name in ("report.md", "summary.csv", "runs.csv", "history.csv"):
        assert (out / name).read_bytes() == (analysed.out / name).read_bytes(), name
    figures = sorted(p.relative_to(analysed.out) for p in (analysed.out / "figures").iterdir())
    assert len(figures) == 2 * len(FIGURES)
    for name in figures:
        assert (out / name).read_bytes() == (analysed.out / name).read_bytes(), name


def test_artifacts_are_on_the_parent_run(analysed):
    client, pid = analysed.client, analysed.parent
    assert analysed.result.logged_to == pid
    top = {Path(a.path).name for a in client.list_artifacts(pid, "analysis")}
    assert {"report.md", "summary.csv", "runs.csv", "history.csv", "figures"} <= top
    figs = {Path(a.path).name for a in client.list_artifacts(pid, "analysis/figures")}
    assert {"convergence.png", "solved_by_epoch.svg"} <= figs and len(figs) == 2 * len(FIGURES) == 14
    local = client.download_artifacts(pid, "analysis/report.md", str(analysed.root / "dl"))
    assert Path(local).read_text(encoding="utf-8") == analysed.result.report.read_text(encoding="utf-8")


def test_experiment_without_sweep_uses_all_finished_runs(analysed, tmp_path):
    result = analyse("no-sweep", tracking_uri=analysed.uri, out_dir=tmp_path)
    assert result.data.sweep is None and result.logged_to is None
    assert int(result.data.runs["included"].sum()) == 4
    text = result.report.read_text(encoding="utf-8")
    assert "no sweep parent run" in text
    r = row(result.summaries["test/norm_loss"], "synthetic", "bias_init")
    assert r["poi"] == 1.0 and r["p_value"] == pytest.approx(hand_signed_rank_p([0.3 - 0.5, 0.4 - 0.6]))


def test_cli_runs_without_tensorflow(analysed, tmp_path):
    """The script in a fresh interpreter: exit code, outputs, and neither TensorFlow nor Keras imported."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['experiments/compare.py', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_path('experiments/compare.py', run_name='__main__')\n"
        "finally:\n"
        "    bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "    assert not bad, bad\n"
    )
    args = [
        "--experiment",
        EXPERIMENT,
        "--tracking-uri",
        analysed.uri,
        "--out",
        str(tmp_path / "cli"),
        "--metric",
        "conv/aulc",
        "--no-log",
    ]
    proc = run_python("-c", code, *args)
    assert proc.returncode == 0, proc.stderr
    assert "report:" in proc.stdout
    assert (tmp_path / "cli" / "report.md").exists()
    assert "conv/aulc" in (tmp_path / "cli" / "report.md").read_text(encoding="utf-8")


def test_cli_error_names_the_experiments(analysed, capsys):
    compare = experiment_script("compare")
    assert compare.main(["--experiment", "nope", "--tracking-uri", analysed.uri, "--no-log"]) == 2
    assert EXPERIMENT in capsys.readouterr().err
