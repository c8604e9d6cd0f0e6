"""Hashed 1-2 gram features: the counting and normalisation they promise."""

from __future__ import annotations

import numpy as np
import pytest

from distillwatch.features.hashing import hashed_ngrams, hashed_ngrams_one, linear_scores


def test_counts_unigrams_and_bigrams_scaled_by_length() -> None:
    x = hashed_ngrams(["The cat the", "", "a b"], 1 << 20).toarray()
    # 5 gram occurrences: "the" twice, "cat", "the cat", "cat the"
    assert sorted(np.round(x[0][x[0] > 0] * np.sqrt(5), 5)) == [1, 1, 1, 2]
    assert not x[1].any()
    assert not x[2].any()  # single-character tokens are not tokens


def test_order_matters_only_through_bigrams() -> None:
    a, b = hashed_ngrams(["red fox jumps", "jumps fox red"], 1 << 20).toarray()
    shared = (a > 0) & (b > 0)
    assert shared.sum() == 3  # the three unigrams
    assert (a > 0).sum() == (b > 0).sum() == 5


def test_single_path_equals_batch_row() -> None:
    texts = ["Explain step by step, step by step!", "Ünïcode wörds über alles", "x"]
    batch = hashed_ngrams(texts, 4096)
    for i, t in enumerate(texts):
        idx, val = hashed_ngrams_one(t, 4096)
        row = batch[i]
        np.testing.assert_array_equal(idx, row.indices)
        np.testing.assert_allclose(val, row.data, rtol=1e-6)


def test_linear_scores_equal_matrix_product() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4096, 3)).astype(np.float32)
    b = np.array([0.5, -1.0, 0.0], dtype=np.float32)
    texts = ["Explain step by step", "", "grade this answer grade it", "one two three four"]
    direct = linear_scores(texts, w, b)
    via_matrix = hashed_ngrams(texts, 4096) @ w + b
    np.testing.assert_allclose(direct, via_matrix, rtol=1e-5, atol=1e-6)


def test_sparse_product_and_bincounts_are_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large batches use one CSR product, small ones per-head bincounts: same bits."""
    from distillwatch.features import hashing
    from distillwatch.features.classifiers import TextClassifiers

    clf = TextClassifiers.load()
    rng = np.random.default_rng(7)
    words = ["step", "reason", "grade", "the", "answer", "python", "def", "score", "x1", "why"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 60)))) for _ in range(300)]
    n, parts = hashing._gram_parts(texts)
    assert sum(len(p[0]) for p in parts) >= hashing.CSR_MIN_GRAMS
    big = hashing.linear_scores_from_parts(n, parts, clf._weights, clf._bias)
    monkeypatch.setattr(hashing, "CSR_MIN_GRAMS", 10**12)
    small = hashing.linear_scores_from_parts(n, parts, clf._weights, clf._bias)
    assert np.array_equal(big, small)


def test_cjk_characters_and_line_breaks_are_tokens() -> None:
    """Han, kana and Hangul characters are tokens of their own (their bigrams are the
    character bigrams); a line break is a token that only marks where a line ends."""
    from distillwatch.features.hashing import unigram_tokens_py

    assert unigram_tokens_py("用python写代码\n단계별로 a bc") == [
        *("用", "python", "写", "代", "码", "\n"),
        *("단", "계", "별", "로", "bc"),
    ]
    # line breaks leave the gram counts as they were (bigrams run across lines)
    texts = ["step one\nstep two\n\n three", "\n\nx\n", "ab\ncd\n", "请一步\n一步思考"]
    joined = [t.replace("\n", " ") for t in texts]
    assert (hashed_ngrams(texts, 4096) != hashed_ngrams(joined, 4096)).nnz == 0


def test_window_scores_are_the_best_line_window_scored_as_a_text() -> None:
    """TextClassifiers.logits: cot, rubric and datagen (the last column, its own
    artefact arrays) are the larger of the whole-text head and the window head on
    the best window (k tokens of one line, or a shorter whole line),
    each window scored exactly as hashed_ngrams @ weights + bias would score it alone;
    any batch, one row or many, gives the same bits."""
    from distillwatch.features.classifiers import HEADS, TextClassifiers
    from distillwatch.features.hashing import text_grams, unigram_tokens_py

    rng = np.random.default_rng(3)
    f = 4096
    w = rng.normal(size=(f, len(HEADS))).astype(np.float16)
    b = rng.normal(size=len(HEADS)).astype(np.float32)
    ww = rng.normal(size=(f, 2)).astype(np.float16)
    wb = rng.normal(size=2).astype(np.float32)
    dw = rng.normal(size=(f, 2)).astype(np.float16)  # datagen: whole text, window
    db = rng.normal(size=2).astype(np.float32)
    words = ["step", "reason", "grade", "the", "answer", "思", "考", "x1", "é", "\n", "\n", "a"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 30)))) for _ in range(120)]
    texts += ["", "a", "think", "\n", "\n\n", "a\n", "step\nstep step step step step"]
    for k, pc in ((1, 0), (3, 0), (5, 0), (1, 3), (4, 3), (5, 5)):
        clf = TextClassifiers(
            f, np.arange(f), w, b, 2000, 500, k, np.arange(f), ww, wb, pc, np.arange(f), dw, db
        )
        got = clf.logits(text_grams(texts, pc))
        assert got.shape == (len(texts), len(HEADS) + 1)
        whole = np.hstack(
            [
                linear_scores(texts, w.astype(np.float32), b, pc),
                linear_scores(texts, dw[:, :1].astype(np.float32), db[:1], pc),
            ]
        )
        for i, t in enumerate(texts):
            want = whole[i].copy()
            windows = []
            for line in t.lower().split("\n"):
                toks = unigram_tokens_py(line)
                n = min(k, len(toks))
                windows += (
                    [" ".join(toks[a : a + n]) for a in range(len(toks) - n + 1)] if n else []
                )
            if windows:
                best = linear_scores(windows, ww.astype(np.float32), wb, pc).max(axis=0)
                want[:2] = np.maximum(want[:2], best)
                dbest = linear_scores(windows, dw[:, 1:].astype(np.float32), db[1:], pc).max()
                want[-1] = max(want[-1], dbest)
            assert np.array_equal(got[i], want), (k, t)
        for i in range(0, len(texts), 11):
            assert np.array_equal(clf.logits(clf.grams([texts[i]]))[0], got[i])
            assert np.array_equal(clf.logits(clf.grams(texts[i::-1]))[0], got[i])


def test_prefix_features_relate_inflections() -> None:
    """prefix_chars K: every token longer than K characters adds one feature, its first
    K characters hashed apart from the unigrams, so inflections share it; the scale
    stays 1/sqrt(word grams); K = 0 is the word-only feature space."""
    from distillwatch.features.hashing import gram_hashes, text_grams

    f = 1 << 20
    texts = ["Explain", "explanation", "Überlegung", "überlegen", "рассуждения", "рассуждай", "ab"]
    for k in (0, 5):
        x = hashed_ngrams(texts, f, k).toarray()
        overlap = [((x[i] > 0) & (x[i + 1] > 0)).sum() for i in range(0, 6, 2)]
        assert overlap == ([0, 0, 0] if k == 0 else [1, 1, 1])
    # tokens of K characters or fewer (CJK characters: one) have none
    a, b = hashed_ngrams(["think 思考", "thinking"], f, 5).toarray()
    assert ((a > 0) & (b > 0)).sum() == 0
    assert (a > 0).sum() == 5 and (b > 0).sum() == 2
    # the scale: 1/sqrt(2T - 1) on a line of T tokens, line breaks and prefixes excluded
    rows, _, n, per_row = gram_hashes(["stepping one\nsteps two", "思考 x"], 4)
    assert per_row.tolist() == [2 * 4 - 1, 2 * 2 - 1]
    assert np.bincount(rows, minlength=n).tolist() == [2 * 4 - 1 + 2, 2 * 2 - 1]
    x = hashed_ngrams(["stepping one steps two"], f, 4).toarray()[0]
    # 7 word grams, and "stepping" and "steps" share the prefix "step" (counted twice)
    assert np.allclose(np.sort(x[x > 0]) * np.sqrt(7), [1] * 7 + [2])
    g = text_grams(["stepping one\nsteps two"], 4)
    assert g.pre is not None and len(g.pre) == len(g.uni) == 4
    assert (g.pre != 0).tolist() == [True, False, True, False]
    assert text_grams(["step one"]).pre is None


def test_prefix_single_path_equals_batch_row() -> None:
    texts = ["Explain step by step, step by step!", "Ünïcode wörds über alles", "x", "思考一下"]
    batch = hashed_ngrams(texts, 4096, 4)
    for i, t in enumerate(texts):
        idx, val = hashed_ngrams_one(t, 4096, 4)
        np.testing.assert_array_equal(idx, batch[i].indices)
        np.testing.assert_allclose(val, batch[i].data, rtol=1e-6)
