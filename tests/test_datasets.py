"""The three dataset families: shapes, determinism, trivial baselines, splits and scaling, and bad input.

NumPy and pandas only (no TensorFlow import), so the whole file runs in a few seconds.
"""

from __future__ import annotations

import gzip
import math
import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import lstm_influence as li
from lstm_influence.datasets import financial, reference, synthetic, text
from lstm_influence.datasets.base import DatasetError, cross_entropy, mse, unigram_cross_entropy

SPLITS = ("train", "val", "test")


def load(*overrides: str):
    return li.load_dataset(li.compose(list(overrides)))


def assert_same(a, b) -> None:
    for split in SPLITS:
        for u, v in zip(getattr(a, split), getattr(b, split)):
            np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------------------------------------------------------
# synthetic

SMALL = ("dataset=synthetic", "dataset.n_train=300", "dataset.n_val=200", "dataset.n_test=100")


@pytest.mark.parametrize("task", synthetic.TASKS)
def test_synthetic_determinism(task):
    first = load(*SMALL, f"dataset.task={task}")
    again = load(*SMALL, f"dataset.task={task}")
    other = load(*SMALL, f"dataset.task={task}", "dataset.data_seed=1")
    assert_same(first, again)
    assert first.baseline_loss == again.baseline_loss
    assert not np.array_equal(first.train[0], other.train[0])
    assert not np.array_equal(first.val[1], other.val[1])


@pytest.mark.parametrize("task", synthetic.TASKS)
def test_synthetic_val_and_test_do_not_depend_on_n_train(task):
    small = load(*SMALL, f"dataset.task={task}")
    large = load(*SMALL, f"dataset.task={task}", "dataset.n_train=500")
    for split in ("val", "test"):
        for u, v in zip(getattr(small, split), getattr(large, split)):
            np.testing.assert_array_equal(u, v)


def test_adding_shapes_and_baseline_near_one_sixth():
    data = load("dataset=synthetic", "dataset.n_val=4000", "dataset.n_train=10", "dataset.n_test=10")
    x, y = data.train
    assert x.shape == (10, 50, 2) and x.dtype == np.float32
    assert y.shape == (10, 1) and y.dtype == np.float32
    assert np.all(x[..., 1].sum(axis=1) == 2)
    assert data.loss == "mse" and not data.sequence_output and data.input_vocab is None
    assert data.baseline_loss["val"] == pytest.approx(1 / 6, rel=0.05)
    assert data.baseline_loss["val"] == pytest.approx(mse(np.ones_like(data.val[1]), data.val[1]))


def test_adding_unchanged_by_new_tasks():
    # Pinned from the foundation's implementation: adding's data for data_seed 0 must not move.
    data = load("dataset=synthetic", "dataset.seq_len=10", "dataset.n_train=4", "dataset.n_val=3", "dataset.n_test=2")
    np.testing.assert_allclose(data.val[1][:, 0], [1.7700364589691162, 0.9364699721336365, 1.182941198348999])
    default = load("dataset=synthetic")
    assert float(default.val[1].sum(dtype=np.float64)) == pytest.approx(1010.2560645751655, rel=1e-12)


def test_copy_layout_and_baseline_formula():
    k, alphabet, seq_len = 4, 5, 15
    data = load(
        *SMALL,
        "dataset.task=copy",
        f"dataset.seq_len={seq_len}",
        f"dataset.copy_symbols={k}",
        f"dataset.copy_alphabet={alphabet}",
    )
    x, y = data.train
    assert x.shape == y.shape == (300, seq_len)
    assert x.dtype == y.dtype == np.int32
    assert data.loss == "sparse_categorical_crossentropy" and data.sequence_output
    assert data.input_vocab == alphabet + 2 and data.n_classes == alphabet + 1 == data.output_dim
    assert len(data.feature_names) == data.input_vocab
    assert np.all((x[:, :k] >= 1) & (x[:, :k] <= alphabet))
    assert np.all(x[:, seq_len - k - 1] == alphabet + 1)  # the marker
    assert np.all(x[:, k : seq_len - k - 1] == 0) and np.all(x[:, seq_len - k :] == 0)
    np.testing.assert_array_equal(y[:, seq_len - k :], x[:, :k])
    assert np.all(y[:, : seq_len - k] == 0)
    expected = k * math.log(alphabet) / seq_len
    for split in SPLITS:
        assert data.baseline_loss[split] == pytest.approx(expected, rel=1e-12)
    assert data.metadata["delay"] == seq_len - 2 * k


def test_copy_memoryless_probs_scored_by_hand():
    probs = synthetic.copy_memoryless_probs(seq_len=5, n_symbols=2, alphabet=4)
    y = np.array([[0, 0, 0, 3, 1]])
    # Three certain blanks (0 nats) and two recall steps at ln 4 each, over 5 steps.
    assert cross_entropy(probs, y) == pytest.approx(2 * math.log(4) / 5)


def test_sine_shapes_and_persistence_baseline():
    data = load(*SMALL, "dataset.task=sine", "dataset.seq_len=20")
    x, y = data.val
    assert x.shape == (200, 20, 1) and x.dtype == np.float32
    assert y.shape == (200, 1) and y.dtype == np.float32
    by_hand = float(np.mean((x[:, -1, 0].astype(np.float64) - y[:, 0]) ** 2))
    assert data.baseline_loss["val"] == pytest.approx(by_hand, rel=1e-12)
    # Persistence is clearly worse than the noise floor, so the task leaves room to learn.
    assert data.metadata["noise_floor_mse"] < 0.2 * data.baseline_loss["val"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dataset.task=copy", "dataset.seq_len=20"], "needs at least 2 * copy_symbols + 1 = 21 steps"),
        (["dataset.task=copy", "dataset.copy_alphabet=1"], "dataset.copy_alphabet=1: expected at least 2"),
        (["dataset.task=sine", "dataset.sine_noise=-1.5"], "dataset.sine_noise=-1.5"),
        (["dataset.task=sine", "dataset.sine_min_period=50"], "expected 0 < min <= max"),
        (["dataset.n_val=0"], "dataset.n_val=0: expected a positive sample count"),
    ],
)
def test_synthetic_bad_config(overrides, message):
    with pytest.raises(DatasetError, match=message.replace("*", r"\*").replace("(", r"\(").replace("+", r"\+")):
        load("dataset=synthetic", *overrides)


# ---------------------------------------------------------------------------------------------------------------
# financial


@pytest.fixture(scope="module")
def sp500():
    return load("dataset=financial")


@pytest.fixture(scope="module")
def sp500_volatility():
    # experiment=compare's financial sizes (conf/sizes/compare/financial.yaml)
    return load("dataset=financial", "dataset.target=volatility", "dataset.vol_window=5", "dataset.stride=2")


def write_prices(path, n_days: int = 400, *, seed: int = 0, date="Date", close="Close", ohlcv=True, descending=False):
    """A random-walk daily series as a Yahoo-style CSV; returns the frame written."""
    rng = np.random.default_rng(seed)
    close_values = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n_days)))
    frame = pd.DataFrame({date: pd.bdate_range("2001-01-01", periods=n_days).strftime("%Y-%m-%d"), close: close_values})
    if ohlcv:
        frame["Open"] = close_values * (1 + 0.002 * rng.standard_normal(n_days))
        frame["High"] = close_values * (1 + np.abs(0.01 * rng.standard_normal(n_days)))
        frame["Low"] = close_values * (1 - np.abs(0.01 * rng.standard_normal(n_days)))
        frame["Volume"] = rng.integers(1_000, 10_000, n_days)
    if descending:
        frame = frame.iloc[::-1]
    frame.to_csv(path, index=False)
    return frame


def test_bundled_series_ships_with_the_package():
    data_dir = resources.files("lstm_influence.datasets") / "data"
    assert (data_dir / "PROVENANCE.md").is_file()
    with (data_dir / financial.BUNDLED_FILE).open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip")
    assert list(frame.columns) == ["Date", "Open", "High", "Low", "Close", "Volume"]
    assert len(frame) >= 5000


def test_financial_defaults_shapes_and_metadata(sp500):
    assert sp500.metadata["price_rows"] == 17346
    assert sp500.metadata["first_date"] == "1950-01-03" and sp500.metadata["last_date"] == "2018-12-07"
    for split in SPLITS:
        x, y = getattr(sp500, split)
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert x.shape[1:] == (60, 1) and y.shape == (len(x), 1)
        assert sp500.metadata["sizes"][split] == len(x)
        assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    assert sp500.loss == "mse" and sp500.feature_names == ["returns"]
    assert set(sp500.metadata["split_boundaries"]) == set(SPLITS)


def test_financial_splits_are_chronological(sp500):
    spans = sp500.spans
    assert spans["train"].dtype == np.dtype("datetime64[D]")
    # Every date a val or test sample touches (inputs and target) comes after every train date.
    assert spans["train"].max() < spans["val"].min()
    assert spans["val"].max() < spans["test"].min()
    bounds = sp500.metadata["split_boundaries"]
    assert bounds["train"][1] < bounds["val"][0] <= bounds["val"][1] < bounds["test"][0]
    assert str(spans["train"].max()) <= bounds["train"][1]


def test_financial_scaling_is_fitted_on_train(sp500):
    x_train, y_train = sp500.train
    assert abs(float(x_train.mean())) < 0.01 and float(x_train.std()) == pytest.approx(1.0, abs=0.01)
    assert float(y_train.mean()) == pytest.approx(0.0, abs=1e-6) and float(y_train.std()) == pytest.approx(
        1.0, abs=1e-6
    )
    # 1998-2018 was more volatile than 1950-1998: standardised with train statistics, val is not unit-variance.
    assert float(sp500.val[1].std()) > 1.2


def test_financial_train_arrays_ignore_later_data(tmp_path):
    # Scaling fitted on train only: multiplying the later returns changes nothing in the train arrays.
    frame = write_prices(tmp_path / "a.csv", 400, ohlcv=False)
    close = frame["Close"].to_numpy()
    later = np.diff(np.log(close[300:]))
    frame["Close"] = np.concatenate([close[:301], close[300] * np.exp(np.cumsum(3.0 * later))])
    frame.to_csv(tmp_path / "b.csv", index=False)
    common = ("dataset=financial", "dataset.seq_len=10")
    a = load(*common, f"dataset.path={tmp_path / 'a.csv'}")
    b = load(*common, f"dataset.path={tmp_path / 'b.csv'}")
    np.testing.assert_array_equal(a.train[0], b.train[0])
    np.testing.assert_array_equal(a.train[1], b.train[1])
    assert a.metadata["scaling"] == b.metadata["scaling"]
    assert not np.array_equal(a.test[0], b.test[0])


def test_financial_baselines(sp500):
    y_train = sp500.train[1].astype(np.float64)
    for split in ("val", "test"):
        y = getattr(sp500, split)[1].astype(np.float64)
        assert sp500.baseline_loss[split] == pytest.approx(float(np.mean((y - y_train.mean()) ** 2)), rel=1e-9)
    # Persistence predicts the last input return, mapped from feature to target units.
    scaling = sp500.metadata["scaling"]
    x, y = sp500.val
    last = x[:, -1, 0].astype(np.float64) * scaling["feature_std"][0] + scaling["feature_mean"][0]
    persistence = (last - scaling["target_mean"]) / scaling["target_std"]
    assert sp500.reference_losses["persistence"]["val"] == pytest.approx(mse(persistence, y[:, 0]), rel=1e-4)


def test_financial_volatility_target_and_all_features(tmp_path):
    path = tmp_path / "prices.csv"
    frame = write_prices(path, 300)
    data = load(
        "dataset=financial",
        f"dataset.path={path}",
        "dataset.seq_len=20",
        "dataset.target=volatility",
        "dataset.vol_window=5",
        "dataset.features=[returns,range,volume]",
    )
    assert data.train[0].shape[1:] == (20, 3) and data.feature_names == ["returns", "range", "volume"]
    returns = np.diff(np.log(frame["Close"].to_numpy()))
    # The first train window ends at return row 19; its target is the volatility of rows 20..24.
    first = math.sqrt(float(np.sum(returns[20:25] ** 2)))
    scaling = data.metadata["scaling"]
    assert data.train[1][0, 0] * scaling["target_std"] + scaling["target_mean"] == pytest.approx(first, rel=1e-5)
    assert data.spans["train"].max() < data.spans["val"].min()


def test_financial_user_csv_with_own_column_names_unsorted(tmp_path):
    path = tmp_path / "mine.csv"
    write_prices(path, 300, date="day", close="price", ohlcv=False, descending=True)
    data = load(
        "dataset=financial",
        f"dataset.path={path}",
        "dataset.date_column=day",
        "dataset.price_column=price",
        "dataset.seq_len=20",
    )
    assert data.metadata["resorted_by_date"] is True
    assert data.metadata["first_date"] == "2001-01-01"
    assert data.metadata["source"] == f"user CSV {path}"
    assert sum(data.metadata["split_days"].values()) == 299
    assert data.spans["val"].max() < data.spans["test"].min()


def test_financial_user_csv_gzip(tmp_path):
    plain = tmp_path / "p.csv"
    write_prices(plain, 300)
    packed = tmp_path / "p.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a = load("dataset=financial", f"dataset.path={plain}", "dataset.seq_len=20")
    b = load("dataset=financial", f"dataset.path={packed}", "dataset.seq_len=20")
    assert_same(a, b)


def _bad_csv(tmp_path, edit) -> str:
    path = tmp_path / "bad.csv"
    frame = write_prices(path, 300)
    frame = edit(frame)
    if frame is not None:
        frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("edit", "overrides", "message"),
    [
        (lambda f: f.rename(columns={"Date": "When"}), [], r"no date column 'Date' \(set dataset.date_column\); "),
        (lambda f: f.drop(columns="Close"), [], r"no close price column 'Close'.*columns found: 'Date', 'Open'"),
        (lambda f: f.assign(Close=f["Close"].astype(object).where(f.index != 7, "abc")), [], r"line 9: 'abc' is not"),
        (lambda f: f.assign(Close=f["Close"].where(f.index != 7, np.nan)), [], r"'Close' line 9: is empty"),
        (lambda f: f.assign(Close=f["Close"].where(f.index != 3, 0.0)), [], r"'Close' line 5: 0 is not positive"),
        (lambda f: f.assign(Close=f["Close"].where(f.index != 3, -2.5)), [], r"-2.5 is not positive"),
        (lambda f: f.assign(Date=f["Date"].where(f.index != 4, "someday")), [], r"line 6: 'someday' is not a date"),
        (lambda f: f.assign(Date=f["Date"].where(f.index != 4, f["Date"][3])), [], r"appears more than once"),
        (lambda f: f.head(60), [], r"fewer than seq_len \+ horizon = 20 \+ 1"),
        (
            lambda f: f.drop(columns="High"),
            ["dataset.features=[returns,range]"],
            r"no high price column 'High' \(set dataset.high_column, needed by the range feature\)",
        ),
        (lambda f: f.drop(columns="Volume"), ["dataset.features=[volume]"], r"no volume column 'Volume'"),
        (lambda f: f.assign(High=f["Low"] * 0.5), ["dataset.features=[range]"], r"high .* is below low"),
    ],
    ids=[
        "no-date",
        "no-close",
        "non-numeric",
        "empty-cell",
        "zero",
        "negative",
        "bad-date",
        "dup-date",
        "too-few",
        "no-high",
        "no-vol",
        "h<l",
    ],
)
def test_financial_bad_csv(tmp_path, edit, overrides, message):
    path = _bad_csv(tmp_path, edit)
    with pytest.raises(DatasetError, match=message) as info:
        load("dataset=financial", f"dataset.path={path}", "dataset.seq_len=20", *overrides)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dataset.features=[]"], r"expected a non-empty list"),
        (["dataset.val_frac=0.2"], r"add up to 1.05, expected 1"),
        (["dataset.train_frac=1.0", "dataset.val_frac=0.0", "dataset.test_frac=0.0"], r"strictly between 0 and 1"),
        (["dataset.target=volatility", "dataset.vol_window=100"], r"vol_window <= seq_len=60"),
        (["dataset.seq_len=9000"], r"bundled sp500_1950_2018.csv.gz: 17346 price rows give the val split"),
    ],
)
def test_financial_bad_config(overrides, message):
    with pytest.raises(DatasetError, match=message):
        load("dataset=financial", *overrides)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dataset=synthetic dataset.task=reverse", r"dataset.task='reverse': expected one of adding, copy, sine$"),
        ("dataset=financial dataset.target=price", r"dataset.target='price': expected one of return, volatility$"),
        (
            "dataset=financial dataset.features=[returns,sentiment]",
            r"dataset.features=\['returns', 'sentiment'\]: expected a list of one of returns, range, volume or null$",
        ),
        ("dataset=synthetic dataset.n_train=many", r"dataset.n_train='many': expected an integer$"),
        ("dataset=synthetic +dataset.n_tran=5", r"dataset.n_tran=5: unknown key .*valid keys: copy_alphabet, .*n_tr"),
    ],
)
def test_a_key_or_choice_outside_the_loaders_signature_is_refused_before_loading(override, message):
    with pytest.raises(li.ConfigError) as info:
        li.load_dataset(li.compose(override.split()))
    assert re.search(message, str(info.value)), str(info.value)


def test_financial_missing_and_empty_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DatasetError, match=rf"{missing}: no such file"):
        load("dataset=financial", f"dataset.path={missing}")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError, match=rf"{empty}: the file is empty"):
        load("dataset=financial", f"dataset.path={empty}")


# ---------------------------------------------------------------------------------------------------------------
# text


@pytest.fixture(scope="module")
def docs():
    return load("dataset=text")


def test_text_defaults_shapes_and_vocab(docs):
    for split in SPLITS:
        x, y = getattr(docs, split)
        assert x.dtype == y.dtype == np.int32
        assert x.shape == y.shape and x.shape[1] == 100
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # the next character at every position
        assert x.min() >= 0 and x.max() < docs.input_vocab
    assert docs.loss == "sparse_categorical_crossentropy" and docs.sequence_output
    assert docs.input_vocab == docs.n_classes == docs.output_dim == len(docs.feature_names)
    assert docs.feature_names[0] == "<unk>" and "U+000A" in docs.feature_names
    assert docs.metadata["used_chars"] == 400_000 and docs.metadata["sizes"]["train"] == len(docs.train[0])
    assert docs.spans["train"].max() < docs.spans["val"].min() <= docs.spans["val"].max() < docs.spans["test"].min()


def test_text_bundled_corpus_is_pydoc_topics_in_key_order(docs):
    import hashlib
    import sys

    corpus = text.bundled_corpus()
    # frozen from CPython 3.11.7, whatever Python runs the tests (see data/PROVENANCE.md)
    assert hashlib.sha256(corpus.encode()).hexdigest().startswith("37d06970fc926e60")
    if sys.version_info[:3] == (3, 11, 7):
        from pydoc_data.topics import topics

        assert corpus == "".join(topics[key] for key in sorted(topics))
    vocab = docs.metadata["vocab"]
    decoded = "".join(vocab[i - 1] for i in docs.train[0][0])
    assert decoded == text.bundled_corpus()[:100]


def test_text_baseline_is_train_unigram_cross_entropy(docs):
    # Recomputed independently from the raw corpus: train part = first 80% of the first 400,000 characters.
    corpus = text.bundled_corpus()[:400_000]
    train = corpus[:320_000]
    vocab = sorted(set(train))
    counts = np.array([train.count(c) for c in vocab], dtype=np.float64)
    val_targets = docs.val[1]
    counts = np.concatenate([[0.0], counts]) + 1.0  # UNK has no train count, so every count gets one more
    probs = counts / counts.sum()
    assert docs.baseline_loss["val"] == pytest.approx(float(-np.mean(np.log(probs[val_targets]))), rel=1e-12)
    assert 2.5 < docs.baseline_loss["val"] < 4.0  # nats per character, English-like text


def test_text_tiny_hand_counted_baseline(tmp_path):
    path = tmp_path / "tiny.txt"
    # train "aaabaaab" (a: 6, b: 2), val "abab", test "bbbb"; seq_len 2, val/test windows tile: one each.
    path.write_text("aaabaaab" + "abab" + "bbbb", encoding="utf-8")
    data = load(
        "dataset=text",
        f"dataset.path={path}",
        "dataset.seq_len=2",
        "dataset.stride=1",
        "dataset.train_frac=0.5",
        "dataset.val_frac=0.25",
        "dataset.test_frac=0.25",
    )
    assert data.feature_names == ["<unk>", "a", "b"]
    np.testing.assert_array_equal(data.val[0], [[1, 2]])  # "ab"
    np.testing.assert_array_equal(data.val[1], [[2, 1]])  # targets "ba"
    # Add-one counts, as UNK has none in train: unk 1, a 7, b 3 out of 11.
    assert data.baseline_loss["val"] == pytest.approx(-(math.log(3 / 11) + math.log(7 / 11)) / 2, rel=1e-12)
    assert data.baseline_loss["test"] == pytest.approx(-math.log(3 / 11), rel=1e-12)  # targets "bb"
    assert len(data.train[0]) == 6  # stride 1 over 8 characters


def test_text_unseen_characters_map_to_unk_and_smooth_the_baseline(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("aaabaaab" + "abcb" + "bbbb", encoding="utf-8")
    data = load(
        "dataset=text",
        f"dataset.path={path}",
        "dataset.seq_len=2",
        "dataset.train_frac=0.5",
        "dataset.val_frac=0.25",
        "dataset.test_frac=0.25",
    )
    np.testing.assert_array_equal(data.val[1], [[2, 0]])  # "bc": c was never in train -> UNK
    # Add-one counts: unk 1, a 7, b 3 out of 11.
    assert data.baseline_loss["val"] == pytest.approx(-(math.log(3 / 11) + math.log(1 / 11)) / 2, rel=1e-12)
    assert data.metadata["unk_rate"]["val"] == 0.25


def test_unigram_cross_entropy_smooths_when_train_misses_a_class():
    # Class 0 has no train count: add-one counts 1, 4, 2 of 7, whatever is evaluated.
    assert unigram_cross_entropy(np.array([1, 1, 1, 2]), np.array([1, 2]), 3) == pytest.approx(
        -(math.log(4 / 7) + math.log(2 / 7)) / 2
    )
    assert unigram_cross_entropy(np.array([1, 1, 1, 2]), np.array([0]), 3) == pytest.approx(math.log(7))
    # Every class seen: the exact frequencies 3/4 and 1/4.
    assert unigram_cross_entropy(np.array([0, 0, 0, 1]), np.array([0, 1]), 2) == pytest.approx(
        (math.log(4 / 3) + math.log(4)) / 2
    )


def test_text_val_baseline_does_not_depend_on_the_test_part(tmp_path):
    # Same train and val parts; the second test part holds characters train never saw.
    common = ("dataset=text", "dataset.seq_len=4", "dataset.stride=1")
    train_val = "the cat sat on the mat. " * 8 + "a cat on a hat, the end"
    loaded = []
    for name, test_part in (("plain", "the cat sat on the mat "), ("novel", "xyzzy QUUX 123 ~~~ !!!")):
        path = tmp_path / f"{name}.txt"
        body = train_val + test_part
        path.write_text(body, encoding="utf-8")
        n = len(body)
        fractions = (len(train_val) - 23) / n, 23 / n, len(test_part) / n
        loaded.append(
            load(
                *common,
                f"dataset.path={path}",
                f"dataset.train_frac={fractions[0]!r}",
                f"dataset.val_frac={fractions[1]!r}",
                f"dataset.test_frac={1 - fractions[0] - fractions[1]!r}",
            )
        )
    plain, novel = loaded
    np.testing.assert_array_equal(plain.val[1], novel.val[1])
    assert np.any(novel.test[1] == text.UNK) and not np.any(plain.test[1] == text.UNK)
    assert plain.baseline_loss["val"] == novel.baseline_loss["val"]
    assert plain.reference_losses["ngram"]["val"] == novel.reference_losses["ngram"]["val"]
    assert plain.baseline_loss["test"] != novel.baseline_loss["test"]


def test_text_min_count_maps_rare_train_characters_to_unk(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("aaaaaaaz" * 8, encoding="utf-8")
    data = load("dataset=text", f"dataset.path={path}", "dataset.seq_len=2", "dataset.min_count=7")
    assert data.feature_names == ["<unk>", "a"]
    assert data.metadata["unk_rate"]["train"] > 0


def test_text_is_deterministic(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("the quick brown fox jumps over the lazy dog\n" * 20, encoding="utf-8")
    overrides = ("dataset=text", f"dataset.path={path}", "dataset.seq_len=16", "dataset.stride=3")
    assert_same(load(*overrides), load(*overrides))


@pytest.mark.parametrize(
    ("content", "overrides", "message"),
    [
        (b"", [], "the text is empty"),
        (b"  \n\n \t", [], "the text is empty"),
        (b"caf\xe9 au lait " * 20, [], r"not UTF-8 text \(undecodable byte b'\\xe9' at offset 3\)"),
        (b"short text", [], r"give the train split 8, fewer than seq_len \+ 1 = 101"),
        (b"x" * 5000, ["dataset.test_frac=0.2"], r"add up to 1.1, expected 1"),
    ],
    ids=["empty", "blank", "latin-1", "too-short", "fractions"],
)
def test_text_bad_file(tmp_path, content, overrides, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as info:
        load("dataset=text", f"dataset.path={path}", *overrides)
    if "add up" not in message:  # fractions are a config error, checked before the file is read
        assert str(info.value).startswith(f"{path}: ")


def test_text_missing_file_and_bad_sizes(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DatasetError, match=rf"{missing}: no such file"):
        load("dataset=text", f"dataset.path={missing}")
    with pytest.raises(DatasetError, match=r"dataset.max_chars=0"):
        load("dataset=text", "dataset.max_chars=0")
    with pytest.raises(DatasetError, match=r"dataset.stride=0"):
        load("dataset=text", "dataset.stride=0")


def test_load_dataset_needs_an_importable_target_that_returns_a_dataset():
    from omegaconf import OmegaConf

    with pytest.raises(li.ConfigError, match=r"dataset._target_=None: expected the dotted path"):
        li.load_dataset(OmegaConf.create({"dataset": {"name": "audio"}}))
    with pytest.raises(li.ConfigError, match=r"dataset._target_='audio_pkg.load': cannot import 'audio_pkg'"):
        li.load_dataset(OmegaConf.create({"dataset": {"_target_": "audio_pkg.load", "name": "audio"}}))
    with pytest.raises(DatasetError, match=r"returned a dict, expected an lstm_influence.Dataset"):
        li.load_dataset(OmegaConf.create({"dataset": {"_target_": "builtins.dict", "name": "audio"}}))


# ---------------------------------------------------------------------------------------------------------------
# reference predictors (fitted on train only)


def test_ridge_by_hand_halves_the_slope_at_penalty_n():
    # x = y = (-1, 0, 1): standardised z = x / sqrt(2/3), zᵀz = 3; with λ = n = 3 the slope on z is zᵀy / (3 + 3),
    # which is 0.5 in x units, and the intercept stays 0.
    fit = reference.fit_ridge(np.array([[-1.0], [0.0], [1.0]]), np.array([-1.0, 0.0, 1.0]), penalties=[1.0])
    assert fit.penalty == 3.0
    np.testing.assert_allclose(fit.coef, [[0.5]])
    np.testing.assert_allclose(fit.intercept, [0.0], atol=1e-15)
    np.testing.assert_allclose(fit.predict(np.array([[2.0]])), [[1.0]])


def test_ridge_leave_one_out_error_matches_refitting_without_each_sample():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3)) * [1.0, 10.0, 0.1]
    y = x @ [0.5, 0.05, 3.0] + 2.0 + rng.normal(size=40)
    fit = reference.fit_ridge(x, y)
    z = (x - x.mean(0)) / x.std(0)  # the fit's own standardisation, held fixed while a sample is left out
    design = np.hstack([np.ones((40, 1)), z])
    penalty = np.diag([0.0, 1.0, 1.0, 1.0]) * fit.penalty
    residuals = []
    for i in range(40):
        keep = np.arange(40) != i
        beta = np.linalg.solve(design[keep].T @ design[keep] + penalty, design[keep].T @ y[keep])
        residuals.append(y[i] - design[i] @ beta)
    assert fit.loo_mse == pytest.approx(float(np.mean(np.square(residuals))), rel=1e-9)
    # and no other penalty of the grid does better on that criterion
    for value in reference.PENALTY_GRID:
        assert reference.fit_ridge(x, y, penalties=[value]).loo_mse >= fit.loo_mse - 1e-12


def test_ridge_recovers_an_exact_linear_map_and_ignores_a_constant_column():
    rng = np.random.default_rng(0)
    x = np.hstack([rng.normal(size=(200, 2)), np.full((200, 1), 7.0)])
    fit = reference.fit_ridge(x, x[:, :2] @ [[2.0], [-1.0]] + 0.5)
    np.testing.assert_allclose(fit.coef.ravel(), [2.0, -1.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(fit.intercept, [0.5], atol=1e-5)


def test_kneser_ney_by_hand():
    # "abab" as ids 1 2 1 2 over a vocabulary of 3, order 2. Bigram counts (a b): 2, (b a): 1, so D2 = n1 / (n1 +
    # 2 n2) = 1/3. Continuation counts of the unigrams: N1+(• a) = N1+(• b) = 1, both singletons, so D1 = 1 and
    # P1(b) = 0 + 1 · 2/2 · 1/3 = 1/3. P(b | a) = (2 - 1/3) / 2 + (1/3) · 1/2 · 1/3 = 8/9.
    model = reference.fit_kneser_ney(np.array([1, 2, 1, 2]), 3, order=2)
    assert model.discounts == {"raw": [0.5, 1 / 3], "continuation": [1.0]}
    probs = reference.ngram_probabilities(model, np.array([[1], [1], [1]]), np.array([0, 1, 2]))
    np.testing.assert_allclose(probs, [1 / 18, 1 / 18, 8 / 9])
    # No history: the raw unigram, D1 = 0.5 (no singletons): (2 - 0.5) / 4 + 0.5 · 2/4 · 1/3 = 11/24.
    missing = reference.MISSING_SYMBOL
    assert reference.ngram_probabilities(model, np.array([[missing]]), np.array([1]))[0] == pytest.approx(11 / 24)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_kneser_ney_is_a_distribution_for_every_history(order):
    ids = np.random.default_rng(1).integers(1, 6, size=3000)
    model = reference.fit_kneser_ney(ids, 7, order=order)
    rng = np.random.default_rng(2)
    for _ in range(10):
        history = rng.integers(-1, 7, size=order - 1)
        probs = reference.ngram_probabilities(model, np.tile(history, (7, 1)), np.arange(7))
        assert probs.min() > 0 and probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_kneser_ney_chooses_its_order_on_train_and_beats_the_unigram_on_structured_text():
    word = np.array([1, 2, 3, 4, 2, 5])  # a repeated 6-symbol pattern with noise: longer contexts pay off
    rng = np.random.default_rng(0)
    ids = np.tile(word, 300)
    noise = rng.random(ids.shape) < 0.05
    ids[noise] = rng.integers(1, 6, size=noise.sum())
    model = reference.fit_kneser_ney(ids, 6)
    assert model.order in reference.NGRAM_ORDERS
    assert model.order == reference.fit_kneser_ney(ids, 6).order  # deterministic
    history, targets = reference.text_positions(ids[-300:], model.order)
    assert reference.ngram_cross_entropy(model, history, targets) < 0.5 * unigram_cross_entropy(ids, targets, 6)


def test_window_positions_use_each_window_alone():
    x = np.array([[1, 2, 3, 4]])
    history, targets = reference.window_positions(x, np.array([[2, 3, 4, 5]]), 3)
    m = reference.MISSING_SYMBOL
    np.testing.assert_array_equal(history, [[m, 1], [1, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(targets, [2, 3, 4, 5])
    history, _ = reference.text_positions(np.array([1, 2, 3]), 3)
    np.testing.assert_array_equal(history, [[m, m], [m, 1], [1, 2]])


def test_synthetic_references():
    sine = load(*SMALL, "dataset.task=sine")
    assert sine.reference_losses["persistence"] == {s: sine.baseline_loss[s] for s in ("val", "test")}
    # A linear autoregression on the window beats persistence on a sum of sines by far.
    assert sine.reference_losses["ridge"]["test"] < 0.6 * sine.baseline_loss["test"]
    adding = load(*SMALL, "dataset.task=adding")
    # The adding task's answer is a product (value × marker): a linear read-out of the window cannot do much.
    assert 0.9 < adding.reference_losses["ridge"]["test"] / adding.baseline_loss["test"] < 1.1
    assert set(adding.reference_losses) == {"ridge"}
    assert load(*SMALL, "dataset.task=copy").reference_losses == {}


def test_financial_har_ridge_recomputed_from_the_closes(sp500_volatility):
    data = sp500_volatility
    closes = pd.read_csv(resources.files("lstm_influence.datasets") / "data" / financial.BUNDLED_FILE)["Close"]
    squared = pd.Series(np.diff(np.log(closes.to_numpy())) ** 2)
    # The window ending at return index e: realised volatility sqrt(mean r²) over its last 1, 5, 22 and 60 days.
    har = np.stack([np.sqrt(squared.rolling(lag).mean().to_numpy()) for lag in financial.HAR_LAGS], axis=1)
    first_days = {split: np.datetime64(data.metadata["split_boundaries"][split][0]) for split in SPLITS}
    dates = pd.to_datetime(
        pd.read_csv(resources.files("lstm_influence.datasets") / "data" / financial.BUNDLED_FILE)["Date"]
    ).to_numpy()[1:]
    features = {}
    for split in SPLITS:
        start = int(np.searchsorted(dates.astype("datetime64[D]"), first_days[split]))
        ends = start + 60 - 1 + 2 * np.arange(len(getattr(data, split)[1]))
        features[split] = har[ends]
    fit = reference.fit_ridge(features["train"], data.train[1])
    for split in ("val", "test"):
        expected = mse(fit.predict(features[split]), getattr(data, split)[1])
        assert data.reference_losses["ridge"][split] == pytest.approx(expected, rel=1e-9)
    # On test the HAR model beats persistence, which beats the train mean (measured 0.41 and 0.48 of it).
    ratio = {name: losses["test"] / data.baseline_loss["test"] for name, losses in data.reference_losses.items()}
    assert ratio["ridge"] < ratio["persistence"] < 1.0
    assert ratio["ridge"] == pytest.approx(0.41, abs=0.01)


def test_text_ngram_reference_beats_the_unigram(docs):
    ngram = docs.reference_losses["ngram"]
    for split in ("val", "test"):
        assert 0.3 < ngram[split] / docs.baseline_loss[split] < 0.7
    assert docs.metadata["reference_bpc"]["ngram"]["val"] == pytest.approx(ngram["val"] / math.log(2))
