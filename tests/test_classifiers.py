"""Behaviour of the packaged per-request text classifiers (no corpora needed)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from classifier_heldout import COT as HELDOUT_COT
from classifier_heldout import NEUTRAL as HELDOUT_NEUTRAL
from classifier_heldout import RUBRIC as HELDOUT_RUBRIC
from distillwatch.features.classifiers import (
    CAPABILITIES,
    TextClassifiers,
    TextScores,
    clip_text,
    request_text,
    vectorize,
)
from handmade import prompts

# Phrasings written for this test; none appears in the training phrasing lists.
COT_POSITIVE = [
    (
        None,
        "A train leaves at 3pm going 60 mph. When does it reach a city 150 miles away? "
        "Please show all of your working and explain each step of your reasoning.",
    ),
    (
        "You are an AI assistant. While solving the task, think step-by-step and justify your steps.",
        "Which gas do plants absorb? Options: oxygen, carbon dioxide, helium.",
    ),
    (
        None,
        "Here is a question and its final answer. Articulate in detail the internal reasoning "
        "that must have produced this answer.\nQ: Is 91 prime?\nA: No.",
    ),
    (None, "Before replying, write your complete chain of thought inside <thinking> tags."),
]
RUBRIC_POSITIVE = [
    (
        None,
        "Please act as an impartial judge and rate the assistant's response below on a scale of "
        "1 to 10 for helpfulness and accuracy.\n\nQuestion: What is DNS?\nResponse: It maps names to IPs.",
    ),
    (
        "You are an expert evaluator.",
        "Compare Response A and Response B and decide which one is better. Output [[A]] or [[B]].\n"
        "Question: name a prime\nResponse A: 4\nResponse B: 7",
    ),
]
NEGATIVE = [
    (None, "Give me a step by step guide to baking bread at home."),
    (None, "What grade do I need on the final to pass with a B overall?"),
    (None, "What was the score in last night's Lakers game?"),
    ("You are a helpful assistant.", "Write a haiku about autumn leaves."),
    (None, "Translate 'good morning' into Japanese."),
]


@pytest.fixture(scope="module")
def clf() -> TextClassifiers:
    return TextClassifiers.load()


def _score(clf: TextClassifiers, pairs: list[tuple[str | None, str]]) -> TextScores:
    return clf.score([s for s, _ in pairs], [p for _, p in pairs])


def test_artefact_is_small_npz_and_cached() -> None:
    ref = resources.files("distillwatch") / "models" / "text_classifiers.npz"
    with resources.as_file(ref) as path:
        assert path.stat().st_size < 5_000_000
        with np.load(path, allow_pickle=False) as z:  # loads without pickle
            assert tuple(z["capabilities"]) == CAPABILITIES
            assert int(z["window_tokens"]) > 0
    assert TextClassifiers.load() is TextClassifiers.load()


def test_scores_shapes_dtypes_and_ranges(clf: TextClassifiers) -> None:
    pairs = COT_POSITIVE + RUBRIC_POSITIVE + NEGATIVE + [(None, None), ("", "")]
    r = clf.score([s for s, _ in pairs], [p for _, p in pairs])
    n = len(pairs)
    assert (
        r.cot.dtype == np.float32 and r.rubric.dtype == np.float32 and r.capability.dtype == np.int8
    )
    assert r.cot.shape == r.rubric.shape == r.capability.shape == (n,)
    for a in (r.cot, r.rubric):
        assert np.all((a >= 0) & (a <= 1))
    assert np.all((r.capability >= 0) & (r.capability < len(CAPABILITIES)))
    np.testing.assert_allclose(r.capability_proba.sum(axis=1), 1.0, rtol=1e-5)


def test_clear_cot_requests_score_high(clf: TextClassifiers) -> None:
    r = _score(clf, COT_POSITIVE)
    assert np.all(r.cot > 0.5), r.cot


def test_clear_rubric_requests_score_high(clf: TextClassifiers) -> None:
    r = _score(clf, RUBRIC_POSITIVE)
    assert np.all(r.rubric > 0.5), r.rubric


def test_benign_hard_negatives_score_low(clf: TextClassifiers) -> None:
    r = _score(clf, NEGATIVE)
    assert np.all(r.cot < 0.5), r.cot
    assert np.all(r.rubric < 0.5), r.rubric


def test_mild_cot_sits_between_plain_and_coerced(clf: TextClassifiers) -> None:
    q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
    r = clf.score([None] * 3, [q, q + "\nLet's think step by step.", q + "\n" + COT_POSITIVE[0][1]])
    assert r.cot[0] < r.cot[1] < r.cot[2]
    assert r.cot[0] < 0.3


def test_capability_of_clear_requests(clf: TextClassifiers) -> None:
    prompts = {
        "coding": "Write a Python function that parses a CSV file and returns the rows as dicts.",
        "agentic": "You have access to the following tools: search(query), calculator(expr). "
        "Use them to find the population of Peru and divide it by 7. Return tool calls as JSON.",
        "math": "Let $f(x) = x^2 - 4x + 3$. Find all real roots of $f$ and the minimum value.",
    }
    r = clf.score([None] * len(prompts), list(prompts.values()))
    got = [CAPABILITIES[i] for i in r.capability]
    assert got == list(prompts), got


def test_batch_of_one_equals_batch_and_is_deterministic(clf: TextClassifiers) -> None:
    pairs = COT_POSITIVE + RUBRIC_POSITIVE + NEGATIVE
    batch = _score(clf, pairs)
    again = _score(clf, pairs)
    np.testing.assert_array_equal(batch.cot, again.cot)
    np.testing.assert_array_equal(batch.capability, again.capability)
    for i, (s, p) in enumerate(pairs):
        one = clf.score([s], [p])
        np.testing.assert_allclose(one.cot[0], batch.cot[i], atol=1e-5)
        np.testing.assert_allclose(one.rubric[0], batch.rubric[i], atol=1e-5)
        assert one.capability[0] == batch.capability[i]


def test_lean_features_match_batch_vectorizer(clf: TextClassifiers) -> None:
    text = request_text(
        "System: be brief", "Ünïcode wörds, repeated repeated words & 42 numbers\nNew line"
    )
    pad = "padding so the batch has two rows"
    row = vectorize([text, pad], clf.n_features, clf.prefix_chars)[0].tocsr()
    idx, val = clf.features_one(text)
    order = np.argsort(idx)
    np.testing.assert_array_equal(idx[order], row.indices[np.argsort(row.indices)])
    np.testing.assert_allclose(val[order], row.data[np.argsort(row.indices)], rtol=1e-6)


def test_clip_and_empty_inputs(clf: TextClassifiers) -> None:
    long = "a" * 3000 + "TAIL"
    clipped = clip_text(long, 100, 10)
    assert clipped.startswith("a" * 100) and clipped.endswith("TAIL") and len(clipped) == 111
    assert clip_text(None) == ""
    empty = clf.score([], [])
    assert empty.cot.shape == (0,) and empty.capability.dtype == np.int8
    with pytest.raises(ValueError):
        clf.score([None], [])


def test_text_expr_equals_request_text(clf: TextClassifiers) -> None:
    import polars as pl

    long = "Ünïcode " * 400 + "TAIL"
    rows = [(None, "short"), ("sys", long), (long, None), ("", ""), (None, None), ("é" * 2500, "x")]
    frame = pl.DataFrame(
        {"s": [r[0] for r in rows], "p": [r[1] for r in rows]},
        schema={"s": pl.String, "p": pl.String},
    )
    got = frame.select(clf.text_expr(pl.col("s"), pl.col("p"))).to_series().to_list()
    assert got == clf.texts([r[0] for r in rows], [r[1] for r in rows])


# --- dilution, unseen phrasings, other languages --------------------------------
# Real prompts from the packaged sample, long enough that a short demand appended to
# them is a small part of the text; prompts that themselves ask for reasoning or
# grading are left out (as in training).
NATURAL = re.compile(
    r"step[- ]by[- ]step|show your work|your reasoning|explain your answer|"
    r"\b(on a scale|rate the|score the|grade the|evaluate the quality)\b",
    re.I,
)
SOURCES = (
    "oasst_eval_prompts",
    "arena_hard_v0.1",
    "arena_hard_v2.0",
    "ultrachat_eval",
    "awesome_chatgpt_prompts",
    "hh_rlhf_harmless_test",
    "gsm8k",
    "mbpp",
    "self_instruct_user_oriented",
)


@cache
def long_prompts() -> tuple[str, ...]:
    out: list[str] = []
    for src in SOURCES:
        out += [p for p in prompts(src) if len(p) >= 300 and not NATURAL.search(p)][:15]
    return tuple(out)


def test_long_prompt_sample_is_long() -> None:
    bases = long_prompts()
    assert len(bases) >= 80
    assert np.median([len(p) for p in bases]) >= 400  # characters; the probe prompts: ~450


# German and Russian demands phrased unlike the training lists are mostly missed: their
# inflected and compound words are whole tokens (docs/classifiers.md, "Known gaps").
WEAK_LANGUAGES = ("de", "ru")


@pytest.mark.parametrize(
    "lang",
    [
        pytest.param(
            lang,
            marks=pytest.mark.xfail(
                reason="unseen inflected/compound phrasings (known gap)", strict=True
            ),
        )
        if lang in WEAK_LANGUAGES
        else lang
        for lang in sorted(HELDOUT_COT)
    ],
)
def test_unseen_cot_demands_score_high_appended_to_long_prompts(
    clf: TextClassifiers, lang: str
) -> None:
    """Demands written only for this test, after (as a paragraph or on the same line) or
    before long real prompts: most reach the cot_elicitation threshold (0.75)."""
    bases = long_prompts()
    texts = []
    for i, phrase in enumerate(HELDOUT_COT[lang]):
        for j, q in enumerate(bases):
            texts.append([f"{q}\n\n{phrase}", f"{q} {phrase}", f"{phrase}\n\n{q}"][(i + j) % 3])
    cot = clf.score([None] * len(texts), texts).cot
    assert cot.mean() >= 0.55, (lang, cot.mean())
    if lang == "en":  # eight phrasings: a finer test
        assert (cot >= 0.75).mean() >= 0.6, (cot >= 0.75).mean()


def test_long_prompts_alone_or_with_neutral_instructions_score_low(clf: TextClassifiers) -> None:
    bases = long_prompts()
    texts = list(bases) + [f"{q}\n\n{n}" for q in bases for n in HELDOUT_NEUTRAL[:3]]
    texts += [f"{n}\n\n{q}" for q in bases for n in HELDOUT_NEUTRAL[3:]]
    r = clf.score([None] * len(texts), texts)
    assert (r.cot >= 0.75).mean() <= 0.03, (r.cot >= 0.75).mean()
    assert (r.rubric >= 0.5).mean() <= 0.01, (r.rubric >= 0.5).mean()


def test_unseen_grading_instructions_after_a_long_response_score_high(
    clf: TextClassifiers,
) -> None:
    bases = long_prompts()
    texts = [
        f"Question: {q[:200]}\n\nAnswer: {bases[(j + 7) % len(bases)]}\n\n{line}"
        for i, line in enumerate(HELDOUT_RUBRIC)
        for j, q in enumerate(bases)
        if (i + j) % 2 == 0
    ]
    rubric = clf.score([None] * len(texts), texts).rubric
    assert (rubric >= 0.5).mean() >= 0.6, (rubric >= 0.5).mean()


def test_appended_show_your_work_is_not_diluted(clf: TextClassifiers) -> None:
    """The measured failure: a short demand after a normal-length question used to score
    about 0.1 (alone about 1)."""
    bases = long_prompts()
    cot = clf.score([None] * len(bases), [f"{q}\n\nShow your work." for q in bases]).cot
    assert cot.mean() >= 0.8


def test_eval_harness_trigger_stays_below_the_cot_threshold(clf: TextClassifiers) -> None:
    """ "Let's think step by step." (soft label 0.6): moderate, not a coerced trace."""
    bases = long_prompts()
    cot = clf.score([None] * len(bases), [f"{q}\nLet's think step by step." for q in bases]).cot
    assert 0.4 <= cot.mean() <= 0.75, cot.mean()
    assert (cot >= 0.75).mean() <= 0.25


def test_windows_do_not_depend_on_the_batch(clf: TextClassifiers) -> None:
    bases = list(long_prompts()[:30])
    texts = [f"{q}\n\nShow your reasoning." if i % 2 else q for i, q in enumerate(bases)]
    batch = clf.score([None] * len(texts), texts)
    for i in range(0, len(texts), 7):
        one = clf.score([None], [texts[i]])
        assert one.cot[0] == batch.cot[i] and one.rubric[0] == batch.rubric[i]
        assert np.array_equal(one.capability_proba[0], batch.capability_proba[i])


def test_artefact_without_prefix_chars_loads_as_word_grams(tmp_path: Path) -> None:
    """An older artefact (no ``prefix_chars``) loads with no prefix features; the field
    round-trips otherwise."""
    ref = resources.files("distillwatch") / "models" / "text_classifiers.npz"
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    shipped = int(arrays.pop("prefix_chars", 0))
    assert TextClassifiers.load().prefix_chars == shipped
    np.savez(tmp_path / "old.npz", **arrays)
    old = TextClassifiers.from_npz(tmp_path / "old.npz")
    assert old.prefix_chars == 0
    texts = ["Explain your reasoning step by step.", "Grade this answer from 1 to 10."]
    assert old.score([None] * 2, texts).cot.shape == (2,)
    np.savez(tmp_path / "new.npz", **arrays, prefix_chars=np.int64(4))
    assert TextClassifiers.from_npz(tmp_path / "new.npz").prefix_chars == 4
