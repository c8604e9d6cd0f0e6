"""The small-batch path of compute_features equals the batch path, column for column.

The small path runs the regex rules (SLOT_RULES, the classifier tokeniser,
the IP prefix patterns) with Python's ``re`` instead of Polars' Rust engine,
so these tests hunt for texts where the two engines could disagree: Unicode
classes (combining marks, No digits, astral letters and digits, U+001C..U+001F
whitespace), case folding (final sigma, dotted I, Kelvin sign), quotes of all
kinds, code fences, <think> blocks, URLs, e-mails, hex, numbers, long tokens,
texts over both clip lengths, and IPv4/IPv6/garbage addresses.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.hashing import (
    SPLIT_SCRIPTS,
    TOKEN_PATTERN,
    unigram_text_list,
    unigram_tokens_py,
)
from distillwatch.features.request import IPV4_PREFIX, IPV6_PREFIX, TEXT_DTYPES, compute_features
from distillwatch.features.small_batch import prepare_small_batch
from distillwatch.features.text import (
    HEAD_CHARS,
    SLOT_RULES,
    TAIL_CHARS,
    PyRegex,
    clip_expr,
    clip_str,
    python_pattern,
    rust_class,
    slot_rules_expr,
    slot_rules_list,
    slot_rules_py_is_quick,
)
from distillwatch.ingest.readers import iter_event_batches, read_events
from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.schema import EVENT_SCHEMA
from distillwatch.sim import simulate

BIG = 10**9  # small_batch_max that forces the small path
FIXTURES = Path(__file__).parent / "fixtures" / "ingest"

PIECES = [
    "```",
    "```python\nprint('x')\n```",
    "``",
    "`",
    "<think>",
    "</think>",
    "<thinking>",
    "</thinking>",
    "<reasoning>",
    "</reasoning>",
    "<THINK>",
    "<think>step\none</think>",
    '"',
    '"quoted text"',
    "“",
    "”",
    "“curly quote”",
    "'",
    "'a single quoted span'",
    "'\n'",
    "http://",
    "https://example.com/a?b=1&c=2",
    "http://ü.example/ß",
    "@",
    "a@b.co",
    "first.last+tag@mail-server.example.org",
    "ü@ö.de",
    "x@y",
    "0x1f2e3d4c5b6a7980",
    "DEADBEEFdeadbeefCAFE",
    "-12,345.67",
    "+3",
    "1,000,",
    "3.",
    ".5",
    "12",
    "٣٤",  # Arabic-Indic digits (Nd)
    "𝟙𝟚",  # mathematical digits (astral Nd)
    "𐒠𐒡",  # Osmanya digits (astral Nd)
    "²",  # No: \w for Python, not for Rust
    "½",
    "Ⅻ",  # Nl
    "İ",  # lower-cases to two characters
    "Σ",
    "ΑΣ",
    "ΑΣ.Β",  # final-sigma context across case-ignorable punctuation
    "ς",
    "ß",
    "ǅ",
    "K",  # Kelvin sign
    "Å",  # Angstrom sign
    "e\u0301",  # combining acute (Mn): \w for Rust, not for Python
    "\u0345",
    "\u200d",
    "\u200c",
    "‿",  # Pc
    "_",
    "-",
    ".",
    "+",
    ",",
    "ⓐ",
    "Ⓐ",
    "𝔘𝔫𝔦",  # astral letters
    "😀",
    "日本語のテキスト",
    "请一步一步地思考",
    "用Python写",
    "단계별로 생각하고",
    "ｶﾀｶﾅー・",
    "\U00020000\U0002a6d6",  # CJK extension B (astral)
    "々〆〇",
    "ελληνικά",
    "\x1c",
    "\x1f",
    "\x85",
    "\xa0",
    "\u3000",
    "\u2028",
    "\u180e",
    "\t",
    "\n",
    "\r",
    "\r\n",
    " ",
    "\x00",
    "a" * 30,
    "x" * 24,
    "b" * 25,
    "w" * 300,
    "Explain step by step",
    "Grade the answer from 1 to 10 using this rubric",
]

FRAGMENT = st.sampled_from(PIECES) | st.text(st.characters(codec="utf-8"), max_size=12)


@st.composite
def texts(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["none", "empty", "mix", "mix", "mix", "long", "random"]))
    if kind == "none":
        return None
    if kind == "empty":
        return draw(st.sampled_from(["", " ", "\n\t ", "\x1c", "\u3000"]))
    if kind == "random":
        return draw(st.text(st.characters(codec="utf-8"), max_size=80))
    parts = draw(st.lists(FRAGMENT, min_size=1, max_size=25))
    seps = draw(st.lists(st.sampled_from(["", " ", "\n", "  "]), min_size=len(parts)))
    text = "".join(p + s for p, s in zip(parts, seps, strict=False))
    if kind == "long":  # over the template clip (1800) and the classifier clip (2500)
        reps = draw(st.integers(min_value=1, max_value=3000 // max(len(text), 1) + 2))
        text = text * reps + draw(st.sampled_from(["", "TAIL", "“", "```"]))
    return text


IPS = st.sampled_from(
    [
        None,
        "",
        "10.1.2.3",
        "255.255.255.255",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4\n",
        "1234.1.1.1",
        "١.٢.٣.٤",
        "𝟏.𝟐.𝟑.𝟒",
        "2001:DB8:abcd::1",
        "2001:db8:ABCD:0012::1",
        "::1",
        "::",
        "FE80::",
        "fe80:0:0:0:0:0:0:1",
        "ABCD:EF01:2345:6789",
        "abcde:1:2",
        "K:1:2",
        "İ:a:b",
        "garbage",
        "10.0.0.1 ",
    ]
) | st.text(st.sampled_from("0123456789abcdefABCDEF:.Kİ ١"), max_size=16)


@st.composite
def batches(draw: st.DrawFn) -> pa.RecordBatch:
    n = draw(st.integers(min_value=1, max_value=6))
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if rows and draw(st.booleans()) and draw(st.booleans()):
            rows.append(dict(rows[-1], ts=rows[-1]["ts"] + 1))  # a repeated text
            continue
        rows.append(
            {
                "ts": 1_767_225_600_000 + i,
                "account_id": f"acct_{i % 2}",
                "system": draw(texts()),
                "prompt": draw(texts()),
                "ip": draw(IPS),
                "user_agent": draw(st.none() | st.sampled_from(["openai-python/1.0", "curl/8"])),
                "n_user_turns": 1,
                "n_assistant_turns": 0,
                "n_tool_messages": 0,
                "max_tokens": draw(st.none() | st.integers(min_value=0, max_value=9000)),
                "temperature": draw(st.none() | st.floats(min_value=0, max_value=2, width=32)),
            }
        )
    return pa.RecordBatch.from_pylist(rows, schema=EVENT_SCHEMA)


@pytest.fixture(scope="module")
def clf() -> TextClassifiers:
    return TextClassifiers.load()


def both_paths(batch: pa.RecordBatch | pl.DataFrame, clf: TextClassifiers) -> None:
    big = compute_features(batch, clf, small_batch_max=0)
    small = compute_features(batch, clf, small_batch_max=BIG)
    assert_frame_equal(small, big)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches())
def test_small_path_equals_batch_path(batch: pa.RecordBatch) -> None:
    both_paths(batch, TextClassifiers.load())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(texts(), min_size=1, max_size=40))
def test_each_rule_matches_like_rust(values: list[str | None]) -> None:
    """Every pattern alone (earlier rules would hide later ones in the chain)."""
    raw = [v or "" for v in values]
    series = pl.Series(raw, dtype=pl.String)
    for pattern, _ in SLOT_RULES:
        rx = PyRegex(pattern)
        want = series.str.replace_all(pattern, "<X>").to_list()
        assert [rx.for_text(t).sub("<X>", t) for t in raw] == want, pattern
    tokens = PyRegex(TOKEN_PATTERN)
    assert [tokens.for_text(t).findall(t) for t in raw] == series.str.extract_all(
        TOKEN_PATTERN
    ).to_list()
    for pattern in (IPV4_PREFIX, IPV6_PREFIX):
        rx = PyRegex(pattern)
        got = [m.group(1) if (m := rx.for_text(t).search(t)) else None for t in raw]
        assert got == series.str.extract(pattern, 1).to_list(), pattern
    lowered = series.str.to_lowercase().to_list()
    assert [unigram_tokens_py(t) for t in lowered] == series.str.to_lowercase().str.extract_all(
        TOKEN_PATTERN
    ).to_list()
    assert (
        unigram_text_list(values)
        == pl.Series(values, dtype=pl.String).fill_null("").str.to_lowercase().to_list()
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(texts(), min_size=1, max_size=20))
def test_template_stages_match(values: list[str | None]) -> None:
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    clipped = frame.select(clip_expr(pl.col("t").fill_null(""))).to_series().to_list()
    assert [clip_str(v) for v in values] == clipped
    want = frame.select(slot_rules_expr(clip_expr(pl.col("t").fill_null("")))).to_series()
    assert slot_rules_list(clipped) == want.to_list()


def _every_char() -> str:
    cps = np.r_[np.arange(0xD800), np.arange(0xE000, 0x110000)].astype("<u4")
    return cps.tobytes().decode("utf-32-le")


@pytest.mark.parametrize(
    "pattern",
    [
        r"\w",
        r"\d",
        r"\s",
        r"\S",
        r"[\w.+-]",
        r"[\w-]",
        f"[{SPLIT_SCRIPTS}]",  # the classifier tokens: one character of these scripts
        f"[^\\W{SPLIT_SCRIPTS}]",  # or a word character of any other
        r"[^\W\-_]",
    ],
)
def test_classes_agree_on_every_code_point(pattern: str) -> None:
    every = _every_char()  # the pattern matches single characters: removing them compares sets
    want = pl.Series([every]).str.replace_all(pattern, "").item()
    assert PyRegex(pattern).full.sub("", every) == want
    bmp = every[: every.index("\U00010000")]
    want_bmp = pl.Series([bmp]).str.replace_all(pattern, "").item()
    assert PyRegex(pattern).bmp.sub("", bmp) == want_bmp


def test_python_and_rust_classes_really_differ() -> None:
    """Why the classes are spelled out: Python's own would get these wrong."""
    import re

    w = {c for a, b in rust_class("w") for c in range(a, b + 1)}
    assert 0x0301 in w and not re.match(r"\w", "\u0301")  # combining acute
    assert ord("²") not in w and re.match(r"\w", "²")
    s = {c for a, b in rust_class("s") for c in range(a, b + 1)}
    assert 0x1C not in s and re.match(r"\s", "\x1c")
    assert re.search(python_pattern(r"a$"), "a\n") is None  # Python's $ would match


@pytest.mark.parametrize(
    "pattern",
    [
        r"\bx",
        r"(?i)x",
        r"[^\w]",
        r"[^\W\d]",
        r"[\W]",
        r"\p{L}",
        r"[a[b]]",
        r"[a&&b]",
        r"x(?s)",
        r"\x41",
    ],
)
def test_untranslatable_patterns_raise(pattern: str) -> None:
    with pytest.raises(ValueError):
        python_pattern(pattern)


def test_ascii_lower_is_polars_lower() -> None:
    every_ascii = "".join(map(chr, range(128)))
    assert unigram_text_list([every_ascii]) == [pl.Series([every_ascii]).str.to_lowercase().item()]


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 1800,  # e-mail rule: rescans the run from every position
        "“" * 1800,  # unclosed curly quotes
        "<think>" * 250,  # unclosed think blocks
        "`" * 1800,  # backtick run
        "x@" * 900,
    ],
)
def test_hostile_texts_take_the_polars_rules(hostile: str) -> None:
    assert not slot_rules_py_is_quick(hostile)
    want = pl.DataFrame({"t": [hostile]}).select(slot_rules_expr(pl.col("t"))).item()
    assert slot_rules_list([hostile, "short"]) == [want, "short"]


def test_clip_lengths_are_the_template_ones() -> None:
    text = "h" * HEAD_CHARS + "m" * 10 + "t" * TAIL_CHARS
    assert clip_str(text) == "h" * HEAD_CHARS + " " + "t" * TAIL_CHARS


@pytest.fixture(scope="module")
def sim_events(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    d = tmp_path_factory.mktemp("sim")
    simulate("demo", d, seed=7, days=1, scale=0.3)
    df = pl.from_arrow(read_events(d / "events"))
    assert isinstance(df, pl.DataFrame)
    return df


def test_sim_data_small_batches_equal_batch(sim_events: pl.DataFrame, clf: TextClassifiers) -> None:
    events = sim_events[:1500]
    whole = compute_features(events, clf, small_batch_max=0)
    assert_frame_equal(compute_features(events, clf, small_batch_max=BIG), whole)
    table = events.to_arrow()
    pieces = []
    for size in itertools.cycle((1, 3, 32, 7)):
        start = sum(p.height for p in pieces)
        if start >= 600:
            break
        piece = table.slice(start, size).combine_chunks().to_batches()[0]
        pieces.append(compute_features(piece, clf))
    assert_frame_equal(pl.concat(pieces), whole[: sum(p.height for p in pieces)])


def test_fixture_events_both_paths(clf: TextClassifiers) -> None:
    for batch in iter_event_batches(FIXTURES / "good.jsonl", RejectSink()):
        both_paths(batch, clf)
        for i in range(batch.num_rows):
            both_paths(batch.slice(i, 1), clf)


def _random_classifier(prefix_chars: int) -> TextClassifiers:
    """Dense random weights on every feature (window heads too): any gram or prefix
    that differs between the paths moves the scores."""
    from distillwatch.features.classifiers import HEADS

    rng = np.random.default_rng(prefix_chars)
    f = 1 << 12
    return TextClassifiers(
        f,
        np.arange(f),
        rng.normal(size=(f, len(HEADS))).astype(np.float16),
        rng.normal(size=len(HEADS)).astype(np.float32),
        window_tokens=6,
        window_index=np.arange(f),
        window_weights=rng.normal(size=(f, 2)).astype(np.float16),
        window_bias=rng.normal(size=2).astype(np.float32),
        prefix_chars=prefix_chars,
    )


@pytest.mark.parametrize("prefix_chars", [0, 1, 5])
def test_prefix_features_both_paths(prefix_chars: int) -> None:
    clf = _random_classifier(prefix_chars)
    for batch in iter_event_batches(FIXTURES / "good.jsonl", RejectSink()):
        both_paths(batch, clf)
        for i in range(batch.num_rows):
            both_paths(batch.slice(i, 1), clf)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches())
def test_small_path_equals_batch_path_with_prefixes(batch: pa.RecordBatch) -> None:
    both_paths(batch, _random_classifier(4))


def test_small_path_uses_the_cache(sim_events: pl.DataFrame, clf: TextClassifiers) -> None:
    events = sim_events[:200]
    plain = compute_features(events, clf, small_batch_max=0)
    cache = TextFeatureCache(TEXT_DTYPES, capacity=120)  # rotates once, keeps the first 8
    got = pl.concat(
        [compute_features(events[i : i + 8], clf, cache) for i in range(0, 200, 8)]
        + [compute_features(events[:8], clf, cache)]
    )
    assert_frame_equal(got[:200], plain)
    assert_frame_equal(got[200:], plain[:8])
    assert cache.hits > 0 and cache.misses > 0


def test_prepare_compiles_the_patterns_up_front() -> None:
    from distillwatch.features import hashing, request, text

    prepare_small_batch()
    for factory in (text._py_slot_rules, hashing._token_regex, request._ip_regexes):
        assert factory.cache_info().currsize == 1
