"""Reference predictors: simple models fitted on the training split only, to read an LSTM's loss against.

The trivial baseline of each dataset (:mod:`lstm_influence.datasets.base`) says whether a model learned anything;
a reference predictor says whether an LSTM was needed to learn it. Each is a pure function of numpy arrays, fitted
on the training split alone (every choice it makes, a penalty or an order, is made there too), deterministic, and
cheap: about a second at the comparison's sizes.

- :func:`fit_ridge`: ridge regression ``ŷ = b + x·w`` with the penalty chosen by exact leave-one-out error on the
  training split (closed form from one SVD). Used on the flattened input window of the synthetic regression tasks
  and on lagged realised volatility for the financial volatility target (a HAR-style model, Corsi 2009).
- :func:`fit_kneser_ney`: an interpolated Kneser–Ney character n-gram model (Chen & Goodman 1998), its discounts
  from the training counts and its order chosen on a held-out tail of the training text.

Losses are in the dataset's own units: mean squared error, or cross-entropy in nats per symbol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PENALTY_GRID = np.logspace(-8.0, 3.0, 45)
"""Ridge penalties tried, per training sample: λ = n · grid on standardised features, so the grid is scale-free."""
NGRAM_ORDERS = (3, 4, 5)
"""The n-gram orders :func:`fit_kneser_ney` chooses from when none is given."""
HELD_OUT_FRACTION = 0.1
"""The tail of the training text that chooses the n-gram order (the model is then refitted on all of it)."""
MISSING_SYMBOL = -1
"""Marks a history position before the start of the text or window (the model backs off to a shorter context)."""


# ---------------------------------------------------------------------------------------------------------------
# ridge regression


@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge regression ``ŷ = intercept + features @ coef``.

    Attributes:
        coef: ``(p, k)`` weights in the units of the features it was fitted on.
        intercept: ``(k,)``.
        penalty: the chosen λ on standardised features (the objective is ``‖y_c − Z w‖² + λ‖w‖²``, Z the centred,
            unit-variance features).
        loo_mse: the leave-one-out mean squared error on the training split at that penalty.
    """

    coef: np.ndarray
    intercept: np.ndarray
    penalty: float
    loo_mse: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(n, k)`` predictions for ``(n, p)`` features (or ``(n, ...)``, flattened to ``(n, p)``)."""
        flat = np.asarray(features, np.float64).reshape(len(features), -1)
        return flat @ self.coef + self.intercept


def fit_ridge(features: np.ndarray, targets: np.ndarray, penalties: np.ndarray | None = None) -> RidgeFit:
    """Ridge regression with an unpenalised intercept, λ chosen by exact leave-one-out MSE on these samples.

    Features are centred and scaled to unit variance (a constant column gets weight 0), targets centred. With the
    thin SVD ``Z = U S Vᵀ`` the fit at λ is ``w = V diag(s / (s² + λ)) Uᵀ y_c`` and its hat matrix
    ``H = 11ᵀ/n + U diag(s² / (s² + λ)) Uᵀ``, so the leave-one-out residual of sample i is
    ``(y_i − ŷ_i) / (1 − H_ii)`` (Allen's PRESS) and every λ costs one matrix product.

    Args:
        features: ``(n, p)`` or ``(n, ...)`` (flattened), the training inputs.
        targets: ``(n,)`` or ``(n, k)``, the training targets.
        penalties: λ values per training sample to try (λ = n · value); default :data:`PENALTY_GRID`.

    Returns:
        The fit at the λ with the lowest leave-one-out MSE (the largest λ among ties).

    Raises:
        ValueError: fewer than 2 samples, or features and targets of different lengths.
    """
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    y = np.asarray(targets, np.float64).reshape(len(targets), -1)
    n = len(x)
    if n < 2 or len(y) != n:
        raise ValueError(f"fit_ridge: features of {n} samples and targets of {len(y)}: expected the same n >= 2")
    grid = PENALTY_GRID if penalties is None else np.asarray(penalties, np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    x_scale = x.std(axis=0)
    x_scale = np.where(x_scale > 0, x_scale, 1.0)
    z = (x - x_mean) / x_scale
    y_c = y - y_mean
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    keep = s > s.max(initial=0.0) * 1e-12
    u, s, vt = u[:, keep], s[keep], vt[keep]
    projected = u.T @ y_c  # (r, k)
    u_squared = u**2
    best: tuple[float, float, np.ndarray] | None = None
    for lam in n * grid:
        shrink = s**2 / (s**2 + lam)
        fitted = u @ (shrink[:, None] * projected)
        leverage = 1.0 / n + u_squared @ shrink
        loo = float(np.mean(((y_c - fitted) / (1.0 - leverage)[:, None]) ** 2))
        if best is None or loo <= best[0]:
            best = (loo, float(lam), shrink)
    loo_mse, lam, _ = best
    weights = vt.T @ ((s / (s**2 + lam))[:, None] * projected)  # on standardised features
    coef = weights / x_scale[:, None]
    intercept = y_mean - x_mean @ coef
    return RidgeFit(coef=coef, intercept=intercept, penalty=lam, loo_mse=loo_mse)


def ridge_losses(
    train: tuple[np.ndarray, np.ndarray], evaluate: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[dict[str, float], RidgeFit]:
    """MSE on each split of ``evaluate`` of a ridge regression fitted on ``train``'s ``(features, targets)``."""
    fit = fit_ridge(*train)
    losses = {}
    for split, (x, y) in evaluate.items():
        diff = fit.predict(x) - np.asarray(y, np.float64).reshape(len(y), -1)
        losses[split] = float(np.mean(diff**2))
    return losses, fit


# ---------------------------------------------------------------------------------------------------------------
# interpolated Kneser–Ney n-grams


@dataclass(frozen=True)
class _Counts:
    """One order's counts of one kind (raw counts, or Kneser–Ney continuation counts), as sorted lookup tables.

    ``grams``/``counts``: the k-grams seen (codes in base ``vocab``) and their counts; ``contexts``/``totals``/
    ``types``: each (k−1)-gram context, the sum of its continuations' counts and how many distinct symbols follow it.
    """

    grams: np.ndarray
    counts: np.ndarray
    contexts: np.ndarray
    totals: np.ndarray
    types: np.ndarray
    discount: float


@dataclass(frozen=True)
class KneserNeyModel:
    """An interpolated Kneser–Ney n-gram model over symbols ``0..vocab-1``.

    Attributes:
        order: n, the longest context is n − 1 symbols.
        vocab: the number of symbols; the recursion ends at the uniform distribution ``1 / vocab``.
        raw: per order k = 1..n the raw counts (used at a position's highest available order).
        continuation: per order k = 1..n−1 the continuation counts ``N1+(• g)`` (used below it).
    """

    order: int
    vocab: int
    raw: tuple[_Counts, ...]
    continuation: tuple[_Counts, ...]

    @property
    def discounts(self) -> dict[str, list[float]]:
        """The absolute discount of every order, ``raw`` and ``continuation``."""
        return {
            "raw": [table.discount for table in self.raw],
            "continuation": [table.discount for table in self.continuation],
        }


def _discount(counts: np.ndarray) -> float:
    """Ney's estimate ``n1 / (n1 + 2 n2)`` from the count-of-counts; 0.5 when nothing was seen once.

    Kept strictly positive so every order hands some mass down to the uniform floor and no symbol gets probability 0.
    """
    n1, n2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    return n1 / (n1 + 2 * n2) if n1 > 0 else 0.5


def _table(grams: np.ndarray, counts: np.ndarray, vocab: int) -> _Counts:
    contexts, inverse = np.unique(grams // vocab, return_inverse=True)
    totals = np.bincount(inverse, weights=counts).astype(np.float64)
    types = np.bincount(inverse).astype(np.float64)
    return _Counts(grams, counts.astype(np.float64), contexts, totals, types, _discount(counts))


def _gram_codes(ids: np.ndarray, k: int, vocab: int) -> np.ndarray:
    view = np.lib.stride_tricks.sliding_window_view(ids, k)
    return view @ (vocab ** np.arange(k - 1, -1, -1, dtype=np.int64))


def fit_kneser_ney(ids: np.ndarray, vocab: int, order: int | None = None) -> KneserNeyModel:
    """An interpolated Kneser–Ney model of the symbol sequence ``ids``.

    With D_k the discount of order k, ``c`` raw counts at a position's highest order and continuation counts
    ``N1+(• h w)`` below it (Chen & Goodman 1998, eq. 17):
    ``P_k(w | h) = max(c(h w) − D_k, 0) / c(h •) + D_k · N1+(h •) / c(h •) · P_{k−1}(w | h')``, with ``h'`` the
    context shortened by its oldest symbol, ``P_0 = 1 / vocab``, and ``P_k = P_{k−1}`` for a context never seen.

    Args:
        ids: ``(n,)`` integer symbols in ``0..vocab-1``, the training text.
        vocab: the number of symbols.
        order: n; None chooses from :data:`NGRAM_ORDERS` the order with the lowest cross-entropy on the last
            :data:`HELD_OUT_FRACTION` of ``ids`` when fitted on the rest, then refits on all of ``ids``.

    Raises:
        ValueError: an order below 1, symbols outside the vocabulary, too short a text, or a vocabulary so large
            that the n-gram codes overflow 62 bits.
    """
    ids = np.asarray(ids, np.int64).ravel()
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"fit_kneser_ney: symbols span {ids.min()}..{ids.max()}, expected 0..{vocab - 1}")
    if order is None:
        cut = len(ids) - max(1, round(HELD_OUT_FRACTION * len(ids)))
        head, tail = ids[:cut], ids[cut:]
        scores = {
            k: ngram_cross_entropy(fit_kneser_ney(head, vocab, k), *text_positions(tail, k)) for k in NGRAM_ORDERS
        }
        order = min(scores, key=lambda k: (scores[k], k))
    if order < 1:
        raise ValueError(f"fit_kneser_ney: order={order}, expected a positive integer")
    if order * math.log2(max(vocab, 2)) > 62:
        raise ValueError(f"fit_kneser_ney: vocab={vocab} at order={order} overflows 62-bit n-gram codes")
    if len(ids) < order:
        raise ValueError(f"fit_kneser_ney: {len(ids)} symbols, fewer than order={order}")
    raw, continuation = [], []
    for k in range(1, order + 1):
        grams, counts = np.unique(_gram_codes(ids, k, vocab), return_counts=True)
        raw.append(_table(grams, counts, vocab))
        if k < order:
            longer = np.unique(_gram_codes(ids, k + 1, vocab))
            # Drop each (k+1)-gram type's oldest symbol: how many distinct left extensions every k-gram has.
            grams_c, counts_c = np.unique(longer % vocab**k, return_counts=True)
            continuation.append(_table(grams_c, counts_c, vocab))
    return KneserNeyModel(order=order, vocab=vocab, raw=tuple(raw), continuation=tuple(continuation))


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``values`` at ``queries`` in the sorted ``keys``; 0 where a query is absent."""
    if len(keys) == 0:
        return np.zeros(len(queries))
    at = np.clip(np.searchsorted(keys, queries), 0, len(keys) - 1)
    return np.where(keys[at] == queries, values[at], 0.0)


def ngram_probabilities(model: KneserNeyModel, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``P(target | history)`` for every row.

    Args:
        model: a fitted model.
        history: ``(m, order − 1)`` the preceding symbols, oldest first, :data:`MISSING_SYMBOL` where there is
            none (the start of a text or window); a row uses its trailing run of known symbols.
        targets: ``(m,)`` the symbols to score.
    """
    history = np.asarray(history, np.int64).reshape(len(targets), model.order - 1)
    targets = np.asarray(targets, np.int64).ravel()
    known = np.cumprod((history != MISSING_SYMBOL)[:, ::-1], axis=1).sum(axis=1) if model.order > 1 else 0
    top = np.minimum(model.order, known + 1)  # the highest order each row can use
    probs = np.full(len(targets), 1.0 / model.vocab)
    for k in range(1, model.order + 1):
        context = np.zeros(len(targets), np.int64)
        for j in range(model.order - k, model.order - 1):  # the k − 1 most recent symbols
            context = context * model.vocab + np.maximum(history[:, j], 0)
        gram = context * model.vocab + targets
        for table, rows in (
            (model.raw[k - 1], top == k),
            (model.continuation[k - 1] if k < model.order else None, top > k),
        ):
            if table is None or not rows.any():
                continue
            count = _lookup(table.grams, table.counts, gram[rows])
            total = _lookup(table.contexts, table.totals, context[rows])
            types = _lookup(table.contexts, table.types, context[rows])
            lower = probs[rows]
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = np.maximum(count - table.discount, 0.0) / safe + table.discount * types / safe * lower
            probs[rows] = np.where(seen, mixed, lower)
    return probs


def ngram_cross_entropy(model: KneserNeyModel, history: np.ndarray, targets: np.ndarray) -> float:
    """Mean ``−ln P(target | history)`` in nats per symbol (see :func:`ngram_probabilities`)."""
    return float(-np.mean(np.log(ngram_probabilities(model, history, targets))))


def text_positions(ids: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(history, targets)`` for predicting every symbol of a contiguous text from the ``order − 1`` before it."""
    ids = np.asarray(ids, np.int64).ravel()
    padded = np.concatenate([np.full(order - 1, MISSING_SYMBOL, np.int64), ids])
    history = np.lib.stride_tricks.sliding_window_view(padded, order)[:, :-1] if order > 1 else np.empty((len(ids), 0))
    return history, ids


def window_positions(inputs: np.ndarray, targets: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(history, targets)`` for next-symbol windows: the target at step t is predicted from ``inputs[t-order+2 .. t]``
    of its own window only, the information an LSTM whose state starts afresh at every window has.

    Args:
        inputs: ``(n, T)`` input ids; ``targets``: ``(n, T)`` the next symbol at every step.
    """
    inputs = np.asarray(inputs, np.int64)
    n, steps = inputs.shape
    padded = np.concatenate([np.full((n, order - 1), MISSING_SYMBOL, np.int64), inputs], axis=1)
    history = np.lib.stride_tricks.sliding_window_view(padded, order - 1, axis=1)[:, 1:] if order > 1 else None
    if history is None:
        return np.empty((n * steps, 0)), np.asarray(targets).ravel()
    return history.reshape(n * steps, order - 1), np.asarray(targets, np.int64).ravel()
