"""Behaviour of the packaged per-request text classifiers (no corpora needed)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from distillwatch.features.classifiers import (
    CAPABILITIES,
    TextClassifiers,
    TextScores,
    clip_text,
    request_text,
    vectorize,
)

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
    row = vectorize([text, "padding so the batch has two rows"], clf.n_features)[0].tocsr()
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
