"""TextFeatureCache.lookup: hits from either generation or both, in key order."""

from __future__ import annotations

import numpy as np
import pytest

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.request import TEXT_DTYPES


def _rows(keys: np.ndarray) -> dict[str, np.ndarray]:
    """Column values derived from the key (so any row can be checked)."""
    return {
        c: (keys * np.uint64(j + 3) % np.uint64(97)).astype(t)
        for j, (c, t) in enumerate(TEXT_DTYPES.items())
    }


@pytest.mark.parametrize("seed", range(12))
def test_lookup_equals_a_dict_of_the_live_keys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cache = TextFeatureCache(TEXT_DTYPES, capacity=16)  # rotates often
    inserted: list[int] = []
    for _ in range(60):
        keys = np.unique(rng.integers(1, 60, int(rng.integers(1, 9)), dtype=np.uint64))
        rng.shuffle(keys)
        hit, cols = cache.lookup(keys)
        young = set(cache._young.index)
        old = set(cache._old.index) if cache._old is not None else set()
        live = young | old
        assert not young & old
        np.testing.assert_array_equal(hit, [int(k) in live for k in keys])
        want = _rows(keys[hit])
        for c, t in TEXT_DTYPES.items():
            assert cols[c].dtype == t and cols[c].tobytes() == want[c].tobytes(), c
        miss = keys[~hit]
        if len(miss):
            cache.insert(miss, _rows(miss))
            inserted.extend(int(k) for k in miss)
    assert cache.hits > 0 and cache.misses == len(inserted)


def test_no_hit_columns_are_empty_and_read_only() -> None:
    cache = TextFeatureCache(TEXT_DTYPES, capacity=4)
    hit, cols = cache.lookup(np.array([5, 6], dtype=np.uint64))
    assert not hit.any() and all(len(v) == 0 for v in cols.values())
    assert not any(v.flags.writeable for v in cols.values())
