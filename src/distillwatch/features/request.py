"""Per-request features: one definition for batch, replay, gateway and Spark.

:func:`compute_features` turns a batch of normalised events
(:data:`distillwatch.ingest.schema.EVENT_SCHEMA`) into the feature frame
(:data:`FEATURE_SCHEMA`). Text work (slot normalisation, MinHash, the
classifiers) runs once per distinct (system, prompt) pair of the batch and is
scattered back with NumPy, so templated traffic costs far less than its row
count. Everything else is a Polars expression over the whole batch.

Small batches (the inline gateway's micro-batches) pay Polars' fixed costs
instead, above all a regex compilation per pattern per call, so up to
:data:`SMALL_BATCH_MAX` rows the regex steps run with Python's ``re`` on the
same pattern strings (see :mod:`distillwatch.features.text`); every other
step is the same expression or function. Both paths give identical frames.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers, TextScores
from distillwatch.features.fingerprint import (
    NUM_BANDS,
    SHINGLE_SEED,
    band_keys,
    minhash_signatures,
    shingles_from_token_hashes,
    signatures_from_shingles,
)
from distillwatch.features.hashing import HASH_SEED, unigram_tokens_py
from distillwatch.features.text import (
    HASH64_SEED,
    PyRegex,
    clip_str,
    hash64_expr,
    is_blank,
    lowercase_list,
    polars_whitespace,
    slot_rules_list,
    slot_rules_py,
    template_expr,
    tokens_expr,
    tokens_py,
)
from distillwatch.ingest.normalize import Row
from distillwatch.ingest.schema import EVENT_SCHEMA

LONG_MAX_TOKENS = 4000
# Batches up to this many rows take the small-batch path (same output, see
# compute_features).
SMALL_BATCH_MAX = 32
REASONING_EFFORTS_HIGH = ("high", "medium", "xhigh", "max")

FEATURE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("ms", "UTC"),
    "account_id": pl.String(),
    "end_user_id": pl.String(),
    "model": pl.String(),
    "text_key": pl.UInt64(),
    "template_key": pl.UInt64(),
    "sys_key": pl.UInt64(),
    **{f"lsh_{j}": pl.UInt64() for j in range(NUM_BANDS)},
    "cot": pl.Float32(),
    "rubric": pl.Float32(),
    "capability": pl.Int8(),
    "single_turn": pl.Boolean(),
    "tool_use": pl.Boolean(),
    "param_sig": pl.UInt64(),
    "maxlen_hit": pl.Boolean(),
    "long_request": pl.Boolean(),
    "prob_harvest": pl.Boolean(),
    "reasoning_harvest": pl.Boolean(),
    "output_tokens": pl.Int32(),
    "ip_key": pl.UInt64(),
    "ip_prefix": pl.UInt64(),
    "ua_key": pl.UInt64(),
    "eu_key": pl.UInt64(),
}


TEXT_DTYPES: dict[str, np.dtype] = {
    "template_key": np.dtype(np.uint64),
    "sys_key": np.dtype(np.uint64),
    "cot": np.dtype(np.float32),
    "rubric": np.dtype(np.float32),
    "capability": np.dtype(np.int8),
    **{f"lsh_{j}": np.dtype(np.uint64) for j in range(NUM_BANDS)},
}


# Expressions are built once: building them costs more than running them on
# a batch of one (the gateway's case).
@cache
def _text_exprs() -> list[pl.Expr]:
    return [template_expr(pl.col("prompt")).alias("template"), *_text_side_exprs()]


@cache
def _text_side_exprs() -> list[pl.Expr]:
    """The regex-free text columns: system prompt key, empty-prompt flag."""
    return [
        hash64_expr(pl.col("system")).alias("sys_key"),
        (pl.col("prompt").fill_null("").str.strip_chars().str.len_chars() == 0).alias("empty"),
    ]


# text_key: hash of system and prompt (null as empty) joined by TEXT_KEY_SEP
TEXT_KEY_SEP = "\x1e"
TEXT_KEY_SEED = 3


@cache
def _keyed_exprs() -> list[pl.Expr]:
    text = [pl.col("system").fill_null(""), pl.col("prompt").fill_null("")]
    return [
        pl.concat_str(text, separator=TEXT_KEY_SEP).hash(seed=TEXT_KEY_SEED).alias("text_key"),
        pl.col("system"),
        pl.col("prompt"),
    ]


@cache
def _tokens_expr() -> pl.Expr:
    return tokens_expr(pl.col("template")).alias("tokens")


@cache
def _template_key_expr() -> pl.Expr:
    return hash64_expr(pl.col("template")).alias("template")


def score_texts(distinct: pl.DataFrame, clf: TextClassifiers) -> dict[str, np.ndarray]:
    """Text features (TEXT_DTYPES columns) of distinct (system, prompt) rows.

    All string work (slot templates, tokens, hashes, the classifiers' grams)
    is one Polars query; the rest is NumPy.
    """
    tmpl = (
        distinct.lazy()
        .select(
            *_text_exprs(),
            clf.unigram_expr(pl.col("system"), pl.col("prompt")).alias("grams"),
        )
        .with_columns(_tokens_expr(), _template_key_expr().alias("template_key"))
        .collect()
    )
    return _text_columns(
        tmpl["tokens"],
        tmpl["template_key"].to_numpy(),
        tmpl["sys_key"].to_numpy(),
        tmpl["empty"].to_numpy(),
        tmpl["grams"],
        clf,
    )


def _text_columns(
    tokens: pl.Series,
    template_key: np.ndarray,
    sys_key: np.ndarray,
    empty: np.ndarray,
    grams: pl.Series,
    clf: TextClassifiers,
) -> dict[str, np.ndarray]:
    """TEXT_DTYPES columns from template tokens, keys, empty flags and unigram hash lists."""
    bands = band_keys(minhash_signatures(tokens))
    return _text_dict(bands, template_key, sys_key, empty, clf.score_unigrams(grams))


def _text_dict(
    bands: np.ndarray,
    template_key: np.ndarray,
    sys_key: np.ndarray,
    empty: np.ndarray,
    scores: TextScores,
) -> dict[str, np.ndarray]:
    """TEXT_DTYPES columns from the templates' band keys (set to 0 here for
    empty prompts), keys, empty flags and classifier scores."""
    bands[empty] = 0
    cols: dict[str, np.ndarray] = {
        "template_key": template_key,
        "sys_key": sys_key,
        "cot": scores.cot,
        "rubric": scores.rubric,
        "capability": scores.capability,
    }
    for j in range(NUM_BANDS):
        cols[f"lsh_{j}"] = bands[:, j]
    return {c: np.asarray(cols[c], dtype=t) for c, t in TEXT_DTYPES.items()}


def _text_features(
    frame: pl.DataFrame, clf: TextClassifiers, cache: TextFeatureCache | None
) -> pl.DataFrame:
    """Fingerprints and classifier scores, computed once per distinct text
    (and, with a cache, once per text while it stays cached)."""
    keyed = frame  # carries text_key, system and prompt
    keys = keyed.get_column("text_key").to_numpy()
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    hit: np.ndarray | None = None
    cached: dict[str, np.ndarray] = {}
    if cache is None:
        fresh: dict[str, np.ndarray] | None = score_texts(keyed[first], clf)
    else:
        hit, cached = cache.lookup(uniq)
        miss = np.flatnonzero(~hit)
        fresh = score_texts(keyed[first[miss]], clf) if len(miss) else None
    return pl.DataFrame(_scatter(uniq, inverse, hit, cached, fresh, cache))


def _scatter(
    uniq: np.ndarray,
    inverse: np.ndarray,
    hit: np.ndarray | None,
    cached: dict[str, np.ndarray],
    fresh: dict[str, np.ndarray] | None,
    cache: TextFeatureCache | None,
) -> dict[str, np.ndarray]:
    """Per-row text columns (and text_key) from the distinct texts' cached and
    freshly computed rows; the fresh ones go into the cache."""
    if hit is None:
        assert fresh is not None
        cols = fresh
    else:
        miss = np.flatnonzero(~hit)
        if len(miss) == 0:  # all cached (the columns lookup made, in order)
            cols = cached
        elif len(miss) == len(uniq):  # none cached
            assert fresh is not None
            cols = fresh
        else:
            cols = {}
            for c, t in TEXT_DTYPES.items():
                col = np.empty(len(uniq), dtype=t)
                col[hit] = cached[c]
                if fresh is not None:
                    col[miss] = fresh[c]
                cols[c] = col
        if fresh is not None and cache is not None:
            cache.insert(uniq[miss], fresh)
    out = {"text_key": uniq[inverse]}
    out.update({c: v[inverse] for c, v in cols.items()})
    return out


def _param_signature() -> pl.Expr:
    parts = [
        pl.col(c).cast(pl.String).fill_null("-")
        for c in (
            "max_tokens",
            "temperature",
            "top_p",
            "n",
            "logprobs",
            "top_logprobs",
            "stream",
            "reasoning_effort",
            "tools",
        )
    ]
    return pl.concat_str(parts, separator="|").hash(seed=5)


# The network an address belongs to: an IPv4 /24, else the first three groups
# of a (lower-cased) IPv6 address.
IPV4_PREFIX = r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$"
IPV6_PREFIX = r"^([0-9a-f]{0,4}:[0-9a-f]{0,4}:[0-9a-f]{0,4})"


def _ip_prefix() -> pl.Expr:
    v4 = pl.col("ip").str.extract(IPV4_PREFIX, 1)
    v6 = _ip_lower().str.extract(IPV6_PREFIX, 1)
    return hash64_expr(pl.coalesce(v4, v6))


def _ip_lower() -> pl.Expr:
    return pl.col("ip").str.to_lowercase()


@cache
def _ip_regexes() -> tuple[PyRegex, PyRegex]:
    return PyRegex(IPV4_PREFIX), PyRegex(IPV6_PREFIX)


def _ip_prefix_py(ip: str | None, ip_lower: str | None) -> str | None:
    """The string :func:`_ip_prefix` hashes, with Python's ``re`` (``ip_lower`` from Polars)."""
    if ip is None or ip_lower is None:
        return None
    v4, v6 = _ip_regexes()
    m = v4.for_text(ip).search(ip)
    if m is None:
        m = v6.for_text(ip_lower).search(ip_lower)
    return None if m is None else m.group(1)


@cache
def _request_shape() -> list[pl.Expr]:
    max_tokens = pl.col("max_tokens")
    out_tokens = pl.col("output_tokens")
    return [
        pl.col("ts"),
        pl.col("account_id"),
        pl.col("end_user_id"),
        pl.col("model"),
        ((pl.col("n_user_turns") <= 1) & (pl.col("n_assistant_turns") == 0)).alias("single_turn"),
        ((pl.col("tools").fill_null(0) > 0) | (pl.col("n_tool_messages") > 0)).alias("tool_use"),
        _param_signature().alias("param_sig"),
        (
            (pl.col("finish_reason") == "length").fill_null(False)
            | ((out_tokens >= 0.95 * max_tokens) & (max_tokens >= 256)).fill_null(False)
        ).alias("maxlen_hit"),
        (max_tokens.fill_null(0) >= LONG_MAX_TOKENS).alias("long_request"),
        (
            pl.col("logprobs").fill_null(False)
            | (pl.col("top_logprobs").fill_null(0) > 0)
            | (pl.col("n").fill_null(1) > 1)
        ).alias("prob_harvest"),
        (
            pl.col("reasoning_effort").is_in(REASONING_EFFORTS_HIGH).fill_null(False)
            | (pl.col("reasoning_tokens").fill_null(0) > 0)
            | (pl.col("reasoning_chars").fill_null(0) > 0)
        ).alias("reasoning_harvest"),
        out_tokens.fill_null(0).cast(pl.Int32).alias("output_tokens"),
        *(hash64_expr(pl.col(src)).alias(name) for name, src in HASHED_COLUMNS.items()),
        _ip_prefix().alias("ip_prefix"),
    ]


# request-shape columns that are the hash64 of one event column
HASHED_COLUMNS = {"ip_key": "ip", "ua_key": "user_agent", "eu_key": "end_user_id"}


def compute_features(
    events: pa.RecordBatch | pa.Table | pl.DataFrame,
    clf: TextClassifiers | None = None,
    cache: TextFeatureCache | None = None,
    small_batch_max: int = SMALL_BATCH_MAX,
    memo: SmallBatchMemo | None = None,
) -> pl.DataFrame:
    """The feature frame of a batch of normalised events (same row order).

    Batches of at most ``small_batch_max`` rows (the gateway's micro-batches)
    take :func:`_small_batch`: the same definitions, with the regex steps run
    by Python's ``re`` (compiled once) instead of Polars (compiled on every
    call), and the Polars steps' results remembered in ``memo`` (if given)
    for inputs seen before. The output is identical either way (tests force
    each path).
    """
    n = events.height if isinstance(events, pl.DataFrame) else events.num_rows
    if n == 0:
        return pl.DataFrame(schema=FEATURE_SCHEMA)
    clf = clf or TextClassifiers.load()
    if n <= small_batch_max:
        # the Arrow C interface import: a third of from_arrow's cost, same frame
        return _small_batch(pl.DataFrame(events), clf, cache, memo)
    frame = events if isinstance(events, pl.DataFrame) else pl.from_arrow(events)
    assert isinstance(frame, pl.DataFrame)
    head = frame.select(_head_exprs())  # request shape (final types) + text keys, one query
    text = _text_features(head, clf, cache)
    cols = {c: head.get_column(c) for c in _SHAPE_COLUMNS}
    cols.update({c: text.get_column(c) for c in text.columns})
    return pl.DataFrame([cols[c] for c in FEATURE_SCHEMA])


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
# * every string hash (text key, template, tokens, grams, system, IP, user
#   agent, end user) by Polars in one query over just the strings not hashed
#   before (SmallBatchMemo.hashes);
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
    ) -> None:
        self.n = n
        self._values = values
        self.frame = frame
        self._cols: dict[str, list[Any]] = {}
        # the types of the columns the shape expressions read, as one string
        # (the shape memo's table key: the same values cast alike)
        self.shape_types = shape_types

    def __getitem__(self, name: str) -> list[Any]:
        col = self._cols.get(name)
        if col is None:
            col = self._cols[name] = self._values(name)
        return col


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

    return _Source(len(rows), values, _event_shape_types(), frame)


def _shape_columns(src: _Source, memo: SmallBatchMemo) -> dict[str, list[Any]]:
    """Request-shape columns other than hashes and identity, from the memo where it can.

    The memo maps the values of every column these expressions read (one
    key per row) to all their results, so a hit costs one lookup.
    """
    names, exprs, roots = _shape_exprs()
    table = memo.shape.setdefault(src.shape_types, {})
    keys = list(zip(*(src[r] for r in roots), strict=True))
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
    for i in rows:
        w, j = work[i]
        grams = w.grams[j]
        gram_hashes.extend([h.hash(HASH_SEED, g) for g in grams])
        gram_lens.append(len(grams))
    template_key = np.array([feats[t][0] for t in templates], dtype=np.uint64)
    bands = np.array([feats[t][1] for t in templates], dtype=np.uint64).reshape(-1, NUM_BANDS)
    scores = clf.score_unigram_hashes(
        np.array(gram_hashes, dtype=np.uint64), np.array(gram_lens, dtype=np.int64)
    )
    sys_key = np.array([h.hash64(systems[i]) for i in rows], dtype=np.uint64)
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
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum([len(ts) for ts in tokens.values()], out=offsets[1:])
    bands = band_keys(signatures_from_shingles(shingles_from_token_hashes(tok, offsets), offsets))
    out = {t: (h.hash(HASH64_SEED, t), row) for t, row in zip(tokens, bands, strict=True)}
    chars = memo.template_chars + sum(map(len, tokens))
    if len(memo.templates) + len(tokens) > memo.capacity or chars > memo.max_chars:
        memo.templates.clear()
        chars = sum(map(len, tokens))
    memo.template_chars = chars
    memo.templates.update(out)
    return out


def _small_batch(
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


_SHAPE_COLUMNS = (
    "ts",
    "account_id",
    "end_user_id",
    "model",
    "single_turn",
    "tool_use",
    "param_sig",
    "maxlen_hit",
    "long_request",
    "prob_harvest",
    "reasoning_harvest",
    "output_tokens",
    "ip_key",
    "ip_prefix",
    "ua_key",
    "eu_key",
)


@cache
def _head_exprs() -> list[pl.Expr]:
    """Request-shape columns cast to FEATURE_SCHEMA (never null) plus the text key."""
    return [_final_expr(e, e.meta.output_name()) for e in _request_shape()] + _keyed_exprs()


def _final_expr(e: pl.Expr, name: str) -> pl.Expr:
    """``e`` cast to the FEATURE_SCHEMA type of ``name``, null as zero unless nullable."""
    t = FEATURE_SCHEMA[name]
    e = e.cast(t)
    return (e if name in _NULLABLE else e.fill_null(_ZERO[t])).alias(name)


# Feature columns are never null (state folding reads them as plain NumPy);
# identity columns may be.
_NULLABLE = {"ts", "account_id", "end_user_id", "model"}
_ZERO: dict[pl.DataType, object] = {
    pl.Boolean(): False,
    pl.Float32(): 0.0,
    pl.Int8(): 0,
    pl.Int32(): 0,
    pl.UInt64(): 0,
}
