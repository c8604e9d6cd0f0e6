"""Slot normalisation and tokenisation of prompt text, vectorised with Polars.

A *template* is what stays when the slots a sender fills in are blanked out:
numbers, quoted spans, code blocks, URLs, e-mail addresses and long
identifiers become placeholders, case and whitespace are folded. Two prompts
built from the same template by different accounts then normalise to (nearly)
the same text, which is what template fingerprints and linking key on.

The expressions run in Rust over a whole batch. Polars compiles every regex
on every call, though (~130 us a pattern on a slow core, whatever the batch
size), so small batches (the inline gateway's) run the slot rules with
Python's ``re`` instead: :class:`PyRegex` compiles the *same* pattern strings
once, with Rust's Unicode classes spelled out (see there), and
:func:`slot_rules_py` applies :data:`SLOT_RULES` in the same order; clipping
is :func:`clip_str` there. Case folding stays a Polars expression in both
paths. Tests check that both paths give identical templates.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
import polars as pl

# Ordered rewrite steps (pattern, placeholder): earlier steps see raw text.
SLOT_RULES: tuple[tuple[str, str], ...] = (
    (r"(?s)```.*?```", " <code> "),
    (r"(?s)<(thinking|think|reasoning)>.*?</(thinking|think|reasoning)>", " <thought> "),
    (r"https?://\S+", " <url> "),
    (r"[\w.+-]+@[\w-]+\.[\w.-]+", " <email> "),
    (r"(?s)\"[^\"]{3,}?\"", " <q> "),
    (r"(?s)“[^”]{3,}?”", " <q> "),
    (r"(?s)'[^'\n]{12,}?'", " <q> "),
    (r"[0-9a-fA-F]{16,}", " <hex> "),
    (r"[-+]?[0-9][0-9,]*(?:\.[0-9]+)?", " <n> "),
    (r"[^ \t\n\r]{25,}", " <tok> "),
)

# Prompts longer than this are cut (head and tail kept) before normalising:
# templates live in the instructions, not in a 50 KB pasted document.
HEAD_CHARS = 1500
TAIL_CHARS = 300
MAX_TOKENS = 96


def clip_expr(
    col: pl.Expr, head: int = HEAD_CHARS, tail: int = TAIL_CHARS, sep: str = " "
) -> pl.Expr:
    """Keep the head and tail of long texts (bounded work per request)."""
    n = col.str.len_chars()
    return (
        pl.when(n > head + tail)
        .then(col.str.slice(0, head) + sep + col.str.slice(-tail))
        .otherwise(col)
    )


def clip_str(
    text: str | None, head: int = HEAD_CHARS, tail: int = TAIL_CHARS, sep: str = " "
) -> str:
    """:func:`clip_expr` of one string, None as empty (what ``template_clip_expr`` gives)."""
    if not text:
        return ""
    if len(text) <= head + tail:
        return text
    return text[:head] + sep + text[-tail:]


def template_expr(col: pl.Expr) -> pl.Expr:
    """Slot-normalised template text of a prompt column."""
    return template_fold_expr(slot_rules_expr(template_clip_expr(col)))


# The three stages of template_expr; the small-batch path (features.request)
# runs the middle one with slot_rules_py.
def template_clip_expr(col: pl.Expr) -> pl.Expr:
    """Stage 1: null as empty text, long texts clipped."""
    return clip_expr(col.fill_null(""))


def slot_rules_expr(col: pl.Expr) -> pl.Expr:
    """Stage 2: the slot rules, in order (Rust regex)."""
    for pattern, placeholder in SLOT_RULES:
        col = col.str.replace_all(pattern, placeholder)
    return col


def template_fold_expr(col: pl.Expr) -> pl.Expr:
    """Stage 3: case folding (always Polars: Rust's and Python's lower-casing
    follow different Unicode versions)."""
    return col.str.to_lowercase()


def tokens_expr(template: pl.Expr) -> pl.Expr:
    """Whitespace tokens of a template (placeholders stay single tokens), capped.

    Literal replacements and a plain split: Unicode-aware regex tokenisation
    costs 4x more and buys nothing for fingerprinting, where consistency is
    all that matters.
    """
    flat = template.str.replace_all("\n", " ", literal=True).str.replace_all(
        "\t", " ", literal=True
    )
    return flat.str.strip_chars().str.split(" ").list.head(MAX_TOKENS)


HASH64_SEED = 7


def hash64_expr(col: pl.Expr) -> pl.Expr:
    """Stable 64-bit hash of a string column (null -> 0).

    Polars' hash is stable for a given Polars version and seed; fingerprints
    that leave the process (intel, shared indicators) use :func:`stable_hash`.
    """
    return pl.when(col.is_null()).then(pl.lit(0, pl.UInt64)).otherwise(col.hash(seed=HASH64_SEED))


# --- Python equivalents for a few texts ---------------------------------------
#
# The small-batch path (features.request) runs these on Python strings; tests
# check each against the expression it stands for, on hostile Unicode.


def lowercase_list(texts: Sequence[str | None]) -> list[str]:
    """``fill_null("").str.to_lowercase()`` for a few texts: ASCII ones lower-cased by
    Python (the same mapping as Polars'), any others in one Polars query (beyond
    ASCII the two follow different Unicode versions)."""
    out = ["" if t is None else t.lower() if t.isascii() else "" for t in texts]
    rest = [i for i, t in enumerate(texts) if t is not None and not t.isascii()]
    if rest:
        frame = pl.DataFrame({"t": [texts[i] for i in rest]}, schema={"t": pl.String})
        done = frame.select(pl.col("t").str.to_lowercase()).to_series().to_list()
        for i, t in zip(rest, done, strict=True):
            out[i] = t
    return out


@functools.cache
def polars_whitespace() -> str:
    """The characters ``str.strip_chars()`` strips, read off the installed Polars
    (Rust's ``char::is_whitespace``; Python's ``str.strip()`` also strips U+001C..U+001F)."""
    cps = np.r_[np.arange(0xD800), np.arange(0xE000, 0x110000)].astype("<u4")
    every = pl.Series(list(cps.tobytes().decode("utf-32-le")), dtype=pl.String)
    gone = every.str.strip_chars().str.len_chars().to_numpy() == 0
    return "".join(every.filter(pl.Series(gone)).to_list())


def is_blank(text: str | None) -> bool:
    """``fill_null("").str.strip_chars().str.len_chars() == 0`` of one text."""
    return not text or not text.strip(polars_whitespace())


def tokens_py(template: str) -> list[str]:
    """:func:`tokens_expr` of one template."""
    flat = template.replace("\n", " ").replace("\t", " ")
    return flat.strip(polars_whitespace()).split(" ")[:MAX_TOKENS]


def template_frame(prompts: pl.Series) -> pl.DataFrame:
    """Template text and tokens for a Series of prompts (helper for tests/tools)."""
    df = pl.DataFrame({"prompt": prompts})
    return df.select(
        template=template_expr(pl.col("prompt")),
    ).with_columns(tokens=tokens_expr(pl.col("template")))


# --- the same patterns with Python's re ---------------------------------------
#
# Both engines use leftmost-first semantics with the same greedy and lazy
# repetition, so a pattern in the subset below finds the same matches in both,
# once three differences are taken out: Unicode classes (Rust's \w has the
# combining marks and Join_Control, Python's has No digits like "²"; Python's
# \s has U+001C..U+001F; each follows its own Unicode version), `$` (Python's
# also matches before a final newline) and replacement-string syntax. Anything
# outside the subset raises, so a new rule cannot silently differ.

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ASTRAL_CLASS = "[\\U00010000-\\U0010ffff]"


@functools.cache
def rust_class(letter: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges (inclusive) of Rust regex's Unicode ``\\w``, ``\\d`` or ``\\s``.

    Read off the installed Polars itself, once: a string of every Unicode
    scalar value goes through ``replace_all`` of the complement class (~0.1 s
    for the three classes), so the Python side is exactly the Rust tables in use.
    """
    if letter not in ("w", "d", "s"):
        raise ValueError(f"no Unicode class \\{letter}")
    cps = np.r_[np.arange(0xD800), np.arange(0xE000, 0x110000)].astype("<u4")
    every = cps.tobytes().decode("utf-32-le")
    kept = pl.Series([every]).str.replace_all("\\" + letter.upper(), "").item()
    k = np.frombuffer(kept.encode("utf-32-le"), dtype="<u4").astype(np.int64)
    if k.size == 0:
        return ()
    brk = np.flatnonzero(np.diff(k) != 1)
    lo = np.r_[k[0], k[brk + 1]]
    hi = np.r_[k[brk], k[-1]]
    return tuple(zip(lo.tolist(), hi.tolist(), strict=True))


def _ranges(pairs: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in pairs)


def _set_class(letters: list[str], items: str, astral: bool) -> str:
    """Python class for the union of Rust classes ``letters`` and literal class ``items``.

    Python checks the astral ranges of a class one by one (\\w has ~400), so
    they sit behind a lookahead that only astral characters pass; the
    ``astral=False`` variant leaves them out (exact for texts without any).
    """
    return _pairs_class([p for c in letters for p in rust_class(c)], items, astral)


def _mask(pairs: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> np.ndarray:
    """Boolean mask over all code points of inclusive ranges ``pairs``."""
    mask = np.zeros(0x110000, dtype=bool)
    for a, b in pairs:
        mask[a : b + 1] = True
    return mask


def _mask_ranges(mask: np.ndarray) -> list[tuple[int, int]]:
    """The inclusive ranges :func:`_mask` would turn into ``mask``."""
    edges = np.flatnonzero(np.diff(np.r_[False, mask, False].astype(np.int8)))
    return list(zip(edges[::2].tolist(), (edges[1::2] - 1).tolist(), strict=True))


def _pairs_class(pairs: list[tuple[int, int]], items: str, astral: bool) -> str:
    """:func:`_set_class` from explicit code point ranges."""
    bmp = [(a, min(b, 0xFFFF)) for a, b in pairs if a <= 0xFFFF]
    high = [(max(a, 0x10000), b) for a, b in pairs if b > 0xFFFF]
    first = f"[{_ranges(bmp)}{items}]"
    if not astral or not high:
        return first
    return f"(?:{first}|(?={_ASTRAL_CLASS})[{_ranges(high)}])"


def _plain_escape(e: str) -> str:
    # \n \t \r and escaped ASCII punctuation mean the same in both engines
    if e in "ntr" or (e.isascii() and not e.isalnum() and not e.isspace()):
        return "\\" + e
    raise ValueError(f"escape \\{e} has no checked Python equivalent")


def _class(pattern: str, i: int, astral: bool) -> tuple[int, str]:
    """Translate the bracket class starting at ``pattern[i]``; (end index, Python text).

    A class without ``\\w \\d \\s`` is the same in both engines and is kept as
    written; one with them is rebuilt from its parts (literals re-escaped so
    that no range appears that was not written). A negated class of negated
    classes and literals (``[^\\W...]``: word characters other than the listed
    ones) is rebuilt as the explicit ranges it matches.
    """
    j = i + 1
    negated = pattern[j] == "^"
    j += negated
    start = j
    letters: list[str] = []
    units: list[str] = []
    spans: list[tuple[int, int]] = []  # the literals' code points

    def atom(k: int) -> tuple[int, str | None, str | None, str]:
        """(next index, class letter, literal as Python class text, literal) at ``k``."""
        c = pattern[k]
        if c == "[" or (c in "&~-|" and pattern[k + 1] == c):
            raise ValueError(f"nested class or set operation in {pattern!r}")
        if c != "\\":
            return k + 1, None, "\\" + c if c in "]^-\\" else c, c
        e = pattern[k + 1]
        if e in "wdsWDS":
            return k + 2, e, None, ""
        return k + 2, None, _plain_escape(e), {"n": "\n", "t": "\t", "r": "\r"}.get(e, e)

    while pattern[j] != "]" or j == start:
        j, letter, lit, char = atom(j)
        if letter is not None:
            letters.append(letter)
        elif pattern[j] == "-" and pattern[j + 1] != "]":
            j, letter, hi, hi_char = atom(j + 1)
            if letter is not None or hi is None:
                raise ValueError(f"range to a class in {pattern!r}")
            units.append(f"{lit}-{hi}")
            spans.append((ord(char), ord(hi_char)))
        else:
            assert lit is not None
            units.append(lit)
            spans.append((ord(char), ord(char)))
    if not letters:
        return j + 1, pattern[i : j + 1]
    if all(c.isupper() for c in letters) and negated:
        # [^\\W\\S x-y]: in every one of the classes and not a listed literal
        keep = np.logical_and.reduce([_mask(rust_class(c.lower())) for c in letters])
        return j + 1, _pairs_class(_mask_ranges(keep & ~_mask(spans)), "", astral)
    if any(c.isupper() for c in letters):
        raise ValueError(f"negated class inside a class in {pattern!r}")
    if negated:
        raise ValueError(f"negated class with \\w/\\d/\\s in {pattern!r}")
    return j + 1, _set_class(letters, "".join(units), astral)


def python_pattern(pattern: str, astral: bool = True) -> str:
    """A Rust regex (as Polars runs it) rewritten for Python's ``re``, same matches.

    Supported: literals, escaped punctuation, ``\\n \\t \\r``, ``.``, ``^``,
    ``$``, groups, ``(?:``, a leading ``(?s)``, alternation, repetition
    (greedy or lazy), bracket classes with ranges, ``\\w \\d \\s`` (also
    negated outside a class) and negated classes of ``\\W \\D \\S`` and literals
    (``[^\\Wx-y]``: a word character not in x-y). ``astral=False`` gives a faster variant that is
    exact only for texts without characters above U+FFFF.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            e = pattern[i + 1]
            if e in "wds":
                out.append(_set_class([e], "", astral))
            elif e in "WDS":
                out.append(f"[^{_ranges(rust_class(e.lower()))}]")
            else:
                out.append(_plain_escape(e))
            i += 2
        elif c == "[":
            i, text = _class(pattern, i, astral)
            out.append(text)
        elif c == "$":
            out.append(r"\Z")
            i += 1
        elif pattern.startswith("(?", i):
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif pattern.startswith("(?s)", i) and i == 0:
                out.append("(?s)")
                i += 4
            else:
                raise ValueError(f"group flags in {pattern!r} have no checked Python equivalent")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def has_astral(text: str) -> bool:
    """Does ``text`` hold a character above U+FFFF?"""
    return not text.isascii() and _ASTRAL.search(text) is not None


class PyRegex:
    """One Rust-syntax pattern compiled for Python's ``re`` (see :func:`python_pattern`)."""

    __slots__ = ("bmp", "full", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.full = re.compile(python_pattern(pattern, astral=True))
        self.bmp = re.compile(python_pattern(pattern, astral=False))

    def for_text(self, text: str) -> re.Pattern[str]:
        """The compiled variant that is exact (and fastest) for ``text``."""
        return self.full if has_astral(text) else self.bmp


@functools.cache
def _py_slot_rules() -> tuple[tuple[PyRegex, str], ...]:
    for _, placeholder in SLOT_RULES:
        # both engines would expand these in a replacement, differently
        if "\\" in placeholder or "$" in placeholder:
            raise ValueError(f"placeholder {placeholder!r} needs escaping")
    return tuple((PyRegex(p), r) for p, r in SLOT_RULES)


def slot_rules_py(text: str) -> str:
    """Stage 2 with Python's ``re``: the same rules, the same text as :func:`slot_rules_expr`."""
    full = has_astral(text)
    for rx, placeholder in _py_slot_rules():
        text = (rx.full if full else rx.bmp).sub(placeholder, text)
    return text


# Rust's engine is linear in the text. Python's retries a pattern from every
# position where it can start, so some SLOT_RULES are quadratic on hostile
# text: an unclosed ``` or <think> or “ is scanned to the end from every
# opener, and the e-mail rule rescans a run of word characters from each of
# its positions. PY_RULES_BUDGET bounds that work (~1 ms, about what the
# Polars path costs); texts over it take the Polars path. Performance only:
# both paths give the same text.
PY_RULES_BUDGET = 400_000


def slot_rules_py_is_quick(text: str) -> bool:
    """Is :func:`slot_rules_py` known to be quick on ``text`` (see PY_RULES_BUDGET)?"""
    n = len(text)
    if n * n <= PY_RULES_BUDGET:
        return True
    openers = text.count("`") + text.count("<") + text.count("“")
    longest = max(map(len, text.split()), default=0)
    return n * (openers + longest) <= PY_RULES_BUDGET


def slot_rules_list(texts: list[str]) -> list[str]:
    """Stage 2 for a few texts: Python's ``re`` where quick, one Polars query for the rest."""
    out = [slot_rules_py(t) if slot_rules_py_is_quick(t) else None for t in texts]
    slow = [i for i, t in enumerate(out) if t is None]
    if slow:
        frame = pl.DataFrame({"t": [texts[i] for i in slow]}, schema={"t": pl.String})
        done = frame.select(slot_rules_expr(pl.col("t"))).to_series().to_list()
        for i, t in zip(slow, done, strict=True):
            out[i] = t
    return [t if t is not None else "" for t in out]
