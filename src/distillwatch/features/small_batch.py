"""The small-batch path of :func:`~distillwatch.features.request.compute_features`.

Up to :data:`~distillwatch.features.request.SMALL_BATCH_MAX` rows (the inline
gateway's micro-batches) the same feature definitions run where they are
cheapest for a few rows; see the comment block below. Output frames equal the
batch path's (tests/test_features_small_batch.py, test_features_small_memo.py).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.fingerprint import (
    NUM_BANDS,
    SHINGLE_SEED,
    band_keys,
    shingles_from_token_hashes,
    signatures_from_shingles,
)
from distillwatch.features.hashing import HASH_SEED, PREFIX_SEED, prefix_py, unigram_tokens_py
from distillwatch.features.request import (
    FEATURE_SCHEMA,
    HASHED_COLUMNS,
    TEXT_KEY_SEED,
    TEXT_KEY_SEP,
    _head_exprs,
    _ip_prefix_py,
    _ip_regexes,
    _scatter,
    _text_dict,
)
from distillwatch.features.text import (
    HASH64_SEED,
    clip_str,
    is_blank,
    lowercase_list,
    polars_whitespace,
    slot_rules_list,
    slot_rules_py,
    tokens_py,
)
from distillwatch.ingest.normalize import Row
from distillwatch.ingest.schema import EVENT_SCHEMA


def prepare_small_batch() -> None:
    """Compile the small-batch path's patterns now rather than on the first
    small batch (~0.3-0.6 s once: the Unicode tables come from Polars)."""
    slot_rules_py("")
    unigram_tokens_py("")
    _ip_regexes()
    polars_whitespace()
    _shape_exprs()


# --- the small-batch path ------------------------------------------------------
#
# Polars' fixed cost per query (planning, threads: 0.1-1 ms on a slow core)
# is what a micro-batch of one pays, far more than the work. So the small
# path runs each step where it is cheapest for a few rows, always on the same
# definitions:
# * the regex steps with Python's ``re`` on the same patterns (text.PyRegex);
# * lower-casing, whitespace splitting and blank tests in Python where it is
#   provably the same (ASCII lower-casing; Polars' whitespace set read off
#   Polars), in Polars otherwise (text.lowercase_list, tokens_py, is_blank);
# * every string hash (text key, template, tokens, grams and their prefixes,
#   system, IP, user agent, end user) by Polars in one query over just the
#   strings not hashed before (SmallBatchMemo.hashes);
# * the other request-shape columns by their own expressions, remembered per
#   distinct input values (SmallBatchMemo.shape): parameters and turn counts
#   repeat, so after warm-up most requests run no Polars query for them.
# Tests check frame equality with the batch path on hostile inputs.

EVENT_FRAME_SCHEMA = pl.DataFrame(pa.RecordBatch.from_pylist([], schema=EVENT_SCHEMA)).schema
_EVENT_INDEX = {name: i for i, name in enumerate(EVENT_SCHEMA.names)}
# identity columns: the events' own (cast to FEATURE_SCHEMA)
PASSTHROUGH = ("ts", "account_id", "end_user_id", "model")
_NUMPY_TYPES: dict[pl.DataType, np.dtype] = {
    pl.Boolean(): np.dtype(np.bool_),
    pl.Float32(): np.dtype(np.float32),
    pl.Int8(): np.dtype(np.int8),
    pl.Int32(): np.dtype(np.int32),
    pl.UInt64(): np.dtype(np.uint64),
}


class SmallBatchMemo:
    """Results of the small-batch path's Polars steps for inputs seen before.

    Exact: a remembered value is reused only for the same input values (and
    column types) it was computed from, and every step it stands for is a
    pure row-wise function. Bounded: a table reaching ``capacity`` entries,
    or a string table holding ``max_chars`` characters of keys, is emptied
    (whole prompts are keys of the text-key table). One per long-lived caller
    (the gateway's Decider).
    """

    def __init__(self, capacity: int = 1 << 17, max_chars: int = 1 << 23) -> None:
        self.capacity = capacity
        self.max_chars = max_chars
        self.hashes: dict[int, dict[str, int]] = {}
        self.chars: dict[int, int] = {}  # characters held per string table
        # template text -> (template_key, band keys): what a template's tokens,
        # MinHash and LSH bands come to (templated traffic repeats templates)
        self.templates: dict[str, tuple[int, np.ndarray]] = {}
        self.template_chars = 0
        self.shape: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        self.queries = 0  # Polars queries run for misses (for tests and benchmarks)


class _Hasher:
    """Collects the strings a small batch needs hashed (per seed), hashes the
    unknown ones in one Polars query, and answers from the memo for the rest."""

    def __init__(self, memo: SmallBatchMemo) -> None:
        self.memo = memo
        self.got: dict[int, dict[str, int]] = {}
        self.todo: dict[int, dict[str, None]] = {}

    def want(self, seed: int, texts: Iterable[str | None]) -> None:
        known = self.memo.hashes.setdefault(seed, {})
        got = self.got.setdefault(seed, {})
        todo = self.todo.setdefault(seed, {})
        for t in texts:
            if t is None or t in got:
                continue
            h = known.get(t)
            if h is None:
                todo[t] = None
            else:
                got[t] = h

    def resolve(self) -> None:
        todo = {seed: list(t) for seed, t in self.todo.items() if t}
        self.todo = {}
        if not todo:
            return
        # one column of every string, hashed with every seed wanted: building
        # one Series costs more than hashing a few dozen strings
        strings = list(dict.fromkeys(itertools.chain.from_iterable(todo.values())))
        at = {t: i for i, t in enumerate(strings)}
        out = pl.Series("s", strings, pl.String).to_frame().select_seq(_hash_exprs(tuple(todo)))
        self.memo.queries += 1
        for seed, texts in todo.items():
            column = out.get_column(f"h{seed}").to_list()
            hashes = [column[at[t]] for t in texts]
            known = self.memo.hashes[seed]
            chars = self.memo.chars.get(seed, 0) + sum(map(len, texts))
            if len(known) + len(texts) > self.memo.capacity or chars > self.memo.max_chars:
                known.clear()
                chars = sum(map(len, texts))
            self.memo.chars[seed] = chars
            known.update(zip(texts, hashes, strict=True))
            self.got[seed].update(zip(texts, hashes, strict=True))

    def hash(self, seed: int, text: str) -> int:
        return self.got[seed][text]

    def hash64(self, text: str | None) -> int:
        """:func:`hash64_expr` of one value."""
        return 0 if text is None else self.got[HASH64_SEED][text]


@cache
def _hash_exprs(seeds: tuple[int, ...]) -> list[pl.Expr]:
    return [pl.col("s").hash(seed=seed).alias(f"h{seed}") for seed in seeds]


@cache
def _shape_exprs() -> tuple[tuple[str, ...], list[pl.Expr], tuple[str, ...]]:
    """The request-shape columns other than hashes and identity: their names,
    final expressions and the event columns they read (from the expressions)."""
    other = {*PASSTHROUGH, *HASHED_COLUMNS, "ip_prefix", "text_key", "system", "prompt"}
    exprs = [e for e in _head_exprs() if e.meta.output_name() not in other]
    roots = dict.fromkeys(r for e in exprs for r in e.meta.root_names())
    for c in PASSTHROUGH:  # passed through unchanged
        assert EVENT_FRAME_SCHEMA[c] == FEATURE_SCHEMA[c]
    return tuple(e.meta.output_name() for e in exprs), exprs, tuple(roots)


def _key(v: Any) -> Any:
    """Memo key of one value: itself, except that -0.0 (== 0.0) casts differently."""
    if type(v) is float and v == 0.0 and math.copysign(1.0, v) < 0:
        return ("-0.0",)
    return v


class _Source:
    """The small path's view of a batch: column values as Python lists, the
    Polars types they have, and a frame of chosen columns for Polars steps."""

    def __init__(
        self,
        n: int,
        values: Callable[[str], list[Any]],
        shape_types: str,
        frame: Callable[[list[str]], pl.DataFrame],
        rows: Sequence[Row] | None = None,
    ) -> None:
        self.n = n
        self._values = values
        self.frame = frame
        self._rows = rows
        self._cols: dict[str, list[Any]] = {}
        # the types of the columns the shape expressions read, as one string
        # (the shape memo's table key: the same values cast alike)
        self.shape_types = shape_types

    def __getitem__(self, name: str) -> list[Any]:
        col = self._cols.get(name)
        if col is None:
            col = self._cols[name] = self._values(name)
        return col

    def tuples(self, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """Per row, the tuple of its values in columns ``names`` (straight from
        the rows when the source is rows: no column lists built)."""
        if self._rows is not None and len(names) > 1:
            get = operator.itemgetter(*(_EVENT_INDEX[c] for c in names))
            return [get(r) for r in self._rows]
        return list(zip(*(self[c] for c in names), strict=True))


def _shape_types(schema: Mapping[str, pl.DataType]) -> str:
    return repr([schema[r] for r in _shape_exprs()[2]])


@cache
def _event_shape_types() -> str:
    return _shape_types(EVENT_FRAME_SCHEMA)


def _frame_source(frame: pl.DataFrame) -> _Source:
    return _Source(
        frame.height,
        lambda c: frame.get_column(c).to_list(),
        _shape_types(frame.schema),
        lambda cols: frame.select(cols),
    )


def _rows_source(rows: Sequence[Row]) -> _Source:
    def values(c: str) -> list[Any]:
        i = _EVENT_INDEX[c]
        return [r[i] for r in rows]

    def frame(cols: list[str]) -> pl.DataFrame:
        # the columns events_frame(rows) would have (a test checks)
        return pl.DataFrame([pl.Series(c, values(c), EVENT_FRAME_SCHEMA[c]) for c in cols])

    return _Source(len(rows), values, _event_shape_types(), frame, rows)


def _shape_columns(src: _Source, memo: SmallBatchMemo) -> dict[str, list[Any]]:
    """Request-shape columns other than hashes and identity, from the memo where it can.

    The memo maps the values of every column these expressions read (one
    key per row) to all their results, so a hit costs one lookup.
    """
    names, exprs, roots = _shape_exprs()
    table = memo.shape.setdefault(src.shape_types, {})
    keys = src.tuples(roots)
    if any(type(v) is float for k in keys for v in k):
        keys = [tuple(map(_key, k)) for k in keys]
    found = [table.get(k) for k in keys]
    got: list[tuple[Any, ...]] = [v for v in found if v is not None]
    if len(got) < len(keys):
        res = src.frame(list(roots)).select_seq(exprs)
        memo.queries += 1
        got = list(zip(*(res.get_column(c).to_list() for c in names), strict=True))
        if len(table) + len(keys) > memo.capacity:
            table.clear()
        table.update(zip(keys, got, strict=True))
    return {c: list(vals) for c, vals in zip(names, zip(*got, strict=True), strict=True)}


class _TextWork:
    """Per-text work of the small path for chosen rows: template, its tokens,
    the classifier's tokens (hashes requested from the hasher)."""

    def __init__(self, src: _Source, rows: list[int], clf: TextClassifiers, h: _Hasher) -> None:
        systems, prompts = src["system"], src["prompt"]
        self.rows = rows
        clipped = [clip_str(prompts[i]) for i in rows]
        self.templates = lowercase_list(slot_rules_list(clipped))
        known = h.memo.templates
        new = [t for t in dict.fromkeys(self.templates) if t not in known]
        self.tokens = {t: tokens_py(t) for t in new}  # templates not seen before
        texts = lowercase_list(clf.texts([systems[i] for i in rows], [prompts[i] for i in rows]))
        self.grams = [unigram_tokens_py(t) for t in texts]
        h.want(HASH64_SEED, new)
        h.want(SHINGLE_SEED, itertools.chain.from_iterable(self.tokens.values()))
        h.want(HASH_SEED, itertools.chain.from_iterable(self.grams))
        # the prefix feature of every long token (hashed with its own seed; None: none)
        k = clf.prefix_chars
        self.prefixes = [[prefix_py(g, k) for g in gs] for gs in self.grams] if k else []
        if k:
            h.want(PREFIX_SEED, itertools.chain.from_iterable(self.prefixes))


def _small_columns(
    src: _Source, clf: TextClassifiers, cache: TextFeatureCache | None, memo: SmallBatchMemo
) -> dict[str, np.ndarray]:
    """Every FEATURE_SCHEMA column but the identity ones, as NumPy arrays."""
    n = src.n
    h = _Hasher(memo)
    systems, prompts = src["system"], src["prompt"]
    strings = [f"{s or ''}{TEXT_KEY_SEP}{p or ''}" for s, p in zip(systems, prompts, strict=True)]
    known = memo.hashes.get(TEXT_KEY_SEED, {})
    h.want(TEXT_KEY_SEED, strings)
    h.want(HASH64_SEED, systems)
    for src_col in HASHED_COLUMNS.values():
        h.want(HASH64_SEED, src[src_col])
    ips = src["ip"]
    prefixes = [_ip_prefix_py(a, b) for a, b in zip(ips, lowercase_list(ips), strict=True)]
    h.want(HASH64_SEED, prefixes)
    # text work, before the text keys are known, for each new text (all texts
    # without a cache): then one query hashes everything
    first_of: dict[str, int] = {}
    for i, t in enumerate(strings):
        first_of.setdefault(t, i)
    ahead = [i for t, i in first_of.items() if cache is None or t not in known]
    work: dict[int, tuple[_TextWork, int]] = {}
    if ahead:
        ahead_work = _TextWork(src, ahead, clf, h)
        work.update((i, (ahead_work, j)) for j, i in enumerate(ahead))
    shape = _shape_columns(src, memo)
    h.resolve()
    # distinct text keys in first-seen order (the batch path's np.unique picks the same rows)
    keys = np.array([h.hash(TEXT_KEY_SEED, t) for t in strings], dtype=np.uint64)
    slot: dict[int, int] = {}
    first_rows: list[int] = []
    where: list[int] = []
    for i, x in enumerate(keys.tolist()):
        j = slot.setdefault(x, len(first_rows))
        if j == len(first_rows):
            first_rows.append(i)
        where.append(j)
    first = np.array(first_rows, dtype=np.int64)
    inverse = np.array(where, dtype=np.int64)
    uniq = keys[first]
    hit: np.ndarray | None = None
    cached: dict[str, np.ndarray] = {}
    if cache is None:
        todo = first_rows
    else:
        hit, cached = cache.lookup(uniq)
        todo = first[~hit].tolist()
    late = [i for i in todo if i not in work]  # known text, no longer cached
    if late:
        late_work = _TextWork(src, late, clf, h)
        work.update((i, (late_work, j)) for j, i in enumerate(late))
        h.resolve()
    fresh = _fresh_text(todo, work, systems, prompts, h, clf) if todo else None
    out: dict[str, np.ndarray] = {}
    for name, vals in shape.items():
        out[name] = np.array(vals, dtype=_NUMPY_TYPES[FEATURE_SCHEMA[name]])
    for name, col in HASHED_COLUMNS.items():
        out[name] = np.array([h.hash64(v) for v in src[col]], dtype=np.uint64)
    out["ip_prefix"] = np.array([h.hash64(v) for v in prefixes], dtype=np.uint64)
    out.update(_scatter(uniq, inverse, hit, cached, fresh, cache))
    assert len(out["text_key"]) == n
    return out


def _fresh_text(
    rows: list[int],
    work: dict[int, tuple[_TextWork, int]],
    systems: list[str | None],
    prompts: list[str | None],
    h: _Hasher,
    clf: TextClassifiers,
) -> dict[str, np.ndarray]:
    """TEXT_DTYPES columns of ``rows`` from their text work (hashes resolved)."""
    templates = [work[i][0].templates[work[i][1]] for i in rows]
    known = h.memo.templates
    feats = {t: known[t] for t in templates if t in known}  # before the memo may be emptied
    new: dict[str, list[str]] = {}
    for i, t in zip(rows, templates, strict=True):
        if t not in feats and t not in new:
            new[t] = work[i][0].tokens[t]
    feats.update(_template_features(new, h))
    gram_hashes: list[int] = []
    gram_lens: list[int] = []
    k = clf.prefix_chars
    pre_hashes: list[int] = []
    for i in rows:
        w, j = work[i]
        grams = w.grams[j]
        gram_hashes.extend([h.hash(HASH_SEED, g) for g in grams])
        if k:
            pre_hashes.extend([0 if g is None else h.hash(PREFIX_SEED, g) for g in w.prefixes[j]])
        gram_lens.append(len(grams))
    template_key = np.array([feats[t][0] for t in templates], dtype=np.uint64)
    bands = np.array([feats[t][1] for t in templates], dtype=np.uint64).reshape(-1, NUM_BANDS)
    scores = clf.score_unigram_hashes(
        np.array(gram_hashes, dtype=np.uint64),
        np.array(gram_lens, dtype=np.int64),
        np.array(pre_hashes, dtype=np.uint64) if k else None,
    )
    # an empty system prompt is no system prompt (request._text_side_exprs)
    sys_key = np.array([h.hash64(systems[i] or None) for i in rows], dtype=np.uint64)
    empty = np.array([is_blank(prompts[i]) for i in rows], dtype=bool)
    return _text_dict(bands, template_key, sys_key, empty, scores)


def _template_features(
    tokens: dict[str, list[str]], h: _Hasher
) -> dict[str, tuple[int, np.ndarray]]:
    """Template key and band keys of new templates from their tokens (hashes
    resolved); remembered in the memo."""
    if not tokens:
        return {}
    memo = h.memo
    tok = np.array([h.hash(SHINGLE_SEED, t) for ts in tokens.values() for t in ts], dtype=np.uint64)
    # np.cumsum of the lengths after a 0 (integers: the same values)
    offsets = np.array(
        [0, *itertools.accumulate(len(ts) for ts in tokens.values())], dtype=np.int64
    )
    bands = band_keys(signatures_from_shingles(shingles_from_token_hashes(tok, offsets), offsets))
    out = {t: (h.hash(HASH64_SEED, t), row) for t, row in zip(tokens, bands, strict=True)}
    chars = memo.template_chars + sum(map(len, tokens))
    if len(memo.templates) + len(tokens) > memo.capacity or chars > memo.max_chars:
        memo.templates.clear()
        chars = sum(map(len, tokens))
    memo.template_chars = chars
    memo.templates.update(out)
    return out


def small_batch_features(
    frame: pl.DataFrame,
    clf: TextClassifiers,
    cache: TextFeatureCache | None,
    memo: SmallBatchMemo | None,
) -> pl.DataFrame:
    """compute_features for a few rows (see the notes above)."""
    cols = _small_columns(_frame_source(frame), clf, cache, memo or SmallBatchMemo())
    series = []
    for c, t in FEATURE_SCHEMA.items():
        if c in PASSTHROUGH:
            s = frame.get_column(c)
            series.append(s if s.dtype == t else s.cast(t))
        else:
            series.append(pl.Series(c, cols[c]))
    return pl.DataFrame(series)


def feature_columns(
    rows: Sequence[Row],
    clf: TextClassifiers,
    cache: TextFeatureCache | None = None,
    memo: SmallBatchMemo | None = None,
) -> dict[str, np.ndarray]:
    """The small-batch path on normalised rows, as NumPy columns, no frame built.

    Column for column what ``compute_features(events_frame(rows)).to_numpy()``
    gives (``ts`` as datetime64[ms], strings as object arrays); meant for the
    gateway's micro-batches (a test checks the equality).
    """
    src = _rows_source(rows)
    out = _small_columns(src, clf, cache, memo or SmallBatchMemo())
    out["ts"] = np.array(src["ts"], dtype=np.int64).astype("datetime64[ms]")
    for c in PASSTHROUGH[1:]:
        out[c] = np.array(src[c], dtype=object)
    return {c: out[c] for c in FEATURE_SCHEMA}
