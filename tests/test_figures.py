"""Figures a reader can take in: one style per arm, names on the axes, nothing clipped or overlapping, honest bands.

The layout checks render each figure of a report with the Agg renderer and compare the bounding boxes of the texts
it actually drew (every ``Text.draw`` call), so a label that is clipped by the canvas or sits on another one fails,
whatever the figure looks like in a viewer.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.text import Text

from lstm_influence.analysis import pipeline, plots
from lstm_influence.analysis.bands import convergence_bands
from lstm_influence.analysis.coverage import clipped_band_coverage
from lstm_influence.analysis.estimators import iqm_interval
from lstm_influence.analysis.pipeline import analyse_files
from lstm_influence.analysis.rates import solved_rates

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
DPI = 150  # what the report saves at
TOLERANCE = 1.0  # pixels: anti-aliasing, not layout

#: Arm names as users write them: long, with underscores, one that must wrap.
LONG_NAMES = [
    "baseline",
    "uniform_stretched_t_max",
    "chrono_t_max_from_the_sequence_length",
    "forget_bias_two",
    "input_transform_learned",
    "extra_variable_rank_4",
    "zeros",
    "extra_full",
    "baseline_lr2",
    "uniform",
    "a_rather_long_arm_name",
    "x",
]


# ------------------------------------------------------------------------------------------- what was drawn


def drawn_texts(fig: Figure) -> list[tuple[str, object]]:
    """``(text, window extent)`` of every non-empty text the renderer drew, at the report's resolution."""
    boxes = []
    draw = Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            # the text's own box: an annotation's extent would also hold its arrow
            boxes.append((self.get_text(), Text.get_window_extent(self, renderer)))
        return draw(self, renderer)

    fig.set_dpi(DPI)
    with mock.patch.object(Text, "draw", record):
        FigureCanvasAgg(fig).draw()
    return boxes


def layout_problems(fig: Figure) -> list[str]:
    """Texts that leave the canvas and pairs of texts whose boxes overlap."""
    boxes = drawn_texts(fig)
    width, height = fig.bbox.width, fig.bbox.height
    problems = [
        f"outside the canvas: {text!r}"
        for text, b in boxes
        if b.x0 < -TOLERANCE or b.y0 < -TOLERANCE or b.x1 > width + TOLERANCE or b.y1 > height + TOLERANCE
    ]
    for (t1, a), (t2, b) in itertools.combinations(boxes, 2):
        dx = min(a.x1, b.x1) - max(a.x0, b.x0)
        dy = min(a.y1, b.y1) - max(a.y0, b.y0)
        if dx > TOLERANCE and dy > TOLERANCE:
            problems.append(f"overlap: {t1!r} / {t2!r}")
    return problems


def report_figures(source: Path, out: Path, **options) -> tuple[dict[str, Figure], str]:
    """The figures ``compare.py --from source`` makes, caught before they are saved, and its report."""
    caught: dict[str, Figure] = {}

    def catch(fig, out_dir, name, **kwargs):
        caught[name] = fig
        return []

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "save_figure", catch)
        result = analyse_files(source, out_dir=out, **options)
    return caught, result.report.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- studies to draw


def study_with_arms(source: Path, out: Path, arm_names: list[str], seeds: int = 3) -> Path:
    """A copy of a shipped study whose runs are relabelled as ``arm_names``: arm k re-uses the runs of the source's
    arm k mod (its number of arms), so any number of arms can be drawn from real curves. Arm k keeps
    ``seeds`` seeds, one fewer on every third arm, so counts and groups differ between arms."""
    runs = pd.read_csv(source / "runs.csv", dtype=str, keep_default_na=False)
    history = pd.read_csv(source / "history.csv", dtype=str, keep_default_na=False)
    trained = runs[runs["role"] == "run"]
    arm = trained["tags.arm"].where(trained["tags.arm"] != "", trained["tags.strategy"])
    source_arms = list(dict.fromkeys(arm))
    parts, histories = [runs[runs["role"] != "run"]], []
    for k, name in enumerate(arm_names):
        keep = seeds - (k % 3 == 2)
        pick = trained[(arm == source_arms[k % len(source_arms)]) & (trained["tags.seed"].astype(int) < keep)].copy()
        suffix = f"-{k}"
        old_ids = pick["run_id"].tolist()
        pick["run_id"] = pick["run_id"] + suffix
        pick["tags.arm"] = name
        pick["params.arm"] = name
        pick["tags.config_hash"] = pick["tags.config_hash"] + suffix
        pick["run_name"] = name + pick["run_name"].str.replace(r"^[^-]*", "", regex=True)
        pick["start_time"] = [str(1_000_000 * (k + 1) + i) for i in range(len(pick))]  # swept in the order given
        parts.append(pick)
        h = history[history["run_id"].isin(old_ids)].copy()
        h["run_id"] = h["run_id"] + suffix
        histories.append(h)
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(parts).to_csv(out / "runs.csv", index=False, lineterminator="\n")
    pd.concat(histories).to_csv(out / "history.csv", index=False, lineterminator="\n")
    return out


# ------------------------------------------------------------------------------------------- styles


def test_arm_styles_keep_twelve_arms_apart_even_in_greyscale():
    arms = LONG_NAMES
    styles = plots.arm_styles(arms)
    assert list(styles) == arms
    assert styles["baseline"] == {"color": "#000000", "marker": "o", "linestyle": "-"}
    # marker and line style survive greyscale: every pair of arms differs in them, up to 28 arms
    many = plots.arm_styles(["baseline", *[f"arm{i}" for i in range(27)]])
    pairs = [(st["marker"], str(st["linestyle"])) for st in many.values()]
    assert len(set(pairs)) == len(pairs) == 28
    assert len({st["marker"] for st in styles.values()}) == 12  # at 12 arms the marker alone tells them apart
    # colours from the colour-blind-safe set, all different up to the control plus nine arms
    others = [st["color"] for arm, st in styles.items() if arm != "baseline"]
    assert set(others) <= set(plots.TOL_MUTED)
    assert len(set(others[:9])) == 9
    assert "#000000" not in others


def test_the_control_is_black_wherever_it_is_and_the_styles_follow_the_order_given():
    styles = plots.arm_styles(["chrono", "baseline_lr2", "baseline", "zeros"], control="baseline_lr2")
    assert styles["baseline_lr2"] == plots.CONTROL_STYLE
    assert [styles[a]["color"] for a in ("chrono", "baseline", "zeros")] == list(plots.TOL_MUTED[:3])
    assert plots.arm_styles(["a", "a", "b"]).keys() == {"a", "b"}


def test_long_arm_names_wrap_at_their_separators():
    assert plots.arm_label("uniform") == "uniform"
    wrapped = plots.arm_label("chrono_t_max_from_the_sequence_length")
    assert wrapped.replace("\n", "") == "chrono_t_max_from_the_sequence_length"
    assert all(len(line) <= plots.LABEL_WIDTH for line in wrapped.split("\n"))
    assert wrapped.split("\n")[0].endswith("_")
    assert plots.arm_label("x" * 50, width=20).split("\n") == ["x" * 20, "x" * 20, "x" * 10]


# ------------------------------------------------------------------------------------------- layout


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """``reports(n)``: the figures and report of a study with the first ``n`` of :data:`LONG_NAMES` as its arms
    (the shipped short-range study's runs relabelled; its three tasks), built once per module."""
    source = RESULTS / "compare"
    if not (source / "runs.csv").is_file():
        pytest.skip("results/compare is not in this checkout")
    built: dict[int, tuple[dict[str, Figure], str]] = {}

    def make(n_arms: int) -> tuple[dict[str, Figure], str]:
        if n_arms not in built:
            root = tmp_path_factory.mktemp(f"arms{n_arms}")
            study = study_with_arms(source, root / "study", LONG_NAMES[:n_arms])
            built[n_arms] = report_figures(study, root / "out")
        return built[n_arms]

    return make


@pytest.mark.parametrize("n_arms", [2, 9, 12])
def test_no_text_is_clipped_or_overlaps_at_2_9_and_12_arms(n_arms, reports):
    figures, _ = reports(n_arms)
    assert set(figures) == set(pipeline.FIGURES)
    problems = {stem: layout_problems(fig) for stem, fig in figures.items()}
    assert problems == {stem: [] for stem in figures}
    # every arm is named on an axis or a panel of each figure that shows it, not only in a legend
    for stem in ("final_loss", "stability", "solved", "convergence"):
        texts = " ".join(t for t, _ in drawn_texts(figures[stem])).replace("\n", "")
        assert all(arm in texts for arm in LONG_NAMES[:n_arms]), stem


@pytest.mark.slow
@pytest.mark.parametrize(
    ("study", "options"),
    [
        ("compare", {"metrics": ["conv/aulc", "stab/loss_spikes", "stab/grad_spikes", "conv/epochs_to_target"]}),
        ("long-range", {"metrics": ["conv/aulc"]}),
        ("long-range/vs-baseline_lr2", {"metrics": ["conv/aulc"], "control": "baseline_lr2"}),
        ("long-range-2", {"metrics": ["conv/aulc"]}),
        ("long-range-2/vs-baseline_lr2", {"metrics": ["conv/aulc"], "control": "baseline_lr2"}),
        ("long-range-2/vs-uniform", {"metrics": ["conv/aulc"], "control": "uniform"}),
        ("lr-control", {"metrics": ["conv/aulc", "conv/epochs_to_target"]}),
        ("tuned-text", {"metrics": ["conv/aulc"]}),
    ],
)
def test_shipped_studies_figures_have_nothing_clipped_or_overlapping(study, options, tmp_path):
    if not (RESULTS / study / "runs.csv").is_file():
        pytest.skip(f"results/{study} is not in this checkout")
    figures, _ = report_figures(RESULTS / study, tmp_path, **options)
    assert {stem: layout_problems(fig) for stem, fig in figures.items()} == {stem: [] for stem in figures}


def test_the_checker_sees_clipping_and_overlap():
    fig = Figure(figsize=(3, 2), layout="constrained")
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    ax.set_ylabel("a label far too long to fit in a figure this small, so it runs off both ends")
    problems = layout_problems(fig)
    assert "overlap: 'one label' / 'another label'" in problems
    assert any(p.startswith("outside the canvas: 'a label far too long") for p in problems)


# ------------------------------------------------------------------------------------------- one style everywhere


def test_an_arm_looks_the_same_in_every_figure(reports):
    figures, _ = reports(9)
    styles = plots.arm_styles(LONG_NAMES[:9])  # the report's order: the control first, then as swept
    # learning curves: the panel named after an arm draws its IQM in the arm's colour, marker and line style
    for ax in figures["convergence"].axes:
        if ax.get_title() in styles:
            st = styles[ax.get_title()]
            iqm = [ln for ln in ax.get_lines() if ln.get_linewidth() > 1.5]
            assert [to_hex(ln.get_color()) for ln in iqm] == [st["color"].lower()]
            assert iqm[0].get_marker() == st["marker"]
    # the headline's legend keys and the final scores' IQM marks use the same styles
    legend = figures["solved_by_epoch"].legends[0]
    keys = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert {a: (to_hex(h.get_color()), h.get_marker()) for a, h in keys.items()} == {
        a: (st["color"].lower(), st["marker"]) for a, st in styles.items()
    }
    final = figures["final_loss"].axes[0]
    rows = [t.get_text().replace("\n", "") for t in final.get_yticklabels()]
    for line in final.get_lines():
        if line.get_marker() not in ("None", "", None) and line.get_markersize() > 6:
            arm = rows[round(line.get_ydata()[0] - 0.27)]
            st = styles[arm]
            assert (to_hex(line.get_color()), line.get_marker()) == (st["color"].lower(), st["marker"])


# ------------------------------------------------------------------------------------------- honest bands


def _spiky_history() -> pd.DataFrame:
    """Ten seeds at a plateau, three of which spike up at epoch 3: the shape that pushed a band below every run."""
    rows = []
    plateau = [1.02, 1.03, 1.03, 1.04, 1.04, 1.05, 1.05]
    for seed in range(10):
        for step in range(1, 6):
            value = plateau[seed] if seed < 7 else 1.04
            if step == 3 and seed >= 7:
                value = (2.5, 2.6, 4.6)[seed - 7]
            rows.append((f"r{seed}", "copy", "extra_full", seed, "val/norm_loss", step, value))
    return pd.DataFrame(rows, columns=["run_id", "dataset", "arm", "seed", "metric", "step", "value"])


def test_the_band_stays_within_what_the_seeds_logged():
    history = _spiky_history()
    bands = convergence_bands(history)
    at3 = history[history["step"] == 3]["value"].to_numpy()
    low, _ = iqm_interval(at3)
    assert low < at3.min()  # the interval alone would claim losses no run had
    ax = plots.plot_arm_curves(bands, "copy", "extra_full", history=history, control="baseline")
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() >= at3.min() - 1e-12
    assert band[:, 1].max() <= history["value"].max() + 1e-12
    clipped = plots.band_within_seeds(bands, plots.seed_curves(history, "copy", "extra_full")).set_index("step")
    assert clipped.at[3, "low"] == pytest.approx(at3.min())
    # each seed is drawn, faintly, under the IQM
    faint = [ln for ln in ax.get_lines() if ln.get_alpha() == plots.SEED_ALPHA]
    assert len(faint) == 10
    assert sorted(max(ln.get_ydata()) for ln in faint)[-3:] == [2.5, 2.6, 4.6]


def test_clipping_the_band_costs_coverage_only_at_few_seeds_and_the_key_says_so():
    five, ten = clipped_band_coverage(5), clipped_band_coverage(10)
    # the truth (the centre) falls outside 5 normal runs with probability 2/2^5; clipping loses at most that
    assert five["iqm"] - 2 / 2**5 - 0.01 <= five["clipped"] < five["iqm"]
    assert ten["clipped"] >= ten["iqm"] - 2 / 2**10
    with pytest.raises(ValueError, match="n >= 2"):
        clipped_band_coverage(1)
    history = _spiky_history()
    fig = plots.convergence_figure(convergence_bands(history), history=history, control="extra_full")
    keys = [t.get_text() for t in fig.subfigs[-1].legends[0].get_texts()]
    assert f"IQM's 95% CI clipped to the seeds' range (coverage {ten['clipped']:.2f} at 10 seeds)" in keys


# ------------------------------------------------------------------------------------------- the headline


def _ett_scores() -> pd.DataFrame:
    """``conv/epochs_to_target`` of two arms on one task, budget 6: chrono solves at 2, 3, 3, 5; baseline never
    (one run diverged)."""
    rows = [(f"c{i}", "chrono", v, "ok") for i, v in enumerate([2, 3, 3, 5])]
    rows += [("b0", "baseline", 7, "censored"), ("b1", "baseline", 7, "censored")]
    rows += [("b2", "baseline", np.inf, "worst"), ("b3", "baseline", 7, "censored"), ("m", "chrono", np.nan, "missing")]
    frame = pd.DataFrame(rows, columns=["run_id", "arm", "value", "status"])
    return frame.assign(dataset="adding", seed=0, pair="", diverged=frame["status"] == "worst", budget=6)


def test_share_solved_by_epoch_counts_runs_that_had_reached_the_target():
    curves = plots.solved_by_epoch(_ett_scores())
    chrono = curves[curves["arm"] == "chrono"].set_index("epoch")
    assert chrono["share"].tolist() == [0, 0, 0.25, 0.75, 0.75, 1.0, 1.0]
    assert (chrono["n_runs"] == 4).all()  # the run that logged nothing is left out
    baseline = curves[curves["arm"] == "baseline"]
    assert baseline["share"].eq(0).all() and (baseline["n_runs"] == 4).all()


def test_the_headline_names_the_arm_that_solves_the_task():
    fig = plots.solved_by_epoch_figure(_ett_scores(), targets={"adding": 0.1})
    texts = [t for t, _ in drawn_texts(fig)]
    assert "chrono: 4/4" in texts and "baseline: 0/4" in texts
    assert layout_problems(fig) == []
    rates = solved_rates(_ett_scores(), control="baseline")
    assert pipeline.headline(rates) == "solved_by_epoch"
    same = solved_rates(_ett_scores().assign(status="censored"), control="baseline")
    assert pipeline.headline(same) == "final_loss"


def test_the_report_opens_with_its_headline(reports):
    figures, text = reports(2)
    first = next(iter(figures))
    # the shipped study's tasks: every arm solves adding and financial, none text, so the final score leads
    assert first == "final_loss"
    top = text.split("## Summary")[0]
    assert f"![Figure 1: {pipeline.FIGURES[first]}](figures/{first}.png)" in top
    section = text.split("## Figures")[1].split("\n## ")[0]
    assert f"figures/{first}.png" not in section and "Figure 1, the headline, is at the top." in section
    assert section.index("Figure 2:") < section.index("Figure 3:")
    fig = plots.solved_by_epoch_figure(_ett_scores().iloc[0:0])
    fig.savefig(io.BytesIO(), format="png")
