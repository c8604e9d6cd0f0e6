"""Template fingerprints: slot normalisation and datasketch-compatible MinHash."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from datasketch import MinHash

from distillwatch.features.fingerprint import (
    band_keys,
    jaccard_estimate,
    minhash_signatures,
    permutations,
    shingle_hashes,
)
from distillwatch.features.text import template_frame

PROMPTS = [
    'Given the passage "Berkeley was a bishop in 1710", answer: what is mentioned first?',
    'Given the passage "Locke wrote in 1690 about ideas", answer: what is mentioned first?',
    "Write a haiku about autumn leaves falling in the park",
    "",
]


def test_slots_are_normalised() -> None:
    tf = template_frame(pl.Series(PROMPTS))
    assert tf["template"][0] == tf["template"][1]
    assert "<q>" in tf["template"][0]
    assert tf["template"][2] != tf["template"][0]


@pytest.mark.parametrize(("num_perm", "seed"), [(16, 1), (128, 1), (16, 7), (64, 12345)])
def test_permutations_are_datasketchs(num_perm: int, seed: int) -> None:
    a, b = MinHash(
        num_perm=num_perm, seed=seed, hashfunc=lambda x: x, scheme="affine64"
    ).permutations
    ours = permutations(num_perm, seed)
    np.testing.assert_array_equal(ours[0], np.asarray(a, dtype=np.uint64))
    np.testing.assert_array_equal(ours[1], np.asarray(b, dtype=np.uint64))


def test_signatures_match_datasketch() -> None:
    tf = template_frame(pl.Series(PROMPTS))
    sig = minhash_signatures(tf["tokens"])
    sh, off = shingle_hashes(tf["tokens"])
    for row in range(3):
        m = MinHash(num_perm=sig.shape[1], seed=1, hashfunc=lambda x: x, scheme="affine64")
        m.update_batch([int(x) for x in sh[off[row] : off[row + 1]]])
        np.testing.assert_array_equal(m.hashvalues, sig[row])


def test_band_keys_link_templates_not_strangers() -> None:
    tf = template_frame(pl.Series(PROMPTS))
    sig = minhash_signatures(tf["tokens"])
    keys = band_keys(sig)
    assert (keys[0] == keys[1]).all()
    assert not (keys[0] == keys[2]).any()
    assert jaccard_estimate(sig[0], sig[1]) == 1.0
    assert jaccard_estimate(sig[0], sig[2]) < 0.3
