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
That path lives in :mod:`distillwatch.features.small_batch`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers, TextScores
from distillwatch.features.fingerprint import (
    NUM_BANDS,
    SHINGLE_SEED,
    band_keys,
    shingle_hashes_from_lists,
    signatures_from_shingles,
)
from distillwatch.features.text import (
    PyRegex,
    hash64_expr,
    template_expr,
    tokens_expr,
)

if TYPE_CHECKING:
    from distillwatch.features.small_batch import SmallBatchMemo

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
    "datagen": pl.Float32(),
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
    "datagen": np.dtype(np.float32),
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
    """The regex-free text columns: system prompt key, empty-prompt flag.

    An empty system prompt is no system prompt (key 0): otherwise every
    account sending ``"system": ""`` would share a "system prompt" fact and
    be linkable on it, and a text cache (which keys None and "" alike) could
    hand one the other's key.
    """
    system = pl.when(pl.col("system") != "").then(pl.col("system"))
    return [
        hash64_expr(system).alias("sys_key"),
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
def _token_hashes_expr() -> pl.Expr:
    """The template tokens' shingle-seed hashes (what MinHash takes), hashed in
    the query: the token strings never leave Polars."""
    return tokens_expr(pl.col("template")).list.eval(pl.element().hash(seed=SHINGLE_SEED))


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
        .with_columns(
            _token_hashes_expr().alias("token_hashes"),
            _template_key_expr().alias("template_key"),
        )
        .collect()
    )
    bands = band_keys(signatures_from_shingles(*shingle_hashes_from_lists(tmpl["token_hashes"])))
    return _text_dict(
        bands,
        tmpl["template_key"].to_numpy(),
        tmpl["sys_key"].to_numpy(),
        tmpl["empty"].to_numpy(),
        clf.score_unigrams(tmpl["grams"]),
    )


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
        "datagen": scores.datagen,
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
    if len(inverse) == 1:  # one row, one text: its columns as they are (fresh arrays)
        return {"text_key": uniq, **cols}
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
    take :func:`~distillwatch.features.small_batch.small_batch_features`: the
    same definitions, with the regex steps run
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
        from distillwatch.features.small_batch import small_batch_features

        return small_batch_features(pl.DataFrame(events), clf, cache, memo)
    frame = events if isinstance(events, pl.DataFrame) else pl.from_arrow(events)
    assert isinstance(frame, pl.DataFrame)
    head = frame.select(_head_exprs())  # request shape (final types) + text keys, one query
    text = _text_features(head, clf, cache)
    cols = {c: head.get_column(c) for c in _SHAPE_COLUMNS}
    cols.update({c: text.get_column(c) for c in text.columns})
    return pl.DataFrame([cols[c] for c in FEATURE_SCHEMA])


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
