"""Hashed word 1-2 gram features, computed for a whole batch in Polars and NumPy.

The recipe of sklearn's ``HashingVectorizer(ngram_range=(1, 2),
alternate_sign=False)`` (lower-case, tokens of two or more word characters,
unigrams plus adjacent bigrams, term counts), except that a Han, kana or
Hangul character is a token of its own (:data:`TOKEN_PATTERN`), normalised by
the square root of the number of grams, and hashed with Polars' 64-bit string
hash inside Rust instead of a per-document Python analyser. Inference never
builds the sparse matrix (:func:`linear_scores`), which is what lets the text
classifiers run in the batch hot path. Training (``scripts/train_classifiers.py``)
and inference both use this function, so the feature space is identical.
Line breaks are tokens too, but only to cut the text into lines for the window
heads (:func:`window_max_sums`); no gram contains one.

Sub-word features (``prefix_chars`` K > 0, what the packaged artefact says):
every token longer than K characters also yields a *prefix* feature, its first
K characters hashed with :data:`PREFIX_SEED`, a truncation stemmer that
relates inflections word grams cannot (explain/explanation,
Überlegung/überlegen, рассуждения/рассуждай). They add their weight with the
same 1/sqrt scale as the word grams but are not counted in it (the scale stays
1/sqrt(word grams): a window of s tokens has 2s - 1 whatever its words, which
keeps the window maxima exact integer sums, and short tokens, CJK characters
included, dilute nothing). Hashed in the same Polars ``list.eval`` as the
unigrams (a list of ``{u, p}`` structs, ``p`` = 0 for a token without one).
K = 0 is the word-only feature space of older artefacts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
from scipy import sparse

from distillwatch.features.fingerprint import fmix64, list_values
from distillwatch.features.text import PyRegex, lowercase_list

# Scripts written without spaces between words (Han, kana, and Hangul, whose
# spaced units carry particles): each character is a token, so the bigrams
# below are their character bigrams. Everything else: runs of two or more
# other word characters. A line break is a token too, only to mark where lines
# end (Grams drops it: no gram contains it, no bigram stops at it).
SPLIT_SCRIPTS = (
    "\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7a3\U00020000-\U0003134f"
)
TOKEN_PATTERN = f"[{SPLIT_SCRIPTS}]|[^\\W{SPLIT_SCRIPTS}][^\\W{SPLIT_SCRIPTS}]+|\\n"
HASH_SEED = 17
PREFIX_SEED = 19  # prefix features (a seed no other hash in the package uses)


def prefix_py(token: str, prefix_chars: int) -> str | None:
    """The string a token's prefix feature hashes: its first ``prefix_chars``
    characters (``str.slice(0, prefix_chars)`` in Polars) if it is longer, else None
    (no prefix feature: hash 0)."""
    return token[:prefix_chars] if len(token) > prefix_chars else None


def unigram_hash_expr(text: pl.Expr, prefix_chars: int = 0) -> pl.Expr:
    """Per row, the list of 64-bit hashes of its unigrams (lower-cased tokens);
    with ``prefix_chars`` a list of structs ``{u: unigram hash, p: prefix hash}``."""
    tokens = unigram_text_expr(text).str.extract_all(TOKEN_PATTERN)
    return unigram_list_hash_expr(tokens, prefix_chars)


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


def unigram_list_hash_expr(tokens: pl.Expr, prefix_chars: int = 0) -> pl.Expr:
    """Stage 3: each token list to its list of 64-bit hashes (of ``{u, p}``
    structs with ``prefix_chars``: the token's and its prefix's hashes, ``p`` = 0
    for a token of ``prefix_chars`` characters or fewer)."""
    if prefix_chars <= 0:
        return tokens.list.eval(pl.element().hash(seed=HASH_SEED))
    e = pl.element()
    pre = e.str.slice(0, prefix_chars).hash(seed=PREFIX_SEED)
    return tokens.list.eval(
        pl.struct(
            e.hash(seed=HASH_SEED).alias("u"),
            pl.when(e.str.len_chars() > prefix_chars).then(pre).otherwise(0).alias("p"),
        )
    )


@functools.cache
def _token_regex() -> PyRegex:
    return PyRegex(TOKEN_PATTERN)


@functools.cache
def line_break_hash() -> int:
    """The unigram hash of the line-break token (what :func:`unigram_hash_expr` gives)."""
    frame = pl.DataFrame({"t": ["\n"]}, schema={"t": pl.String})
    return int(frame.select(unigram_hash_expr(pl.col("t"))).to_series()[0][0])


@dataclass(frozen=True)
class Grams:
    """The unigrams and adjacent bigrams of a batch of rows, as flat arrays.

    ``row_of[i]`` is the row of token ``i`` (rows in order, tokens in text
    order, line breaks left out) and ``next_big[i]`` the hash of the bigram
    token ``i`` starts with token ``i + 1``, a real bigram only where both are
    in the same row: at the positions ``pair``. The tokens also fall into
    lines: ``line_lens`` tokens each (lines without tokens left out), the
    line ``j`` in row ``line_row[j]``.
    """

    n: int
    lens: np.ndarray  # int64 [n], tokens per row
    row_of: np.ndarray  # int64 [T]
    uni: np.ndarray  # uint64 [T], unigram hashes
    next_big: np.ndarray  # uint64 [T] (the last one is 0)
    pair: np.ndarray  # int64 [B], positions whose next token is in the same row
    line_lens: np.ndarray  # int64 [L], all >= 1, summing to T
    line_row: np.ndarray  # int64 [L]
    # uint64 [T], prefix hashes, 0 for a token without one (None: no prefix features)
    pre: np.ndarray | None = None

    @property
    def parts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(rows, hashes)] of unigrams and bigrams (what :func:`linear_scores_from_parts` takes)."""
        if len(self.uni) == 0:
            return []
        return [(self.row_of, self.uni), (self.row_of[self.pair], self.next_big[self.pair])]

    @property
    def prefix_parts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(rows, hashes)] of the prefix features (none without them): scaled like
        the rows' word grams, not counted among them."""
        if self.pre is None or len(self.pre) == 0:
            return []
        has = self.pre != 0
        return [(self.row_of[has], self.pre[has])]


def grams_from_unigrams(lists: pl.Series) -> Grams:
    """:class:`Grams` from per-row unigram hash lists (or lists of ``{u, p}``
    structs: unigram and prefix hashes, :func:`unigram_list_hash_expr`).

    A bigram's hash is mixed from its two unigram hashes in NumPy (no bigram
    strings are ever built).
    """
    flat, offsets = list_values(lists)
    lens = np.diff(offsets)
    if isinstance(flat, pa.StructArray):  # {u, p}: StructArray.flatten applies its offset
        uni, pre = flat.flatten()
        return grams_from_flat(
            np.asarray(uni, dtype=np.uint64), lens, np.asarray(pre, dtype=np.uint64)
        )
    return grams_from_flat(np.asarray(flat, dtype=np.uint64), lens)


def grams_from_flat(uni: np.ndarray, lens: np.ndarray, pre: np.ndarray | None = None) -> Grams:
    """:func:`grams_from_unigrams` from the flat unigram hashes, the rows' list
    lengths and (with prefix features) the flat prefix hashes."""
    lens = np.asarray(lens, dtype=np.int64)
    n = len(lens)
    brk = uni == np.uint64(line_break_hash())
    line_start = None
    if brk.any():
        # a token starts a line when it is the first of its row or follows a break
        starts = np.zeros(len(uni), dtype=bool)
        starts[(np.cumsum(lens) - lens)[lens > 0]] = True
        starts[1:] |= brk[:-1]
        keep = ~brk
        lens = lens - np.bincount(np.repeat(np.arange(n), lens)[brk], minlength=n)
        uni = uni[keep]
        if pre is not None:
            pre = pre[keep]
        line_start = starts[keep].nonzero()[0]  # np.flatnonzero, 1-d
    t = len(uni)
    rows = (lens > 0).nonzero()[0]
    row_of = np.repeat(np.arange(n, dtype=np.int64), lens)
    last = np.cumsum(lens)[rows] - 1
    # bigrams: every position but the last token of a row
    inner = np.ones(max(t - 1, 0), dtype=bool)
    inner[last[:-1]] = False
    pair = inner.nonzero()[0]
    next_big = np.zeros(t, dtype=np.uint64)
    # arrays: the multiplication wraps silently (see fingerprint.fmix64)
    next_big[:-1] = fmix64(uni[:-1] * np.uint64(0x9E3779B97F4A7C15) ^ uni[1:])
    if line_start is None:  # a line per row
        return Grams(n, lens, row_of, uni, next_big, pair, lens[rows], rows, pre)
    line_lens = np.empty(len(line_start), dtype=np.int64)
    np.subtract(line_start[1:], line_start[:-1], out=line_lens[:-1])
    line_lens[-1:] = t - line_start[-1:]
    return Grams(n, lens, row_of, uni, next_big, pair, line_lens, row_of[line_start], pre)


def parts_from_unigrams(lists: pl.Series) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Row count and [(rows, hashes)] for unigrams and bigrams, from unigram hash lists.

    Both parts are sorted by row (:attr:`Grams.parts`).
    """
    g = grams_from_unigrams(lists)
    return g.n, g.parts


def parts_from_flat(
    uni: np.ndarray, lens: np.ndarray
) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """:func:`parts_from_unigrams` from the flat unigram hashes and the rows' list lengths."""
    g = grams_from_flat(uni, lens)
    return g.n, g.parts


def text_grams(texts: Sequence[str] | pl.Series, prefix_chars: int = 0) -> Grams:
    """:class:`Grams` of the texts (tokenised and hashed in one Polars query)."""
    s = texts if isinstance(texts, pl.Series) else pl.Series("t", list(texts), dtype=pl.String)
    expr = unigram_hash_expr(pl.col("t"), prefix_chars)
    return grams_from_unigrams(s.to_frame("t").select(expr).to_series())


def _gram_parts(
    texts: Sequence[str] | pl.Series,
) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    g = text_grams(texts)
    return g.n, g.parts


def gram_hashes(
    texts: Sequence[str] | pl.Series, prefix_chars: int = 0
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """(row index, 64-bit hash) of every unigram, adjacent bigram and (with
    ``prefix_chars``) prefix feature, the row count, and each row's word-gram
    count (what its features are scaled by: 1/sqrt of it)."""
    g = text_grams(texts, prefix_chars)
    parts = g.parts
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), g.n, np.zeros(g.n, np.int64)
    per_row = np.bincount(np.concatenate([p[0] for p in parts]), minlength=g.n)
    parts = parts + g.prefix_parts
    rows = np.concatenate([p[0] for p in parts])
    return rows, np.concatenate([p[1] for p in parts]), g.n, per_row


def hashed_ngrams(
    texts: Sequence[str] | pl.Series, n_features: int, prefix_chars: int = 0
) -> sparse.csr_matrix:
    """CSR matrix [len(texts), n_features]: gram (and prefix) counts divided by
    sqrt(word grams in the row).

    (The l2 norm of the row's word grams if none repeats; cheaper to apply without
    de-duplicating, which is what :func:`linear_scores` relies on.)
    """
    rows, hashes, n, counts = gram_hashes(texts, prefix_chars)
    cols = feature_cols(hashes, n_features)
    per_row = counts.astype(np.float32)
    vals = 1.0 / np.sqrt(np.maximum(per_row[rows], 1.0))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n_features), dtype=np.float32)


def linear_scores(
    texts: Sequence[str] | pl.Series,
    weights: np.ndarray,
    bias: np.ndarray,
    prefix_chars: int = 0,
) -> np.ndarray:
    """``hashed_ngrams(texts) @ weights + bias`` without building the matrix."""
    g = text_grams(texts, prefix_chars)
    return linear_scores_from_parts(g.n, g.parts, weights, bias, g.prefix_parts)


# Below this many gram occurrences the per-column bincounts win (no matrix to
# build: the gateway's one-row batches); above it one sparse-times-dense
# product does all heads in a single pass (~2x faster on 20k-text batches).
CSR_MIN_GRAMS = 4096
# Up to this many, ``np.add.at`` adds the weight rows of all heads at once
# (one call instead of one bincount per head: the gateway's fixed cost).
ADD_AT_MAX_GRAMS = 512


def feature_cols(hashes: np.ndarray, n_features: int) -> np.ndarray:
    """``(hashes % n_features).astype(np.int64)``, the feature index of each uint64
    hash: for a power-of-two ``n_features`` a mask and a view (the same values,
    below 2**63; ~4x cheaper than the uint64 division and the copy)."""
    if n_features > 0 and n_features & (n_features - 1) == 0:
        cols: np.ndarray = (hashes & np.uint64(n_features - 1)).view(np.int64)
        return cols
    return (hashes % np.uint64(n_features)).astype(np.int64)


def linear_scores_from_parts(
    n: int,
    parts: list[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    bias: np.ndarray,
    extra: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> np.ndarray:
    """Scores from :func:`parts_from_unigrams` output (and ``extra`` parts, the
    prefix features: added and scaled alike, not counted).

    Every gram occurrence adds its weight once (so repeats count) and the
    row sum is scaled by 1/sqrt(grams in the row). All three strategies add
    the same float64 weights in the same order (row by row, occurrence by
    occurrence, unigrams, bigrams, then the extra parts, each part summed from zero before it
    is added to the total), so they give bit-identical scores;
    ``weights`` is best passed C-contiguous float64 (as
    :class:`~distillwatch.features.classifiers.TextClassifiers` keeps it).
    """
    m = weights.shape[0]
    cols = [(rows, feature_cols(hashes, m)) for rows, hashes in parts]
    ecols = [(rows, feature_cols(hashes, m)) for rows, hashes in extra]
    return linear_scores_from_cols(n, cols, weights, bias, ecols)


def linear_scores_from_cols(
    n: int,
    parts: list[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    bias: np.ndarray,
    extra: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> np.ndarray:
    """:func:`linear_scores_from_parts` with each hash already reduced to its
    feature index (``hash % n_features``, int64)."""
    k = weights.shape[1]
    sums = np.zeros((n, k), dtype=np.float64)
    total = np.zeros(n, dtype=np.float64)
    n_features = weights.shape[0]
    counted = len(parts)
    parts = [*parts, *extra]
    grams = sum(len(p[0]) for p in parts)
    w64 = np.ascontiguousarray(weights, dtype=np.float64)
    for i, (rows, cols) in enumerate(parts):
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
        if i < counted:
            total += count
    scaled = sums / np.sqrt(np.maximum(total, 1.0))[:, None]
    return (scaled + bias.astype(np.float64)).astype(np.float32)


def hashed_ngrams_one(
    text: str, n_features: int, prefix_chars: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(feature indices, values) of one text: the same row :func:`hashed_ngrams` gives."""
    _, hashes, _, per_row = gram_hashes([text], prefix_chars)
    if len(hashes) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    cols, counts = np.unique(feature_cols(hashes, n_features), return_counts=True)
    return cols, counts.astype(np.float32) / np.float32(np.sqrt(per_row[0]))


# Sliding windows. A short instruction ("Show your work.") appended to a long
# question is diluted in the whole text's normalised counts; scored on a
# window of a few tokens around it, it is not. WINDOW_SCALE turns weights
# into integers (exact for float16 weights: every float16 is a multiple of
# 2**-24), so window sums come from prefix sums over the whole batch without
# rounding: a row's window sums do not depend on the other rows of its batch.
WINDOW_SCALE = float(2**24)


def window_int_weights(weights: np.ndarray) -> np.ndarray:
    """Integer weights for :func:`window_max_sums`: ``round(weights * WINDOW_SCALE)``, C-contiguous."""
    return np.ascontiguousarray(np.rint(np.asarray(weights, np.float64) * WINDOW_SCALE), np.int64)


def window_max_sums(
    lens: np.ndarray,
    uni_cols: np.ndarray,
    big_cols: np.ndarray,
    wq: np.ndarray,
    k: int,
    pre_cols: np.ndarray | None = None,
    pre_has: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The best window of each segment of tokens: (sums, sizes).

    The tokens lie in segments of ``lens`` tokens each (all at least 1); a
    segment's windows are its runs of ``k`` consecutive tokens, or the whole
    segment when it has ``k`` tokens or fewer. A window's sum adds, per column
    of ``wq`` (:func:`window_int_weights`), the weights of its unigrams and of the
    bigrams inside it. ``sums`` (int64 [segments, columns]) holds each
    column's largest sum over the segment's windows and ``sizes`` the tokens
    per window (``min(k, lens)``; ``2 * size - 1`` grams). ``uni_cols`` and
    ``big_cols`` are the unigram hashes and the hashes of the bigrams each
    token starts, modulo ``len(wq)``, as int64; ``pre_cols`` (if given) the
    tokens' prefix hashes likewise and ``pre_has`` which tokens have one: their
    weights join their token's (not counted as grams). ``k`` at least 1.
    """
    h = wq.shape[1]
    if len(lens) == 0:
        return np.zeros((0, h), dtype=np.int64), np.zeros(0, dtype=np.int64)
    t = len(uni_cols)
    # per token (and one spare row at the end): the weight of the bigram it
    # starts (none at a segment's end) ...
    nb = np.empty((t + 1, h), dtype=np.int64)
    np.take(wq, big_cols, axis=0, out=nb[:t], mode="clip")  # indices < len(wq)
    ends = np.cumsum(lens) - 1
    nb[ends] = 0
    nb[t] = 0
    # ... plus its unigram's, summed over the batch (integers: exact, in any
    # order): acc[i] is the sum over the tokens before token i
    acc = np.empty((t + 1, h), dtype=np.int64)
    acc[0] = 0
    np.take(wq, uni_cols, axis=0, out=acc[1:], mode="clip")
    if pre_cols is not None and pre_has is not None:
        pw = np.take(wq, pre_cols, axis=0, mode="clip")
        pw[~pre_has] = 0
        acc[1:] += pw
    acc[1:] += nb[:t]
    np.cumsum(acc[1:], axis=0, out=acc[1:])
    long = lens > k
    best = np.empty((len(lens), h), dtype=np.int64)
    # a short segment is one window: its tokens' sum (its last bigram weighs 0)
    short = (~long).nonzero()[0]
    best[short] = acc[ends[short] + 1] - acc[ends[short] + 1 - lens[short]]
    if long.any():
        # the window ending at token e (e >= k - 1), in place of nb[e]: the sum
        # over its k tokens less the bigram that token e starts
        np.subtract(acc[k:], nb[k - 1 : t], out=nb[k - 1 : t])
        nb[k - 1 : t] -= acc[: t - k + 1]
        # a long segment's windows end at its last lens - k + 1 tokens: reduce
        # over [first end, last end + 1) and skip the gaps between segments
        bounds = np.empty(2 * int(long.sum()), dtype=np.int64)
        bounds[0::2] = ends[long] - lens[long] + k
        bounds[1::2] = ends[long] + 1
        best[long] = np.maximum.reduceat(nb, bounds, axis=0)[0::2]
    return best, np.minimum(lens, k)
