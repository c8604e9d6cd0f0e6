"""Hashed word 1-2 gram features, computed for a whole batch in Polars and NumPy.

The recipe of sklearn's ``HashingVectorizer(ngram_range=(1, 2),
alternate_sign=False)`` (lower-case, tokens of two or more word characters,
unigrams plus adjacent bigrams, term counts), normalised by the square root
of the number of grams, and hashed with Polars' 64-bit string hash inside
Rust instead of a per-document Python analyser. Inference never builds the
sparse matrix (:func:`linear_scores`), which is what lets the text
classifiers run in the batch hot path. Training (``scripts/train_classifiers.py``)
and inference both use this function, so the feature space is identical.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa
from scipy import sparse

from distillwatch.features.fingerprint import fmix64
from distillwatch.features.text import PyRegex, lowercase_list

TOKEN_PATTERN = r"\w\w+"
HASH_SEED = 17


def unigram_hash_expr(text: pl.Expr) -> pl.Expr:
    """Per row, the list of 64-bit hashes of its unigrams (lower-cased tokens)."""
    return unigram_list_hash_expr(unigram_text_expr(text).str.extract_all(TOKEN_PATTERN))


# unigram_hash_expr in three stages: the small-batch path (features.request)
# tokenises with unigram_tokens_py, the same pattern with Python's re.
def unigram_text_expr(text: pl.Expr) -> pl.Expr:
    """Stage 1: null as empty text, lower-cased (always Polars)."""
    return text.fill_null("").str.to_lowercase()


def unigram_text_list(texts: Sequence[str | None]) -> list[str]:
    """Stage 1 for a few texts (:func:`~distillwatch.features.text.lowercase_list`)."""
    return lowercase_list(texts)


def unigram_tokens_py(text: str) -> list[str]:
    """Stage 2 with Python's ``re``: the tokens ``str.extract_all(TOKEN_PATTERN)`` gives."""
    return _token_regex().for_text(text).findall(text)


def unigram_list_hash_expr(tokens: pl.Expr) -> pl.Expr:
    """Stage 3: each token list to its list of 64-bit hashes."""
    return tokens.list.eval(pl.element().hash(seed=HASH_SEED))


@functools.cache
def _token_regex() -> PyRegex:
    return PyRegex(TOKEN_PATTERN)


def parts_from_unigrams(lists: pl.Series) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Row count and [(rows, hashes)] for unigrams and bigrams, from unigram hash lists.

    A bigram's hash is mixed from its two unigram hashes in NumPy (no bigram
    strings are ever built). Both parts are sorted by row.
    """
    arr = lists.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    if int(offsets[-1] - offsets[0]) == 0:
        return len(arr), []
    return parts_from_flat(np.asarray(arr.flatten(), dtype=np.uint64), np.diff(offsets))


def parts_from_flat(
    uni: np.ndarray, lens: np.ndarray
) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """:func:`parts_from_unigrams` from the flat unigram hashes and the rows' list lengths."""
    n = len(lens)
    if len(uni) == 0:
        return n, []
    row_of = np.repeat(np.arange(n, dtype=np.int64), lens)
    pair = (row_of[:-1] == row_of[1:]).nonzero()[0]  # np.flatnonzero, 1-d
    # arrays: the multiplication wraps silently (see fingerprint.fmix64)
    big = fmix64(uni[pair] * np.uint64(0x9E3779B97F4A7C15) ^ uni[pair + 1])
    return n, [(row_of, uni), (row_of[pair], big)]


def _gram_parts(
    texts: Sequence[str] | pl.Series,
) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    s = texts if isinstance(texts, pl.Series) else pl.Series("t", list(texts), dtype=pl.String)
    lists = s.to_frame("t").select(unigram_hash_expr(pl.col("t"))).to_series()
    return parts_from_unigrams(lists)


def gram_hashes(texts: Sequence[str] | pl.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """(row index, 64-bit gram hash) of every unigram and adjacent bigram, and the row count."""
    n, parts = _gram_parts(texts)
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), n
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), n


def hashed_ngrams(texts: Sequence[str] | pl.Series, n_features: int) -> sparse.csr_matrix:
    """CSR matrix [len(texts), n_features]: gram counts divided by sqrt(grams in the row).

    (The l2 norm of the row if no gram repeats; cheaper to apply without
    de-duplicating, which is what :func:`linear_scores` relies on.)
    """
    rows, hashes, n = gram_hashes(texts)
    cols = (hashes % np.uint64(n_features)).astype(np.int64)
    per_row = np.bincount(rows, minlength=n).astype(np.float32)
    vals = 1.0 / np.sqrt(np.maximum(per_row[rows], 1.0))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n_features), dtype=np.float32)


def linear_scores(
    texts: Sequence[str] | pl.Series, weights: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """``hashed_ngrams(texts) @ weights + bias`` without building the matrix."""
    return linear_scores_from_parts(*_gram_parts(texts), weights, bias)


# Below this many gram occurrences the per-column bincounts win (no matrix to
# build: the gateway's one-row batches); above it one sparse-times-dense
# product does all heads in a single pass (~2x faster on 20k-text batches).
CSR_MIN_GRAMS = 4096
# Up to this many, ``np.add.at`` adds the weight rows of all heads at once
# (one call instead of one bincount per head: the gateway's fixed cost).
ADD_AT_MAX_GRAMS = 512


def linear_scores_from_parts(
    n: int, parts: list[tuple[np.ndarray, np.ndarray]], weights: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """Scores from :func:`parts_from_unigrams` output.

    Every gram occurrence adds its weight once (so repeats count) and the
    row sum is scaled by 1/sqrt(grams in the row). All three strategies add
    the same float64 weights in the same order (row by row, occurrence by
    occurrence, unigrams then bigrams, each part summed from zero before it
    is added to the total), so they give bit-identical scores;
    ``weights`` is best passed C-contiguous float64 (as
    :class:`~distillwatch.features.classifiers.TextClassifiers` keeps it).
    """
    k = weights.shape[1]
    sums = np.zeros((n, k), dtype=np.float64)
    total = np.zeros(n, dtype=np.float64)
    n_features = weights.shape[0]
    grams = sum(len(p[0]) for p in parts)
    w64 = np.ascontiguousarray(weights, dtype=np.float64)
    modulus = np.uint64(n_features)
    for rows, hashes in parts:
        cols = (hashes % modulus).astype(np.int64)
        count = np.bincount(rows, minlength=n)
        if grams >= CSR_MIN_GRAMS:  # rows are sorted: CSR straight from the counts
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(count, out=indptr[1:])
            ones = np.ones(len(cols), dtype=np.float64)
            x = sparse.csr_matrix((ones, cols, indptr), shape=(n, n_features))
            sums += x @ w64
        elif grams <= ADD_AT_MAX_GRAMS:  # a few texts: every head in one unbuffered pass
            part = np.zeros((n, k), dtype=np.float64)
            np.add.at(part, rows, w64[cols])
            sums += part
        else:
            for j in range(k):
                sums[:, j] += np.bincount(rows, weights=w64[cols, j], minlength=n)
        total += count
    scaled = sums / np.sqrt(np.maximum(total, 1.0))[:, None]
    return (scaled + bias.astype(np.float64)).astype(np.float32)


def hashed_ngrams_one(text: str, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(feature indices, values) of one text: the same row :func:`hashed_ngrams` gives."""
    _, hashes, _ = gram_hashes([text])
    if len(hashes) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    cols, counts = np.unique((hashes % np.uint64(n_features)).astype(np.int64), return_counts=True)
    return cols, counts.astype(np.float32) / np.float32(np.sqrt(len(hashes)))
