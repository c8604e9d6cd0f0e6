"""Link reasons and campaign links (linking/report.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl

from distillwatch.linking.evidence import KIND_CODE, compact
from distillwatch.linking.report import (
    _best_key_per_node,
    campaign_links,
    reasons_and_links,
    reasons_by_node,
    shared_keys,
)


def test_reasons_and_links_in_one_pass_equal_the_separate_passes() -> None:
    rng = np.random.default_rng(11)
    kinds = np.array([KIND_CODE[k] for k in ("payment", "prefix+template", "sync+client")])
    for _ in range(20):
        rows, nodes = int(rng.integers(1, 400)), int(rng.integers(2, 40))
        key = rng.integers(1, 60, rows).astype(np.uint64)
        members = compact(
            [
                {
                    "key": key,
                    "kind": kinds[key % len(kinds)].astype(np.int8),
                    "node": rng.integers(0, nodes, rows).astype(np.int32),
                    "a": key * np.uint64(7),
                    "b": key % np.uint64(5),
                }
            ]
        )
        camp = rng.integers(-1, 4, nodes).astype(np.int64)
        labels = {int(k) * 7: f"v{k}" for k in range(1, 60, 3)}
        reasons, links = reasons_and_links(members, camp, labels)
        linker: Any = SimpleNamespace(
            node_ids=list(range(nodes)),
            members=members,
            camp_of_node=camp,
            facts=SimpleNamespace(labels=labels),
        )
        assert reasons == reasons_by_node(members, camp, labels)
        assert links == campaign_links(linker)


def _shared_keys_by_group_by(members: pl.DataFrame, camp_of_node: np.ndarray) -> pl.DataFrame:
    """The straightforward shared_keys: a group-by and a join per link kind."""
    camp = camp_of_node[members["node"].to_numpy()]
    m = members.filter(pl.Series(camp >= 0)).with_columns(pl.Series("camp", camp[camp >= 0]))
    cnt = m.group_by("kind", "key", "camp").agg(
        pl.len().alias("members"), pl.col("n").sum().alias("requests")
    )
    return m.join(cnt.filter(pl.col("members") >= 2), on=["kind", "key", "camp"])


def test_shared_keys_equal_a_group_by_and_join() -> None:
    rng = np.random.default_rng(12)
    kinds = np.array([KIND_CODE[k] for k in ("payment", "prefix+template", "sync+client")])
    for _ in range(30):
        rows, nodes = int(rng.integers(1, 500)), int(rng.integers(2, 50))
        pool = rng.integers(1, 2**63, 40, dtype=np.uint64)
        key = pool[rng.integers(0, len(pool), rows)]
        members = compact(
            [
                {
                    "key": key,
                    "kind": kinds[key % np.uint64(len(kinds))].astype(np.int8),
                    "node": rng.integers(0, nodes, rows).astype(np.int32),
                    "a": key ^ np.uint64(3),
                    "b": key ^ np.uint64(5),
                    "n": rng.integers(1, 6, rows).astype(np.uint32),
                }
            ]
        )
        camp = rng.integers(-1, 5, nodes).astype(np.int64)
        parts = list(shared_keys(members, camp))
        want = _shared_keys_by_group_by(members, camp)
        if not parts:
            assert want.height == 0
            continue
        got = pl.concat(parts)
        assert [p["kind"].n_unique() for p in parts] == [1] * len(parts)
        cols = got.columns
        assert got.sort("key", "node").equals(want.select(cols).sort("key", "node"))


def test_best_key_per_node_equals_the_sort_and_unique() -> None:
    rng = np.random.default_rng(13)
    for _ in range(50):
        rows = int(rng.integers(1, 400))
        sk = pl.DataFrame(
            {
                "key": rng.integers(1, 2**63, rows, dtype=np.uint64),
                "kind": np.full(rows, KIND_CODE["prefix+template"], np.int8),
                "node": rng.integers(0, 30, rows).astype(np.int32),
                "members": rng.integers(2, 6, rows).astype(np.uint32),
            }
        ).unique(["node", "key"])
        want = (
            sk.with_columns(score=pl.col("members").log1p() * 1.0)
            .sort(["score", "key"], descending=[True, False])
            .unique("node", keep="first", maintain_order=True)
        )
        got = _best_key_per_node(sk)
        assert got.sort("node").equals(want.sort("node"))
