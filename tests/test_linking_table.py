"""The sorted evidence table and the graph read off it equal the from-scratch rebuild.

The linker folds each rebuild's new evidence into a table kept in the graph's
holder order (:mod:`distillwatch.linking.table`) and reads key frequencies and
edges straight off it (:func:`distillwatch.linking.graph.sorted_key_graph`);
these tests replay random evidence streams through both that path and the
full re-merge / re-pair it replaced (``compact`` + ``keep_top_keys``,
``key_frequencies`` + ``build_edges``) and require the same tables and edges.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from distillwatch.features.fingerprint import fmix64
from distillwatch.linking.attach import CampaignAttacher
from distillwatch.linking.evidence import KIND_CODE, compact
from distillwatch.linking.graph import (
    GraphParams,
    build_edges,
    key_frequencies,
    sorted_key_graph,
)
from distillwatch.linking.linker import keep_top_keys
from distillwatch.linking.table import (
    TIE_MOD,
    EvidenceTable,
    _top_k,
    _top_k_lexsort,
    holder_rank,
    top_k_keep,
)

ROWS = ["key", "kind", "node", "a", "b", "n"]


def chunk(
    rng: np.random.Generator, keys: np.ndarray, rows: int, nodes: int
) -> dict[str, np.ndarray]:
    """Raw evidence rows (one request each) over a pool of keys; a key's kind is fixed."""
    key = keys[rng.integers(0, len(keys), rows)]
    return {
        "key": key,
        "kind": (key % np.uint64(13)).astype(np.int8),
        "node": rng.integers(0, nodes, rows).astype(np.int32),
        "a": key ^ np.uint64(0x55),
        "b": key ^ np.uint64(0xAA),
    }


def by_node_key(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(ROWS).sort("node", "key")


def test_merges_equal_the_full_re_merge_and_keep_holder_order() -> None:
    rng = np.random.default_rng(11)
    keys = rng.integers(1, 2**64, 400, dtype=np.uint64)
    k = 5
    table = EvidenceTable(k, seed=3)
    ref = None
    nodes = 30
    for step in range(40):
        nodes += int(rng.integers(0, 3))
        parts: list[pl.DataFrame | dict[str, np.ndarray]] = []
        raw = []
        for _ in range(int(rng.integers(1, 4))):
            c = chunk(rng, keys, int(rng.integers(1, 300)), nodes)
            raw.append(c)
            # some chunks arrive compacted (with counts), as the linker's pending ones
            parts.append(compact([c]) if rng.random() < 0.5 else c)
        table.merge(parts, nodes)
        ref = keep_top_keys(compact(raw, ref), k)
        assert by_node_key(table.frame()).equals(by_node_key(ref)), step
        # sorted by key, then by the blocking order fmix64(node + seed)
        rank = holder_rank(nodes, 3)
        key, node = table.cols["key"], table.cols["node"]
        order = np.lexsort((rank[node], key))
        assert (order == np.arange(len(key))).all(), step


def brute_top_k(
    node: np.ndarray, kind: np.ndarray, n: np.ndarray, key: np.ndarray, k: int
) -> np.ndarray:
    """Per (node, kind): the k rows with the largest (n, key % TIE_MOD), then lower key."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, g in enumerate(zip(node.tolist(), kind.tolist(), strict=True)):
        groups[g].append(i)
    keep = np.zeros(len(node), bool)
    for rows in groups.values():
        rows.sort(key=lambda i: (-int(n[i]), -(int(key[i]) % TIE_MOD), int(key[i])))
        keep[rows[:k]] = True
    return keep


@pytest.mark.parametrize("seed", range(6))
def test_top_k_keep_with_ties_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 3000
    # few counts and keys sharing residues mod TIE_MOD: many exact ties at the cut
    node = rng.integers(0, 12, rows).astype(np.int32)
    kind = rng.integers(0, 3, rows).astype(np.int8)
    n = rng.integers(1, 4, rows).astype(np.uint32)
    base = rng.integers(0, 5, rows).astype(np.uint64)
    key = base + np.uint64(TIE_MOD) * rng.integers(1, 2**40, rows).astype(np.uint64)
    order = np.lexsort((key, node))  # one row per (node, key)
    first = np.ones(rows, bool)
    first[1:] = (key[order][1:] != key[order][:-1]) | (node[order][1:] != node[order][:-1])
    sel = order[first]
    node, kind, n, key = node[sel], kind[sel], n[sel], key[sel]
    k = int(rng.integers(3, 20))
    want = brute_top_k(node, kind, n, key, k)
    assert (top_k_keep(node, kind, n, key, k) == want).all()
    gid = (node.astype(np.int64) << 4) | kind
    low = (n.astype(np.uint64) << np.uint64(20)) | (key % np.uint64(TIE_MOD))
    big = np.bincount(gid)[gid] > k
    assert (_top_k_lexsort(gid[big], low[big], key[big], k) == want[big]).all()
    assert (_top_k(gid[big], low[big], key[big], k, int(gid.max()) + 1) == want[big]).all()


def test_top_k_keep_settled_rows_prefilter_changes_nothing() -> None:
    rng = np.random.default_rng(5)
    for _ in range(30):
        m = int(rng.integers(50, 600))
        node = rng.integers(0, 8, m).astype(np.int32)
        kind = rng.integers(0, 2, m).astype(np.int8)
        # distinct keys, many sharing a residue mod TIE_MOD: ties at the cut
        key = np.uint64(TIE_MOD) * rng.permutation(m).astype(np.uint64)
        key += rng.integers(0, 3, m).astype(np.uint64)
        n = rng.integers(1, 4, m).astype(np.uint32)
        k = int(rng.integers(2, 12))
        half = m // 2  # the first half was merged before: its top-k is the table
        old = np.flatnonzero(brute_top_k(node[:half], kind[:half], n[:half], key[:half], k))
        grow = n[old] + rng.integers(0, 2, len(old)).astype(np.uint32)  # counts only grow
        fresh = np.arange(half, m)
        args = [
            np.concatenate([node[old], node[fresh]]),
            np.concatenate([kind[old], kind[fresh]]),
            np.concatenate([grow, n[fresh]]),
            np.concatenate([key[old], key[fresh]]),
        ]
        want = brute_top_k(*args, k)
        assert (top_k_keep(*args, k) == want).all()
        assert (top_k_keep(*args, k, settled=len(old)) == want).all()


def test_a_new_key_tied_with_the_worst_settled_one_wins_on_the_lower_key() -> None:
    key = np.array([5, 9, 2], np.uint64) * np.uint64(TIE_MOD) + np.uint64(1)
    args = (np.zeros(3, np.int32), np.zeros(3, np.int8), np.full(3, 3, np.uint32), key)
    assert top_k_keep(*args, 2, settled=2).tolist() == [True, False, True]


def random_members(rng: np.random.Generator, nodes: int, n_keys: int) -> pl.DataFrame:
    """Distinct (node, key) rows: key sizes from 1 to ~60 holders, several kinds
    (payment keys keep their weight whatever their spread)."""
    kinds = np.array(
        [
            KIND_CODE[k]
            for k in (
                "payment",
                "prefix+template",
                "client+template",
                "sync+client",
                "system+params",
            )
        ]
    )
    parts = []
    for key in rng.integers(1, 2**64, n_keys, dtype=np.uint64):
        size = int(min(rng.geometric(0.15), nodes))
        held = rng.choice(nodes, size, replace=False).astype(np.int32)
        parts.append(
            {
                "key": np.full(size, key, np.uint64),
                "kind": np.full(size, rng.choice(kinds), np.int8),
                "node": held,
                "a": np.full(size, key, np.uint64),
                "b": np.zeros(size, np.uint64),
            }
        )
    return compact(parts)


@pytest.mark.parametrize("seed", range(4))
def test_sorted_key_graph_equals_key_frequencies_and_build_edges(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nodes = 300
    members = random_members(rng, nodes, 600)
    table = EvidenceTable(10_000, seed=7)
    table.merge([members], nodes)
    excluded = rng.random(nodes) < 0.05
    for params in (
        GraphParams(min_weight=0.3, seed=7),
        GraphParams(min_weight=1.0, seed=7, band=3),
        GraphParams(min_weight=0.2, seed=7, band=1, max_df=20),
    ):
        for ex in (None, excluded):
            freq, edges = sorted_key_graph(
                table.cols["key"], table.cols["kind"], table.cols["node"], params, ex
            )
            want_f = key_frequencies(members, ex)
            want_e = build_edges(members, params, ex, want_f).sort("src", "dst")
            assert edges.height > 100
            assert freq.equals(want_f.sort("key"))
            assert edges.schema == want_e.schema
            assert edges.equals(want_e)


def test_sorted_key_graph_fallback_without_packed_codes_agrees() -> None:
    """Node ids too large to pack two of them and a weight class in 64 bits."""
    rng = np.random.default_rng(9)
    members = random_members(rng, 200, 300).with_columns(
        (pl.col("node").cast(pl.Int64) * 2**23 + 5).cast(pl.Int32)
    )
    params = GraphParams(min_weight=0.3)
    key, node = members["key"].to_numpy(), members["node"].to_numpy()
    order = np.lexsort((fmix64(node.astype(np.uint64) + np.uint64(params.seed)), key))
    m = members[order]
    freq, edges = sorted_key_graph(
        m["key"].to_numpy(), m["kind"].to_numpy(), m["node"].to_numpy(), params
    )
    assert int(node.max()).bit_length() == 31  # 62 bits for a pair: no room for the class
    assert freq.equals(key_frequencies(members).sort("key"))
    assert edges.height > 100
    assert edges.equals(build_edges(members, params).sort("src", "dst"))


def test_attach_index_is_the_same_from_sorted_or_shuffled_evidence() -> None:
    rng = np.random.default_rng(4)
    nodes = 120
    members = random_members(rng, nodes, 300)
    camp = rng.integers(-1, 4, nodes)
    malicious = np.array([True, False, True, True])
    excluded = rng.random(nodes) < 0.05
    freq = key_frequencies(members, excluded)
    table = EvidenceTable(10_000)
    table.merge([members], nodes)
    got = []
    for m, f in ((table.frame(), freq.sort("key")), (members.sample(fraction=1.0, seed=1), freq)):
        att = CampaignAttacher(1.0)
        att.build_index(m, camp, malicious, excluded, f)
        assert att.index is not None
        got.append(att.index)
        joined = np.flatnonzero(camp < 0)[:10]
        camp2 = camp.copy()
        camp2[joined] = 2
        att.update_index(m, camp2, malicious, excluded, f, joined)
        got.append(att.index)
    for a, b in ((got[0], got[2]), (got[1], got[3])):
        assert len(a[0]) > 50
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)
