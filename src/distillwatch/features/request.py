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

from functools import cache

import numpy as np
import polars as pl
import pyarrow as pa

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.fingerprint import NUM_BANDS, band_keys, minhash_signatures
from distillwatch.features.hashing import (
    unigram_list_hash_expr,
    unigram_text_list,
    unigram_tokens_py,
)
from distillwatch.features.text import (
    PyRegex,
    clip_str,
    hash64_expr,
    slot_rules_list,
    slot_rules_py,
    template_expr,
    template_fold_expr,
    tokens_expr,
)

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
    sig = minhash_signatures(tokens)
    bands = band_keys(sig)
    bands[empty] = 0
    scores = clf.score_unigrams(grams)
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
        hash64_expr(pl.col("ip")).alias("ip_key"),
        _ip_prefix().alias("ip_prefix"),
        hash64_expr(pl.col("user_agent")).alias("ua_key"),
        hash64_expr(pl.col("end_user_id")).alias("eu_key"),
    ]


def compute_features(
    events: pa.RecordBatch | pa.Table | pl.DataFrame,
    clf: TextClassifiers | None = None,
    cache: TextFeatureCache | None = None,
    small_batch_max: int = SMALL_BATCH_MAX,
) -> pl.DataFrame:
    """The feature frame of a batch of normalised events (same row order).

    Batches of at most ``small_batch_max`` rows (the gateway's micro-batches)
    take :func:`_small_batch`: the same definitions, with the regex steps run
    by Python's ``re`` (compiled once) instead of Polars (compiled on every
    call). The output is identical either way (tests force each path).
    """
    n = events.height if isinstance(events, pl.DataFrame) else events.num_rows
    if n == 0:
        return pl.DataFrame(schema=FEATURE_SCHEMA)
    clf = clf or TextClassifiers.load()
    if n <= small_batch_max:
        # the Arrow C interface import: a third of from_arrow's cost, same frame
        return _small_batch(pl.DataFrame(events), clf, cache)
    frame = events if isinstance(events, pl.DataFrame) else pl.from_arrow(events)
    assert isinstance(frame, pl.DataFrame)
    head = frame.select(_head_exprs())  # request shape (final types) + text keys, one query
    text = _text_features(head, clf, cache)
    cols = {c: head.get_column(c) for c in _SHAPE_COLUMNS}
    cols.update({c: text.get_column(c) for c in text.columns})
    return pl.DataFrame([cols[c] for c in FEATURE_SCHEMA])


def prepare_small_batch() -> None:
    """Compile the small-batch path's patterns now rather than on the first
    small batch (~0.1-0.3 s once: the Unicode class tables come from Polars)."""
    slot_rules_py("")
    unigram_tokens_py("")
    _ip_regexes()


def _small_batch(
    frame: pl.DataFrame, clf: TextClassifiers, cache: TextFeatureCache | None
) -> pl.DataFrame:
    """compute_features for a few rows: two Polars queries around the Python regex steps.

    Query 1 is the batch path's head (request shape, text key) plus the
    regex-free text columns (system key, empty flag, lower-cased IP). Python
    clips the texts (:func:`clip_str`, :meth:`TextClassifiers.texts`), lower-
    cases the classifier's (Polars beyond ASCII), and applies the slot rules,
    the classifier tokeniser and the IP prefix patterns; query 2 folds case,
    splits and hashes what they produced. As in the batch path, text features
    are computed once per distinct text (and cached).
    """
    head = frame.select(_small_head_exprs())
    n = head.height
    keys = head.get_column("text_key").to_numpy()
    # distinct keys in first-seen order (np.unique's fixed cost is more than a dict's here)
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
        todo = first
    else:
        hit, cached = cache.lookup(uniq)
        todo = first[~hit]
    rows = todo.tolist()
    k = len(rows)
    systems = head.get_column("system").to_list()
    prompts = head.get_column("prompt").to_list()
    ips = head.get_column("ip").to_list()
    ips_lower = head.get_column("ip_lower").to_list()
    clipped = [clip_str(prompts[i]) for i in rows]
    texts = unigram_text_list(clf.texts([systems[i] for i in rows], [prompts[i] for i in rows]))
    pad: list[None] = [None] * (n - k)  # text columns hold k rows; the IP prefix n
    tail = pl.DataFrame(
        [
            pl.Series("template", [*slot_rules_list(clipped), *pad], pl.String),
            pl.Series("grams", [*map(unigram_tokens_py, texts), *pad], pl.List(pl.String)),
            pl.Series(
                "ip_prefix",
                [_ip_prefix_py(a, b) for a, b in zip(ips, ips_lower, strict=True)],
                pl.String,
            ),
        ]
    ).select(_small_tail_exprs())
    fresh = None
    if k:
        fresh = _text_columns(
            tail.get_column("tokens").head(k),
            tail.get_column("template_key").head(k).to_numpy(),
            head.get_column("sys_key").to_numpy()[todo],
            head.get_column("empty").to_numpy()[todo],
            tail.get_column("grams").head(k),
            clf,
        )
    cols = {c: head.get_column(c) for c in _SHAPE_COLUMNS if c != "ip_prefix"}
    cols["ip_prefix"] = tail.get_column("ip_prefix")
    for c, v in _scatter(uniq, inverse, hit, cached, fresh, cache).items():
        cols[c] = pl.Series(c, v)
    return pl.DataFrame([cols[c] for c in FEATURE_SCHEMA])


@cache
def _small_head_exprs() -> list[pl.Expr]:
    """Query 1 of the small-batch path."""
    shape = [e for e in _head_exprs() if e.meta.output_name() != "ip_prefix"]
    return [
        *shape,
        *_text_side_exprs(),
        pl.col("ip"),
        _ip_lower().alias("ip_lower"),
    ]


@cache
def _small_tail_exprs() -> list[pl.Expr]:
    """Query 2 of the small-batch path, over what the Python regex steps produced."""
    template = template_fold_expr(pl.col("template"))
    return [
        tokens_expr(template).alias("tokens"),
        hash64_expr(template).alias("template_key"),
        unigram_list_hash_expr(pl.col("grams")).alias("grams"),
        _final_expr(hash64_expr(pl.col("ip_prefix")), "ip_prefix"),
    ]


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
