"""Attachment to malicious campaigns: key weights and catching up on evidence accrued earlier."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from distillwatch.linking import CampaignLinker
from distillwatch.linking.attach import (
    CampaignAttacher,
    _distinct_pairs,
    _lookup,
    campaign_share_weights,
    join_weights,
    key_filter,
    on_keys,
    sorted_rows_on,
)
from distillwatch.linking.evidence import BASE_WEIGHT, KIND_CODE, compact
from distillwatch.linking.graph import GraphParams, build_edges, key_frequencies, key_weights
from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import Scorer
from distillwatch.signals.state import EntityState

CT = KIND_CODE["client+template"]
PT = KIND_CODE["prefix+template"]


def evidence(rows: list[tuple[int, int, int]]) -> dict[str, np.ndarray]:
    """Evidence arrays from (node, key, kind) rows."""
    node, key, kind = (np.array(c) for c in zip(*rows, strict=True))
    return {
        "key": key.astype(np.uint64),
        "kind": kind.astype(np.int8),
        "node": node.astype(np.int32),
        "a": key.astype(np.uint64),
        "b": np.ones(len(key), np.uint64),
    }


def held(nodes: range | list[int], key: int, kind: int) -> list[tuple[int, int, int]]:
    return [(n, key, kind) for n in nodes]


def test_campaign_share_counts_the_candidate_and_never_exceeds_the_kind_weight() -> None:
    kind = np.array([CT, CT, PT])
    w = campaign_share_weights(kind, np.array([12, 1, 10]), np.array([10, 1, 10]))
    assert np.allclose(w, BASE_WEIGHT[kind] * np.array([10 / 13, 1 / 2, 10 / 11]))
    assert (w < BASE_WEIGHT[kind]).all()  # one conjunctive key never reaches min_weight


def test_keys_a_campaign_holds_widely_attach_where_pair_weights_would_not() -> None:
    # campaign 0 (nodes 0-9, malicious): keys 1 and 2; key 1 also used by two outsiders
    # (10, 11); key 3: one member and forty unrelated accounts (a public template)
    rows = held(range(10), 1, CT) + held([10, 11], 1, CT) + held(range(10), 2, PT)
    rows += held([0, *range(20, 60)], 3, CT)
    members = compact([evidence(rows)])
    camp = np.full(70, -1, np.int64)
    camp[:10] = 0
    att = CampaignAttacher(min_weight=1.0)
    att.build_index(members, camp, np.array([True]), np.zeros(70, bool), key_frequencies(members))
    # by pair weights alone keys 1 + 2 stay below min_weight
    assert key_weights(np.array([CT, PT]), np.array([12, 10])).sum() < 1.0

    def joins(rows: list[tuple[int, int, int]], excluded: np.ndarray | None = None) -> list[int]:
        nodes, camps = att.attach([evidence(rows)], camp, excluded)
        assert (camps == 0).all()
        return sorted(nodes.tolist())

    assert joins([(61, 1, CT), (61, 2, PT)]) == [61]
    assert joins([(60, 1, CT)]) == []  # one key is not enough
    assert joins([(62, 1, CT), (62, 3, CT)]) == []  # the public template adds little
    no = np.zeros(70, bool)
    no[63] = True
    assert joins([(63, 1, CT), (63, 2, PT)], no) == []  # excluded nodes (resellers) never join


def linker_with(
    rows: list[tuple[int, int, int]],
    n_nodes: int,
    first_ms: np.ndarray | None = None,
    **linking: float,
) -> CampaignLinker:
    """A linker whose evidence (merged, as after a rebuild) is ``rows``; campaign 0 =
    nodes 0-4, malicious at risk 0.9; ``first_ms``: when each node was first seen
    (the log starting at 0); ``linking``: settings overrides."""
    lk = CampaignLinker(Settings.load(linking=linking))
    lk._nodes(pl.Series([f"a{i}" for i in range(n_nodes)]))
    if first_ms is not None:
        lk._first_ms[:n_nodes] = first_ms
        lk._log_start = 0
    lk._add(evidence(rows))
    lk._merge()
    lk._freq = key_frequencies(lk.members)
    lk.camp_of_node[:5] = 0
    lk.camp_ids, lk.camp_risk, lk.malicious = ["c0"], np.array([0.9]), np.array([True])
    lk.camp_confirmed = np.zeros(1, np.int64)
    lk._build_index()
    lk._catch_up()
    return lk


def test_accounts_active_before_their_campaign_was_found_join_when_it_is() -> None:
    # a5 used two of the campaign's keys before the index existed; a6 shares two keys
    # with a5 only (it joins once a5's keys count); a7 shares one key with a5
    rows = held(range(5), 1, CT) + held(range(5), 2, PT) + held([5], 1, CT) + held([5], 2, PT)
    rows += held([5, 6], 3, CT) + held([5, 6], 4, PT) + held([5, 7], 5, CT)
    camps = {}
    for rounds in (0, 1, 2):
        lk = linker_with(rows, 8, catch_up_rounds=rounds)
        camps[rounds] = [lk.campaign_of(f"a{i}") for i in (5, 6, 7)]
        if rounds:
            assert lk.campaign_risk(pl.Series(["a5"]))[0] == 0.9
    assert camps[0] == [None, None, None]  # only evidence arriving later would count
    assert camps[1] == ["c0", None, None]
    assert camps[2] == ["c0", "c0", None]


HOUR = 3_600_000


def test_a_malicious_verdict_is_held_through_weaker_rescores_for_verdict_hold() -> None:
    lk = CampaignLinker(Settings.load(linking={"verdict_hold": "24h"}))
    lk._nodes(pl.Series([f"a{i}" for i in range(10)]))
    t0 = 1_772_409_600_000
    lk.camp_of_node[:6] = 0  # found malicious on its own aggregate at t0
    lk._hold(t0, np.arange(6), np.array([0.8]), np.array([6]))
    assert lk.malicious.tolist() == [True] and not lk.camp_held[0]

    # a rebuild re-partitions: campaign 0 is three of its members and a newcomer,
    # campaign 1 one of its members and two newcomers; both aggregates now look benign
    lk.camp_of_node[:10] = -1
    lk.camp_of_node[[0, 1, 2, 6]] = 0
    lk.camp_of_node[[3, 7, 8]] = 1
    nodes = np.array([0, 1, 2, 3, 6, 7, 8])

    def rescore(t: int, own: list[float]) -> tuple[list[bool], list[float]]:
        lk._hold(t, nodes, np.array(own), np.array([4, 3]))
        return lk.malicious.tolist(), lk.camp_risk.round(3).tolist()

    assert rescore(t0 + HOUR, [0.2, 0.2]) == ([True, False], [0.8, 0.2])
    assert lk.camp_held.tolist() == [True, False] and lk.camp_confirmed[0] == t0
    # the held verdict names itself first among the campaign's reasons
    st = EntityState()
    st.rows_for(pl.Series(["c0", "c1"]))
    lk._scorer = Scorer(lk.settings)
    lk.last_result = lk._scorer.score(st.view(np.arange(2)))
    held = lk.scorer_reasons(0)[0]
    assert held["signal"] == "campaign_verdict_held" and held["value"] == 0.8
    assert "2026-03-02T00:00:00" in str(held["detail"])
    assert all(r["signal"] != "campaign_verdict_held" for r in lk.scorer_reasons(1))
    assert rescore(t0 + 23 * HOUR, [0.2, 0.2])[0] == [True, False]
    assert rescore(t0 + 25 * HOUR, [0.2, 0.2])[0] == [False, False]  # not confirmed in a day

    # confirmed again by its own aggregate: its own risk, held from now
    assert rescore(t0 + 26 * HOUR, [0.6, 0.2]) == ([True, False], [0.6, 0.2])
    assert not lk.camp_held[0] and lk.camp_confirmed[0] == t0 + 26 * HOUR
    assert rescore(t0 + 27 * HOUR, [0.3, 0.2]) == ([True, False], [0.6, 0.2])

    off = CampaignLinker(Settings.load(linking={"verdict_hold": "0s"}))
    off._nodes(pl.Series([f"a{i}" for i in range(6)]))
    off.camp_of_node[:6] = 0
    off._hold(t0, np.arange(6), np.array([0.8]), np.array([6]))
    off._hold(t0 + HOUR, np.arange(6), np.array([0.2]), np.array([6]))
    assert off.malicious.tolist() == [False]


@pytest.mark.parametrize("key_sorted", [False, True])
def test_updating_the_index_for_joined_nodes_equals_rebuilding_it(key_sorted: bool) -> None:
    # two malicious campaigns (0: nodes 0-7, 1: nodes 8-15) and unlinked nodes 16-29
    # sharing random keys with both; nodes 16-21 then join (some each way): the
    # entries recomputed for their keys must give exactly the rebuilt index,
    # including keys whose majority campaign flips and keys new to the index
    rng = np.random.default_rng(7)
    rows = [(int(n), int(k), int(rng.choice([CT, PT]))) for n in range(30) for k in
            rng.choice(np.arange(1, 60), size=8, replace=False)]  # fmt: skip
    members = compact([evidence(rows)])
    if key_sorted:  # as the linker's table is (the entries of the changed keys by range)
        members = members.sort("key", "node")
    freq = key_frequencies(members)
    camp = np.full(30, -1, np.int64)
    camp[:8], camp[8:16] = 0, 1
    malicious, excluded = np.array([True, True]), np.zeros(30, bool)
    inc = CampaignAttacher(min_weight=1.0)
    inc.build_index(members, camp, malicious, excluded, freq)
    assert inc.index is not None
    before = len(inc.index[0])
    joined = np.arange(16, 22)
    camp[joined] = [1, 1, 1, 0, 1, 1]
    changed = inc.update_index(members, camp, malicious, excluded, freq, joined)
    full = CampaignAttacher(min_weight=1.0)
    full.build_index(members, camp, malicious, excluded, freq)
    assert full.index is not None
    assert len(changed) > 0 and len(full.index[0]) > before  # keys were added
    for got, want in zip(inc.index, full.index, strict=True):
        assert np.array_equal(got, want)
    # the case covers a key whose majority campaign flipped between the two
    old = CampaignAttacher(min_weight=1.0)
    camp_before = camp.copy()
    camp_before[joined] = -1
    old.build_index(members, camp_before, malicious, excluded, freq)
    assert old.index is not None
    _, i_old, i_new = np.intersect1d(old.index[0], full.index[0], return_indices=True)
    assert (old.index[1][i_old] != full.index[1][i_new]).any()


def test_bitmap_prefiltered_lookup_equals_binary_search() -> None:
    rng = np.random.default_rng(3)
    for n_index, n_keys in ((10, 70_000), (50_000, 200_000), (1, 1 << 16), (3_000, 100)):
        pool = rng.integers(0, 2**64 - 1, n_index * 3, dtype=np.uint64)
        keys_s = np.unique(rng.choice(pool, n_index))
        # hits, misses, and misses that share the index keys' low bits
        near = keys_s[rng.integers(0, len(keys_s), n_keys // 3)] ^ np.uint64(1 << 40)
        key = np.concatenate([rng.choice(pool, n_keys - len(near)), near])
        pos, hit = _lookup(keys_s, key)
        ref_pos = np.minimum(np.searchsorted(keys_s, key), len(keys_s) - 1)
        ref_hit = keys_s[ref_pos] == key
        np.testing.assert_array_equal(hit, ref_hit)
        np.testing.assert_array_equal(pos[hit], ref_pos[ref_hit])
        assert hit.any() and not hit.all()


SP = KIND_CODE["system+params"]


def test_tooling_keys_join_a_campaign_that_holds_them_but_never_link_pairs() -> None:
    # campaign 0 (nodes 0-9): its own system prompt x parameter configurations 7 and 8,
    # used by nobody else, and a template 5 it sends with its client; configuration 9
    # is an SDK default that thirty other accounts (nodes 20-49) send too
    rows = held(range(10), 7, SP) + held(range(10), 8, SP) + held(range(10), 9, SP)
    rows += held(range(20, 50), 9, SP) + held(range(10), 5, CT)
    members = compact([evidence(rows)])
    # tooling keys make no graph edges, however many accounts share them
    tooling = members.filter(pl.col("kind") == SP)
    assert build_edges(tooling, GraphParams(min_weight=0.0)).height == 0
    camp = np.full(60, -1, np.int64)
    camp[:10] = 0
    att = CampaignAttacher(min_weight=1.0)
    att.build_index(members, camp, np.array([True]), np.zeros(60, bool), key_frequencies(members))

    def joins(rows: list[tuple[int, int, int]]) -> list[int]:
        return sorted(att.attach([evidence(rows)], camp)[0].tolist())

    # one exclusive configuration stays below min_weight, and tooling keys are one
    # cue however many match (the best counts); with another key of the campaign: joins
    assert joins([(50, 7, SP)]) == []
    assert joins([(51, 7, SP), (51, 8, SP)]) == []
    assert joins([(54, 7, SP), (54, 5, CT)]) == [54]
    # the shared default weighs its campaign share (10 of 41 holders): little
    idx_key, _, idx_w, idx_tool = att.index  # type: ignore[misc]
    assert idx_tool[idx_key == 9].all() and idx_w[idx_key == 9][0] < 0.2
    # a benign look-alike with the default configuration only never joins
    assert joins([(53, 9, SP)]) == []


def test_hindsight_puts_back_members_the_final_partition_leaves_out() -> None:
    # a5 holds two of campaign 0's keys (it had joined by attachment) but the final
    # rebuild left it unplaced; a6 holds one key only
    rows = held(range(5), 1, CT) + held(range(5), 2, PT) + held([5], 1, CT) + held([5], 2, PT)
    rows += held([6], 1, CT)
    lk = linker_with(rows, 7, catch_up_rounds=0)  # as the final rebuild left it: a5 unplaced
    assert lk.campaign_of("a5") is None
    lk.p = replace(lk.p, catch_up_rounds=4)
    lk._rejoin()
    assert lk.campaign_of("a5") == "c0" and lk.campaign_of("a6") is None
    assert lk.campaign_risk(pl.Series(["a5", "a6"])).tolist() == [0.9, 0.0]
    assert lk._attacher.index is None  # nothing attaches after the final pass


def test_rows_on_sorted_keys_equal_the_lookup_of_every_row() -> None:
    rng = np.random.default_rng(4)
    for _ in range(300):
        col = np.sort(rng.integers(0, 40, int(rng.integers(0, 80)))).astype(np.uint64)
        keys = np.unique(rng.integers(0, 45, int(rng.integers(0, 12)))).astype(np.uint64)
        assert np.array_equal(sorted_rows_on(col, keys), np.flatnonzero(np.isin(col, keys)))
        ev = {"key": col, "node": rng.integers(0, 9, len(col)).astype(np.int32)}
        fast, ref = on_keys(ev, keys, key_sorted=True), on_keys(ev, keys)
        assert all(np.array_equal(fast[c], ref[c]) for c in ("key", "node"))


def test_lookups_with_the_index_bitmap_equal_binary_search() -> None:
    rng = np.random.default_rng(5)
    keys_s = np.unique(rng.integers(0, 2**64 - 1, 5_000, dtype=np.uint64))
    filt = key_filter(keys_s)
    for n in (0, 1, 50, 3_000):
        key = np.concatenate([rng.choice(keys_s, n), rng.integers(0, 2**64 - 1, n, np.uint64)])
        pos, hit = _lookup(keys_s, key, filt)
        ref_pos, ref_hit = _lookup(keys_s, key)
        np.testing.assert_array_equal(hit, ref_hit)
        np.testing.assert_array_equal(pos[hit], ref_pos[ref_hit])


def test_join_weights_and_distinct_pairs_equal_polars_group_bys() -> None:
    rng = np.random.default_rng(6)
    for _ in range(100):
        n = int(rng.integers(0, 300))
        node = rng.integers(0, 40, n).astype(np.int64)
        key = rng.integers(1, 2**63, 30, dtype=np.uint64)[rng.integers(0, 30, n)]
        d_node, d_key = _distinct_pairs(node, key)
        want = pl.DataFrame({"node": node, "key": key}).unique(maintain_order=True)
        assert np.array_equal(d_node, want["node"].to_numpy())
        assert np.array_equal(d_key, want["key"].to_numpy())
        camp = rng.integers(0, 5, len(d_node)).astype(np.int64)
        w = rng.integers(1, 9, len(d_node)) / 8.0  # exact sums in any order
        tool = rng.random(len(d_node)) < 0.3
        g_node, g_camp, total = join_weights(d_node, camp, w, tool)
        ref = (
            pl.DataFrame({"node": d_node, "camp": camp, "w": w, "tool": tool})
            .group_by("node", "camp")
            .agg(
                pl.col("w").filter(~pl.col("tool")).sum()
                + pl.col("w").filter(pl.col("tool")).max().fill_null(0.0)
            )
            .sort("node", "camp")
        )
        assert g_node.tolist() == ref["node"].to_list()
        assert g_camp.tolist() == ref["camp"].to_list()
        assert total.tolist() == ref["w"].to_list()
