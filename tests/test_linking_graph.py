"""Unit tests of the linking building blocks: evidence keys, blocking graph, aggregation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import distillwatch
from distillwatch.linking.aggregate import aggregate_state
from distillwatch.linking.evidence import (
    KIND_CODE,
    ROW_KINDS,
    AccountFacts,
    compact,
    evidence_arrays,
    mix,
)
from distillwatch.linking.graph import GraphParams, build_edges, communities, key_weights
from distillwatch.linking.linker import campaign_id_of
from distillwatch.signals.state import EntityState


def u(*xs: int) -> np.ndarray:
    return np.array(xs, dtype=np.uint64)


def test_mix_is_zero_when_a_fact_is_missing_and_order_dependent() -> None:
    h = mix(u(0, 5, 5, 7), u(3, 0, 7, 5), 1)
    assert h[0] == 0 and h[1] == 0
    assert h[2] != 0 and h[3] != 0 and h[2] != h[3]
    assert mix(u(5), u(7), 1)[0] != mix(u(5), u(7), 2)[0]


def facts_for(n: int, **cols: np.ndarray) -> dict[str, np.ndarray]:
    names = ("prefix", "client", "template", "near", "system", "params", "sync", "signup", "email")
    return {k: cols.get(k, np.zeros(n, np.uint64)) for k in names}


def test_single_shared_fact_gives_no_evidence_key() -> None:
    """A template alone (no second fact) must not produce any blocking key."""
    f = facts_for(4, template=u(9, 9, 9, 9))
    ev = evidence_arrays(f, np.arange(4))
    assert len(ev["key"]) == 0
    f = facts_for(4, template=u(9, 9, 9, 9), prefix=u(1, 1, 2, 2))
    ev = evidence_arrays(f, np.arange(4))
    assert set(ev["kind"].tolist()) == {KIND_CODE["prefix+template"]}
    assert len(np.unique(ev["key"])) == 2  # one per prefix


def test_evidence_covers_every_row_kind() -> None:
    ones = u(*([3] * 2))
    f = facts_for(
        2,
        **{
            k: ones
            for k in (
                "prefix",
                "client",
                "template",
                "near",
                "system",
                "params",
                "sync",
                "signup",
                "email",
            )
        },
    )
    ev = evidence_arrays(f, np.arange(2))
    assert set(ev["kind"].tolist()) == {KIND_CODE[k] for k in ROW_KINDS}


def members_frame(groups: dict[int, list[int]], kind: str = "prefix+template") -> pl.DataFrame:
    parts: list[dict[str, np.ndarray]] = []
    for key, nodes in groups.items():
        k = len(nodes)
        parts.append(
            {
                "key": np.full(k, key, np.uint64),
                "kind": np.full(k, KIND_CODE[kind], np.int8),
                "node": np.array(nodes, np.int32),
                "a": np.full(k, key, np.uint64),
                "b": np.full(k, 1, np.uint64),
            }
        )
    return compact(parts)


def test_blocking_is_linear_in_key_size_and_keeps_members_connected() -> None:
    k = 2000
    nodes = list(range(k))
    # the same members on four keys: repeated co-occurrence passes min_weight
    m = members_frame({101: nodes, 102: nodes, 103: nodes, 104: nodes})
    params = GraphParams(band=2, min_weight=0.2)
    e = build_edges(m, params)
    assert e.height <= params.band * k  # O(k), never k^2/2 pairs
    labels = communities(e, k, GraphParams(resolution=0.01))
    import igraph as ig

    g = ig.Graph(n=k, edges=e.select("src", "dst").rows())
    assert len(g.connected_components()) == 1
    assert (labels >= 0).all()


def test_one_small_cooccurrence_is_not_an_edge_repeated_is() -> None:
    once = members_frame({7: [0, 1]})
    assert build_edges(once, GraphParams()).height == 0
    twice = members_frame({7: [0, 1], 8: [0, 1]})
    e = build_edges(twice, GraphParams())
    assert e.rows() == [
        (
            0,
            1,
            pytest.approx(
                2 * key_weights(np.array([KIND_CODE["prefix+template"]]), np.array([2]))[0]
            ),
            2,
        )
    ]


def test_common_keys_weigh_less_than_specific_ones() -> None:
    kind = np.full(3, KIND_CODE["prefix+template"])
    w = key_weights(kind, np.array([2, 50, 5000]))
    assert w[0] > w[1] > w[2] > 0
    pay = key_weights(np.full(2, KIND_CODE["payment"]), np.array([2, 500]))
    assert (pay >= 1.0).all()  # a shared payment fingerprint links on its own


def test_two_dense_groups_become_two_communities() -> None:
    a, b = list(range(0, 40)), list(range(40, 80))
    m = members_frame({1: a, 2: a, 3: a, 4: b, 5: b, 6: b, 7: [39, 40]})
    e = build_edges(m, GraphParams(min_weight=0.3))
    labels = communities(e, 80, GraphParams(resolution=0.1))
    assert len(set(labels[a].tolist())) == 1 and len(set(labels[b].tolist())) == 1
    assert labels[0] != labels[79]


def test_account_facts_public_email_and_signup_bucket() -> None:
    acc = pl.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "created_at": [1_000, 2_000, 10**9],
            "tier": ["free", "free", "free"],
            "payment_fingerprint": ["pm_1", "pm_1", None],
            "email_domain": ["gmail.com", "evil.example", "evil.example"],
            "reseller": [False, False, True],
        }
    ).with_columns(pl.col("created_at").cast(pl.Datetime("ms", "UTC")))
    f = AccountFacts.build(acc, 600_000)
    assert f.email[0] == 0 and f.email[1] == f.email[2] != 0
    assert f.signup[0] == f.signup[1] != f.signup[2]
    assert f.pay[0] == f.pay[1] != 0 and f.pay[2] == 0
    assert f.reseller.tolist() == [False, False, True]
    assert f.labels[int(f.pay[0])] == "pm_1"


def test_aggregate_state_sums_merges_and_averages() -> None:
    st = EntityState()
    feat = pl.DataFrame(
        {
            "ts": [1_000, 2_000, 3_000, 90_000_000],
            "account_id": ["a", "a", "b", "c"],
            "template_key": [1, 2, 3, 4],
        }
    )
    rows = np.array([0, 1, 2])
    st.rows_for(pl.Series(["a", "b", "c"]))
    st.cols["n"][rows] = [2.0, 1.0, 1.0]
    st.cols["first_ts"][rows] = [1_000.0, 3_000.0, 90_000_000.0]
    st.cols["last_ts"][rows] = [2_000.0, 3_000.0, 90_000_000.0]
    st.cols["tier"][rows] = [2.0, np.nan, 4.0]
    st.cols["cap"][rows, 1] = [2.0, 1.0, 0.0]
    st.cols["hll_templates"][rows, 0] = [3, 5, 9]
    v = aggregate_state(st, rows, np.array([0, 0, 1]), 2)
    assert v["n"].tolist() == [3.0, 1.0]
    assert v["first_ts"].tolist() == [1_000.0, 90_000_000.0]
    assert v["last_ts"].tolist() == [3_000.0, 90_000_000.0]
    assert v["tier"].tolist() == [2.0, 4.0]  # NaN (unknown) members are skipped
    assert v["cap"][:, 1].tolist() == [3.0, 0.0]
    assert v["hll_templates"][:, 0].tolist() == [5, 9]
    assert len(v) == 2 and feat.height == 4
    # members split over two states (accounts and end users) aggregate the same
    other = EntityState()
    other.rows_for(pl.Series(["r\x1fb"]))
    for name, col in st.cols.items():
        other.cols[name][0] = col[1]
    split = aggregate_state(st, np.array([0, 2]), np.array([0, 1]), 2, ((other, [0], [0]),))
    for name in v.cols:
        np.testing.assert_array_equal(split[name], v[name], err_msg=name)


def test_campaign_id_is_stable_and_opaque() -> None:
    assert campaign_id_of("org_1") == campaign_id_of("org_1")
    assert campaign_id_of("org_1") != campaign_id_of("org_2")
    assert campaign_id_of("org_1").startswith("cmp_") and "org" not in campaign_id_of("org_1")


def test_keep_top_keys_bounds_evidence_per_account_and_kind() -> None:
    import numpy as np
    import polars as pl

    from distillwatch.linking.linker import keep_top_keys

    rng = np.random.default_rng(3)
    m = pl.DataFrame(
        {
            "key": rng.integers(1, 2**62, 5000, dtype=np.uint64),
            "kind": rng.integers(0, 3, 5000).astype(np.int8),
            "node": rng.integers(0, 10, 5000).astype(np.int32),
            "a": np.zeros(5000, np.uint64),
            "b": np.zeros(5000, np.uint64),
            "n": rng.integers(1, 50, 5000).astype(np.uint32),
        }
    )
    kept = keep_top_keys(m, 20)
    sizes = kept.group_by("node", "kind").len()["len"]
    assert sizes.max() == 20
    # the kept keys are the most used ones of their group
    worst_kept = kept.group_by("node", "kind").agg(pl.col("n").min().alias("lo"))
    best_dropped = (
        m.join(kept, on=["key", "kind", "node"], how="anti")
        .group_by("node", "kind")
        .agg(pl.col("n").max().alias("hi"))
    )
    both = worst_kept.join(best_dropped, on=["node", "kind"])
    assert (both["lo"] >= both["hi"]).all()
    assert keep_top_keys(m.reverse(), 20).sort("key").equals(kept.sort("key"))


def test_edges_built_per_key_partition_equal_one_pass() -> None:
    """Partitioning the keys (the rebuild's memory bound) changes no edge, weight or count."""
    rng = np.random.default_rng(7)
    groups = {
        int(key): sorted(set(rng.integers(0, 300, int(rng.integers(2, 40))).tolist()))
        for key in rng.integers(1, 2**63, 400, dtype=np.uint64)
    }
    m = members_frame(groups)
    params = GraphParams(min_weight=0.2)
    one = build_edges(m, params, parts=1).sort("src", "dst")
    assert one.height > 500
    for parts in (2, 4, 7):
        got = build_edges(m, params, parts=parts).sort("src", "dst")
        assert got.schema == one.schema
        assert got.equals(one), parts


def test_linking_imports_igraph_without_matplotlib() -> None:
    code = (
        "import sys, distillwatch.linking\n"
        "assert 'matplotlib' not in sys.modules\n"
        "from distillwatch.linking.quiet_igraph import ig\n"
        "g = ig.Graph(n=4, edges=[(0, 1), (2, 3)])\n"
        "assert len(set(g.community_leiden(objective_function='modularity').membership)) == 2\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('matplotlib'):\n"
        "    import matplotlib\n"
    )
    src = str(Path(distillwatch.__file__).parents[1])  # this checkout's package
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": path})
