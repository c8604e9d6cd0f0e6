"""Hashed 1-2 gram features: the counting and normalisation they promise."""

from __future__ import annotations

import numpy as np

from distillwatch.features.hashing import hashed_ngrams, hashed_ngrams_one


def test_counts_unigrams_and_bigrams_with_l2_norm() -> None:
    x = hashed_ngrams(["The cat the", "", "a b"], 1 << 20).toarray()
    # "the" twice, "cat", "the cat", "cat the": counts 2,1,1,1 -> norm sqrt(7)
    assert sorted(np.round(x[0][x[0] > 0] * np.sqrt(7), 5)) == [1, 1, 1, 2]
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
