"""Character-level language modelling: predict the next character at every position.

The bundled corpus is the English text of Python's documentation that the standard library ships for
``help()``: ``pydoc_data.topics.topics`` (topic name -> text) of CPython 3.11.7, concatenated in sorted-key order
and frozen into ``data/python_doc_topics.txt.gz`` (see ``data/PROVENANCE.md``), so every Python version trains on
the same characters. ``dataset.path`` reads the user's UTF-8 text file instead.

The first ``max_chars`` characters are cut into three contiguous parts (train, val, test, in that order). The
vocabulary is the train part's characters seen at least ``min_count`` times, sorted by code point, with id 0
reserved for UNK, to which every other character maps. A sample is ``seq_len`` character ids ``c[s:s+T]`` and the
targets are the same positions shifted by one, ``c[s+1:s+T+1]``. Train windows start every ``stride``
characters; val and test windows tile their part without overlap.

The trivial baseline is the unigram model: the train part's character frequencies, scored by cross-entropy in
nats per character (the loss's own units) on the val and test targets. Frequencies are add-one smoothed when some
id has no train count (UNK when ``min_count`` is 1), so the loss stays finite on any text; that decision, like
every count, comes from the train part alone, so the val loss does not depend on the test part. Bits per character
are ``loss / ln 2``.

The reference predictor ``ngram`` (``Dataset.reference_losses``) is an interpolated Kneser–Ney character n-gram
model of the train part (:func:`lstm_influence.datasets.reference.fit_kneser_ney`; order 3, 4 or 5, chosen on the
last tenth of the train part), scored on the same targets as the model with the context inside each window only,
as an LSTM whose state starts afresh at every window sees it.
"""

from __future__ import annotations

import gzip
import hashlib
import platform
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lstm_influence.datasets.base import (
    NATS_PER_BIT,
    Dataset,
    DatasetError,
    check_baselines,
    check_fractions,
    cross_entropy,
    unigram_probs,
)
from lstm_influence.datasets.reference import KneserNeyModel, fit_kneser_ney, ngram_cross_entropy, window_positions

SPLITS = ("train", "val", "test")
UNK = 0
"""Id of the unknown character; the known characters are ``1..V-1``."""
BUNDLED_SOURCE = (
    "Python 3.11.7 documentation topics (pydoc_data.topics, sorted by key), bundled as data/python_doc_topics.txt.gz"
)
BUNDLED_FILE = "python_doc_topics.txt.gz"


def bundled_corpus() -> str:
    """The bundled corpus: CPython 3.11.7's ``pydoc_data.topics`` texts concatenated in sorted-key order."""
    resource = resources.files("lstm_influence.datasets") / "data" / BUNDLED_FILE
    return gzip.decompress(resource.read_bytes()).decode("utf-8")


def read_text(path: str) -> str:
    """The UTF-8 text of the file at ``path``.

    Raises:
        DatasetError: the file is missing or not valid UTF-8.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise DatasetError(f"{file}: no such file (dataset.path)")
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(
            f"{file}: not UTF-8 text (undecodable byte {data[err.start : err.start + 1]!r} at offset {err.start}); "
            "convert it to UTF-8 first"
        ) from err


def char_name(char: str) -> str:
    """A readable feature name for one character (``U+000A`` for a newline, ``a`` for ``a``)."""
    return char if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"


def build_vocab(train_text: str, min_count: int) -> list[str]:
    """The characters of ``train_text`` seen at least ``min_count`` times, sorted; id ``i + 1`` is entry ``i``."""
    counts = Counter(train_text)
    return sorted(char for char, count in counts.items() if count >= min_count)


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """int32 ids of ``text``'s characters; characters outside ``vocab`` map to :data:`UNK`."""
    table = {char: i + 1 for i, char in enumerate(vocab)}
    return np.fromiter((table.get(char, UNK) for char in text), dtype=np.int32, count=len(text))


def windows(ids: np.ndarray, seq_len: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs ``(n, seq_len)``, next-character targets ``(n, seq_len)`` and the start offsets ``(n,)``."""
    starts = np.arange(0, len(ids) - seq_len, stride)
    view = np.lib.stride_tricks.sliding_window_view(ids, seq_len + 1)[starts]
    return np.ascontiguousarray(view[:, :-1]), np.ascontiguousarray(view[:, 1:]), starts


def load(
    *,
    name: str = "text",
    path: str | None = None,
    max_chars: int | None = 400000,
    seq_len: int = 100,
    stride: int = 25,
    train_frac: float = 0.8,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    min_count: int = 1,
    **kwargs: Any,
) -> Dataset:
    """Character-level next-character prediction on the bundled corpus, or the user's text at ``path``
    (``conf/dataset/text.yaml``).

    Args:
        name: the dataset's name (its tag).
        path: a user's UTF-8 text file; None: the bundled corpus (CPython 3.11.7's ``pydoc_data`` topics, frozen
            in ``lstm_influence/datasets/data/python_doc_topics.txt.gz``).
        max_chars: use at most the first this many characters of the corpus (None: all).
        seq_len: characters per window; a target at every position.
        stride: step between window starts in the training split (val and test use seq_len).
        train_frac, val_frac, test_frac: contiguous split fractions; they must add up to 1.
        min_count: characters seen fewer times in train map to UNK.
        **kwargs: keys the framework reads (``data_seed``, ``target_norm_loss``); unused here: the text has no
            randomness.
    """
    settings = {key: value for key, value in locals().items() if key != "kwargs"}
    return load_config(OmegaConf.create(settings))


def load_config(cfg: DictConfig) -> Dataset:
    """Next-character windows of the configured corpus, with a train-only vocabulary and the unigram baseline.

    Raises:
        DatasetError: a missing, empty, too short or undecodable file, bad split fractions, or a bad size.
    """
    _check(cfg)
    fractions = check_fractions(cfg, "dataset=text")
    source, corpus = _read_corpus(cfg)
    text = corpus if cfg.max_chars is None else corpus[: cfg.max_chars]
    seq_len = int(cfg.seq_len)
    bounds = _bounds(len(text), fractions, seq_len, source)
    vocab = build_vocab(text[: bounds[0][1]], int(cfg.min_count))
    n_classes = len(vocab) + 1
    ids = encode(text, vocab)
    parts = {split: ids[start:stop] for split, (start, stop) in zip(SPLITS, bounds)}
    arrays, spans = _windows(parts, bounds, seq_len, int(cfg.stride))
    baseline, smooth = _unigram_losses(parts["train"], arrays, n_classes)
    ngram, reference = _ngram_reference(parts["train"], arrays, n_classes)
    metadata = {
        "source": BUNDLED_SOURCE if cfg.path is None else f"user text file {source}",
        "file": source,
        "python_version": platform.python_version(),
        "corpus_chars": len(corpus),
        "used_chars": len(text),
        "corpus_sha256": hashlib.sha256(corpus.encode("utf-8")).hexdigest()[:16],
        "vocab_size": n_classes,
        "vocab": "".join(vocab),
        "seq_len": seq_len,
        "stride": int(cfg.stride),
        "sizes": {split: len(arrays[split][0]) for split in SPLITS},
        "split_chars": {split: stop - start for split, (start, stop) in zip(SPLITS, bounds)},
        "split_boundaries": {split: [start, stop] for split, (start, stop) in zip(SPLITS, bounds)},
        "unk_rate": {split: float(np.mean(parts[split] == UNK)) for split in SPLITS},
        "baseline": "unigram cross-entropy (nats/char) of train character frequencies"
        + (", add-one smoothed (some ids have no train count)" if smooth else ""),
        "baseline_bpc": {split: value / NATS_PER_BIT for split, value in baseline.items()},
        "reference": {
            "ngram": f"interpolated Kneser-Ney character {ngram.order}-gram of the train part (order chosen on "
            "its last tenth), context within each window",
        },
        "reference_bpc": {"ngram": {split: value / NATS_PER_BIT for split, value in reference.items()}},
    }
    return Dataset(
        name="text",
        train=arrays["train"],
        val=arrays["val"],
        test=arrays["test"],
        loss="sparse_categorical_crossentropy",
        baseline_loss=check_baselines(baseline, source),
        feature_names=["<unk>", *(char_name(c) for c in vocab)],
        metadata=metadata,
        reference_losses={"ngram": reference},
        input_vocab=n_classes,
        n_classes=n_classes,
        sequence_output=True,
        spans=spans,
    )


def _unigram_losses(
    train: np.ndarray, arrays: dict[str, tuple[np.ndarray, np.ndarray]], n_classes: int
) -> tuple[dict[str, float], bool]:
    """The unigram baseline's cross-entropy per split, and whether its frequencies were add-one smoothed (some id
    never occurs in ``train``)."""
    # Frequencies from the whole train part (not only its windows): that is the text the vocabulary saw.
    counts = np.bincount(train, minlength=n_classes)
    smooth = bool(np.any(counts == 0))
    probs = unigram_probs(train, n_classes, smooth=smooth)
    return {split: cross_entropy(probs, y) for split, (_, y) in arrays.items()}, smooth


def _ngram_reference(
    train: np.ndarray, arrays: dict[str, tuple[np.ndarray, np.ndarray]], n_classes: int
) -> tuple[KneserNeyModel, dict[str, float]]:
    """The Kneser-Ney n-gram fitted on ``train``, and its cross-entropy on the val and test windows."""
    ngram = fit_kneser_ney(train, n_classes)
    reference = {
        split: ngram_cross_entropy(ngram, *window_positions(*arrays[split], ngram.order)) for split in ("val", "test")
    }
    return ngram, reference


def _check(cfg: DictConfig) -> None:
    for key in ("seq_len", "stride", "min_count"):
        if cfg[key] < 1:
            raise DatasetError(f"dataset.{key}={cfg[key]}: expected a positive integer")
    if cfg.max_chars is not None and cfg.max_chars < 1:
        raise DatasetError(f"dataset.max_chars={cfg.max_chars}: expected a positive integer or null (all)")


def _read_corpus(cfg: DictConfig) -> tuple[str, str]:
    """``(a name for the text that error messages use, the whole text)``: the bundled corpus or the user's file."""
    if cfg.path is None:
        source, text = f"bundled {BUNDLED_FILE}", bundled_corpus()
    else:
        source, text = str(Path(str(cfg.path)).expanduser()), read_text(str(cfg.path))
    if not text.strip():
        raise DatasetError(f"{source}: the text is empty")
    return source, text


def _bounds(n_chars: int, fractions: tuple[float, float, float], seq_len: int, source: str) -> list[tuple[int, int]]:
    """The train, val and test character ranges, in order, each long enough for one window and its target."""
    n_train = round(fractions[0] * n_chars)
    n_val = round(fractions[1] * n_chars)
    bounds = [(0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_chars)]
    for split, (start, stop) in zip(SPLITS, bounds):
        if stop - start < seq_len + 1:
            raise DatasetError(
                f"{source}: {n_chars} characters give the {split} split {stop - start}, fewer than "
                f"seq_len + 1 = {seq_len + 1} needed for one window; use a longer text, a smaller dataset.seq_len "
                "or other split fractions"
            )
    return bounds


def _windows(
    parts: dict[str, np.ndarray], bounds: list[tuple[int, int]], seq_len: int, train_stride: int
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Per split, the ``(x, y)`` windows (train at ``train_stride``, val and test without overlap) and each
    window's first input and last target character in the text."""
    arrays, spans = {}, {}
    for split, (start, _) in zip(SPLITS, bounds):
        stride = train_stride if split == "train" else seq_len
        x, y, starts = windows(parts[split], seq_len, stride)
        arrays[split] = (x, y)
        offsets = start + starts
        spans[split] = np.stack([offsets, offsets + seq_len], axis=1)  # first input, last target character
    return arrays, spans
