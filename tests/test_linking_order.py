"""Packed-code argsorts (linking/order.py) and what uses them: the evidence
table's key order and the compaction of raw evidence, against the
straightforward versions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from distillwatch.linking.evidence import compact
from distillwatch.linking.order import argsort_bounded, argsort_hashed
from distillwatch.linking.table import holder_rank, key_order


def _codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Hash-like codes with duplicates, codes sharing their high bits (differing
    in the low ones only) and small codes (all high bits equal)."""
    pick = rng.integers(0, 4)
    if pick == 0:
        return rng.integers(0, 1 << 12, n).astype(np.uint64)
    x = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n).astype(
        np.uint64
    )
    if pick >= 2 and n > 1:  # many codes agree in their high bits
        share = rng.random(n) < 0.3
        x[share] = (x[0] & ~np.uint64(0xFFFF)) | rng.integers(0, 1 << 16, int(share.sum())).astype(
            np.uint64
        )
    if pick == 3 and n > 1:  # duplicates
        x[rng.random(n) < 0.3] = x[1]
    return x


@pytest.mark.parametrize("seed", range(6))
def test_argsort_hashed_equals_a_stable_argsort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        x = _codes(rng, int(rng.integers(0, 3000)))
        assert np.array_equal(argsort_hashed(x), np.argsort(x, kind="stable"))


def test_argsort_bounded_equals_a_stable_argsort() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        bits = int(rng.integers(1, 64))
        n = int(rng.integers(0, 2000))
        x = rng.integers(0, 1 << min(bits, 62), n).astype(np.uint64)
        assert np.array_equal(argsort_bounded(x, bits), np.argsort(x, kind="stable"))


def test_key_order_sorts_by_key_then_holder_rank() -> None:
    rng = np.random.default_rng(8)
    for _ in range(40):
        n, nodes = int(rng.integers(0, 2000)), int(rng.integers(1, 300))
        key = _codes(rng, n)
        node = rng.integers(0, nodes, n).astype(np.int32)
        rank = holder_rank(nodes, int(rng.integers(0, 5)))
        o = key_order(key, node, rank)
        want = np.lexsort((np.arange(n), rank[node], key))
        assert np.array_equal(o, want)


def test_compact_equals_a_group_by() -> None:
    rng = np.random.default_rng(9)
    pool = rng.integers(1, 2**63, 40, dtype=np.uint64)
    for _ in range(30):
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            n = int(rng.integers(0, 500))
            key = pool[rng.integers(0, len(pool), n)]
            part = {
                "key": key,
                "kind": (key % np.uint64(13)).astype(np.int8),
                "node": rng.integers(0, 30, n).astype(np.int32),
                "a": key ^ np.uint64(5),
                "b": key ^ np.uint64(9),
            }
            if rng.random() < 0.5:
                part["n"] = rng.integers(1, 9, n).astype(np.uint32)
            parts.append(part)
        base = compact(parts[:1]) if rng.random() < 0.5 else None
        got = compact(parts[1:], base) if base is not None else compact(parts)
        rows = pl.concat(
            [pl.DataFrame({**p, "n": p.get("n", np.ones(len(p["key"]), np.uint32))}) for p in parts]
        )
        want = rows.group_by("key", "node").agg(
            pl.col("kind", "a", "b").first(), pl.col("n").sum().cast(pl.UInt32)
        )
        cols = ["key", "kind", "node", "a", "b", "n"]
        assert got.columns == cols
        assert got.sort("key", "node").equals(want.select(cols).sort("key", "node"))
        # one row per (key, node), in the order of their first row
        firsts = rows.select("key", "node").unique(maintain_order=True)
        assert got.select("key", "node").equals(firsts)
