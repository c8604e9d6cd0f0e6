"""Per-request features: one definition for batch, replay, gateway and Spark.

:func:`compute_features` turns a batch of normalised events
(:data:`distillwatch.ingest.schema.EVENT_SCHEMA`) into the feature frame
(:data:`FEATURE_SCHEMA`). Text work (slot normalisation, MinHash, the
classifiers) runs once per distinct (system, prompt) pair of the batch and is
scattered back with NumPy, so templated traffic costs far less than its row
count. Everything else is a Polars expression over the whole batch.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl
import pyarrow as pa

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.fingerprint import NUM_BANDS, band_keys, minhash_signatures
from distillwatch.features.text import hash64_expr, template_expr, tokens_expr

LONG_MAX_TOKENS = 4000
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
    return [
        template_expr(pl.col("prompt")).alias("template"),
        hash64_expr(pl.col("system")).alias("sys_key"),
        (pl.col("prompt").fill_null("").str.strip_chars().str.len_chars() == 0).alias("empty"),
    ]


@cache
def _keyed_exprs() -> list[pl.Expr]:
    text = [pl.col("system").fill_null(""), pl.col("prompt").fill_null("")]
    return [
        pl.concat_str(text, separator="\x1e").hash(seed=3).alias("text_key"),
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
    sig = minhash_signatures(tmpl["tokens"])
    bands = band_keys(sig)
    bands[tmpl["empty"].to_numpy()] = 0
    scores = clf.score_unigrams(tmpl["grams"])
    cols: dict[str, np.ndarray] = {
        "template_key": tmpl["template_key"].to_numpy(),
        "sys_key": tmpl["sys_key"].to_numpy(),
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
    if cache is None:
        cols = score_texts(keyed[first], clf)
    else:
        hit, cached = cache.lookup(uniq)
        miss = np.flatnonzero(~hit)
        fresh = score_texts(keyed[first[miss]], clf) if len(miss) else None
        cols = {}
        for c, t in TEXT_DTYPES.items():
            col = np.empty(len(uniq), dtype=t)
            col[hit] = cached[c]
            if fresh is not None:
                col[miss] = fresh[c]
            cols[c] = col
        if fresh is not None:
            cache.insert(uniq[miss], fresh)
    out = {"text_key": uniq[inverse]}
    out.update({c: v[inverse] for c, v in cols.items()})
    return pl.DataFrame(out)


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


def _ip_prefix() -> pl.Expr:
    ip = pl.col("ip")
    v4 = ip.str.extract(r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$", 1)
    v6 = ip.str.to_lowercase().str.extract(r"^([0-9a-f]{0,4}:[0-9a-f]{0,4}:[0-9a-f]{0,4})", 1)
    return hash64_expr(pl.coalesce(v4, v6))


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
        hash64_expr(pl.col("ip")).alias("ip_key"),
        _ip_prefix().alias("ip_prefix"),
        hash64_expr(pl.col("user_agent")).alias("ua_key"),
        hash64_expr(pl.col("end_user_id")).alias("eu_key"),
    ]


def compute_features(
    events: pa.RecordBatch | pa.Table | pl.DataFrame,
    clf: TextClassifiers | None = None,
    cache: TextFeatureCache | None = None,
) -> pl.DataFrame:
    """The feature frame of a batch of normalised events (same row order)."""
    frame = events if isinstance(events, pl.DataFrame) else pl.from_arrow(events)
    assert isinstance(frame, pl.DataFrame)
    if frame.height == 0:
        return pl.DataFrame(schema=FEATURE_SCHEMA)
    clf = clf or TextClassifiers.load()
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
    out = []
    for e in _request_shape():
        name = e.meta.output_name()
        t = FEATURE_SCHEMA[name]
        e = e.cast(t)
        out.append((e if name in _NULLABLE else e.fill_null(_ZERO[t])).alias(name))
    return out + _keyed_exprs()


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
