"""Evidence for low-and-slow farms: weak edges with member support, the campaign's
harvest profile as corroboration for joining it, and rebuilds on unexplained suspicion."""

from __future__ import annotations

import numpy as np
import polars as pl

from distillwatch.linking import CampaignLinker
from distillwatch.linking.attach import CampaignAttacher
from distillwatch.linking.evidence import KIND_CODE, compact
from distillwatch.linking.graph import GraphParams, key_frequencies
from distillwatch.linking.linker import supported_members, two_stage_communities
from distillwatch.linking.profile import CampaignProfiles
from distillwatch.scoring.config import Settings
from distillwatch.signals.state import EntityState
from test_linking_attach import evidence

CT = KIND_CODE["client+template"]
PT = KIND_CODE["prefix+template"]


def edges(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    src, dst, w = zip(*rows, strict=True)
    return pl.DataFrame(
        {"src": list(src), "dst": list(dst), "w": list(w)},
        schema={"src": pl.Int32, "dst": pl.Int32, "w": pl.Float64},
    )


def test_weak_edges_keep_members_whose_summed_links_reach_min_weight() -> None:
    # community 0: nodes 0-3 all pairwise linked at 0.4 (each node: 1.2);
    # node 4 hangs on one 0.4 edge, node 5 on node 4 only (peeled after 4)
    # community 1: two nodes with one strong edge
    rows = [(a, b, 0.4) for a in range(4) for b in range(a + 1, 4)]
    rows += [(3, 4, 0.4), (4, 5, 0.4), (6, 7, 1.5)]
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, -1])
    out = supported_members(labels, edges(rows), 1.0)
    assert out.tolist() == [0, 0, 0, 0, -1, -1, 1, 1, -1]
    # a pair held only by weak evidence is not a campaign
    pair = supported_members(np.array([0, 0]), edges([(0, 1, 0.6)]), 1.0)
    assert pair.tolist() == [-1, -1]


def test_weak_edges_group_only_accounts_strong_evidence_leaves_alone() -> None:
    # a team (0-3) strongly linked among itself; a farm (10-15) pairwise weakly
    # linked (0.4, each member 2.0 in all); weak links from the team to the farm
    # (the kind of co-occurrence a shared public template gives); 20 one weak
    # link to the farm only; weak edge below the floor ignored (21)
    rows = [(a, b, 1.5) for a in range(4) for b in range(a + 1, 4)]
    rows += [(a, b, 0.4) for a in range(10, 16) for b in range(a + 1, 16)]
    rows += [(t, f, 0.45) for t in range(4) for f in range(10, 16)]
    rows += [(20, 10, 0.4), (21, 11, 0.2), (21, 12, 0.2), (21, 13, 0.2), (21, 14, 0.2)]
    e = edges(rows)
    labels = two_stage_communities(e, 22, GraphParams(min_weight=1.0, resolution=0.3), 0.3, 3)
    team, farm = set(labels[:4].tolist()), set(labels[10:16].tolist())
    assert len(team) == 1 and len(farm) == 1 and team != farm and -1 not in team | farm
    assert labels[20] == -1 and labels[21] == -1
    # without weak edges the farm is no campaign at all
    strong_only = two_stage_communities(e, 22, GraphParams(min_weight=1.0), 1.0, 3)
    assert (strong_only[10:16] == -1).all()


def state_with(counts: dict[str, list[float]], cap: list[list[float]]) -> EntityState:
    st = EntityState()
    k = len(counts["n"])
    st.rows_for(pl.Series([f"e{i}" for i in range(k)]))
    for col, vals in counts.items():
        st.cols[col][:k] = vals
    st.cols["cap"][:k, : len(cap[0])] = cap
    return st


def farm_profiles() -> tuple[CampaignProfiles, EntityState]:
    """Campaign 0: CoT-coercing single-turn farm; background: chatty accounts."""
    # rows: campaign aggregate (as aggregate_state gives it), then three accounts
    cnt = {
        "n": [1000.0, 500.0, 400.0, 300.0],
        "cot_hi": [600.0, 2.0, 1.0, 0.0],
        "single_turn": [1000.0, 150.0, 100.0, 280.0],
        "reasoning_harvest": [600.0, 0.0, 10.0, 0.0],
    }
    cap = [[0, 0, 0, 300, 700], [200, 200, 50, 50, 0], [100, 100, 100, 100, 0], [0, 0, 300, 0, 0]]
    camp_state = state_with(cnt, cap)
    accounts = state_with({k: v[1:] for k, v in cnt.items()}, cap[1:])
    prof = CampaignProfiles()
    prof.fit(camp_state.view(np.arange(1)), np.array([True]), accounts)
    return prof, accounts


def test_profile_ratio_separates_farm_like_from_background_traffic() -> None:
    prof, _ = farm_profiles()
    # three fresh accounts: two CoT-coercing single-turn reasoning requests;
    # two ordinary multi-turn chats; a single-turn batch job without CoT
    st = state_with(
        {
            "n": [2.0, 2.0, 30.0],
            "cot_hi": [2.0, 0.0, 0.0],
            "single_turn": [2.0, 0.0, 30.0],
            "reasoning_harvest": [1.0, 0.0, 0.0],
        },
        [[0, 0, 0, 1, 1], [1, 1, 0, 0, 0], [0, 0, 30, 0, 0]],
    )
    v = st.view(np.arange(3))
    llr = prof.llr(v, np.zeros(3, np.int64))
    assert llr[0] > 8.0 and llr[1] < 0.0 and llr[2] < 0.0
    bonus = prof.bonus(v, np.zeros(3, np.int64), 0.5, 4.0, 12.0)
    assert 0.0 < bonus[0] <= 0.5 and bonus[1] == 0.0 and bonus[2] == 0.0
    # an unknown campaign gives nothing
    assert prof.llr(v, np.array([-1, 1, 5])).tolist() == [0.0, 0.0, 0.0]


def test_profile_corroborates_one_key_and_never_replaces_keys() -> None:
    # campaign 0 (nodes 0-9, malicious) holds key 1; key 2 nobody holds
    rows = [(n, 1, CT) for n in range(10)]
    members = compact([evidence(rows)])
    camp = np.full(20, -1, np.int64)
    camp[:10] = 0
    freq = key_frequencies(members)

    def joins(new: list[tuple[int, int, int]], bonus: float | None) -> list[int]:
        att = CampaignAttacher(min_weight=1.0)
        att.build_index(members, camp, np.array([True]), np.zeros(20, bool), freq)

        def corroborate(nodes: np.ndarray, camps: np.ndarray, tool: np.ndarray) -> np.ndarray:
            return np.full(len(nodes), bonus)

        nodes, _ = att.attach([evidence(new)], camp, None, None if bonus is None else corroborate)
        return nodes.tolist()

    assert joins([(11, 1, CT)], None) == []  # one key alone: below min_weight
    assert joins([(11, 1, CT)], 0.0) == []  # a background-like profile adds nothing
    assert joins([(11, 1, CT)], 0.5) == [11]  # one key + a farm-like profile
    assert joins([(12, 2, CT)], 0.9) == []  # no shared key: the profile never suffices


def test_unexplained_suspects_trigger_a_rebuild() -> None:
    def linker(watch: int) -> tuple[CampaignLinker, EntityState]:
        lk = CampaignLinker(
            Settings.load(
                linking={"suspect_rebuild": watch, "max_rebuild_gap": "24h", "growth": 100.0}
            )
        )
        st = EntityState()
        ids = pl.Series([f"a{i}" for i in range(6)])
        st.rows_for(ids)
        lk._nodes(ids)
        lk._add(evidence([(i, 7, CT) for i in range(6)]))
        return lk, st

    from distillwatch.scoring.risk import Scorer

    t0 = 1_772_409_600_000
    for watch, expect in ((0, 1), (3, 2)):
        lk, st = linker(watch)
        scorer = Scorer(lk.settings)
        lk.refresh(t0, st, scorer)  # first rebuild
        assert lk.rebuilds == 1
        lk._add(evidence([(0, 8, CT)]))  # a little new evidence, far from doubling
        st.cols["first_review_ms"][:2] = t0  # two suspects: not enough
        lk.refresh(t0 + 2 * 3_600_000, st, scorer)
        assert lk.rebuilds == 1
        st.cols["first_review_ms"][:4] = t0  # four unexplained suspects
        lk._add(evidence([(1, 8, CT)]))
        lk.refresh(t0 + 3 * 3_600_000, st, scorer)
        assert lk.rebuilds == expect
