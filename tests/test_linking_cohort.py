"""Activation cohorts (linking/cohort.py): accounts first seen together on one pipeline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from distillwatch.engine.detect import detect
from distillwatch.linking.cohort import CohortParams, activation_cohorts, coactive_peers, key_df
from distillwatch.linking.evidence import KIND_CODE, compact
from distillwatch.linking.graph import key_frequencies
from handmade import event, prompts
from test_linking_attach import linker_with

ORCA = "You are an AI assistant. Think step-by-step and justify your steps. Write out your full reasoning."
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
SP = KIND_CODE["system+params"]
PT = KIND_CODE["prefix+template"]
HOUR = 3_600_000
P = CohortParams(window_ms=2 * HOUR, warmup_ms=24 * HOUR, min_members=3, min_share=0.5, min_keys=2)


def table(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    node, key, kind = (np.array(c) for c in zip(*rows, strict=True))
    return compact(
        [
            {
                "key": key.astype(np.uint64),
                "kind": kind.astype(np.int8),
                "node": node.astype(np.int32),
                "a": key.astype(np.uint64),
                "b": np.ones(len(key), np.uint64),
            }
        ]
    )


def cohorts(
    rows: list[tuple[int, int, int]], first_h: list[float], cand: np.ndarray | None = None
) -> np.ndarray:
    members = table(rows)
    first = (np.array(first_h) * HOUR).astype(np.int64)
    c = np.ones(len(first_h), bool) if cand is None else cand
    return activation_cohorts(members, key_frequencies(members), first, c, P)


def test_accounts_starting_together_on_an_exclusive_pipeline_form_one_cohort() -> None:
    # nodes 0-4 start within an hour (day 2 of the log) with the same two tooling keys
    rows = [(n, k, SP) for n in range(5) for k in (7, 8)]
    labels = cohorts(rows, [48.1, 48.3, 48.5, 48.9, 49.0])
    assert (labels >= 0).all() and len(set(labels.tolist())) == 1


def test_benign_look_alikes_form_no_cohort() -> None:
    pipeline = [(n, k, SP) for n in range(5) for k in (7, 8)]
    together = [48.1, 48.3, 48.5, 48.9, 49.0]
    # a configuration most of whose users are not in the burst (an SDK default):
    # ten more accounts that started days apart use it too
    rows = pipeline + [(n, k, SP) for n in range(5, 15) for k in (7, 8)]
    spread = together + [30.0 + 10 * i for i in range(10)]
    assert (cohorts(rows, spread)[:5] < 0).all()
    # the same accounts starting over days (one per bucket)
    assert (cohorts(pipeline, [30.0, 40.0, 50.0, 60.0, 70.0]) < 0).all()
    # one shared configuration each is one coincidence, not a pipeline
    one = [(n, 7, SP) for n in range(5)]
    assert (cohorts(one, together) < 0).all()
    # shared templates on an IP prefix are graph evidence, not tooling: no cohort
    tmpl = [(n, k, PT) for n in range(5) for k in (7, 8)]
    assert (cohorts(tmpl, together) < 0).all()
    # only candidates count (the graph placed them, or the log had just begun)
    cand = np.array([True, True, False, False, False])
    assert (cohorts(pipeline, together, cand) < 0).all()


def test_a_member_short_of_burst_keys_is_left_out() -> None:
    rows = [(n, k, SP) for n in range(4) for k in (7, 8)] + [(4, 7, SP)]
    labels = cohorts(rows, [48.1, 48.3, 48.5, 48.9, 49.0])
    assert (labels[:4] >= 0).all() and labels[4] == -1


def test_a_burst_across_a_bucket_boundary_is_still_one_cohort() -> None:
    # first requests straddle a window boundary (48h is a multiple of 2h)
    rows = [(n, k, SP) for n in range(4) for k in (7, 8)]
    labels = cohorts(rows, [47.6, 47.8, 48.2, 48.4])
    assert (labels >= 0).all() and len(set(labels.tolist())) == 1


# ---- end to end: teams onboarded together are grouped, never enforced; a farm is --
def test_teams_onboarded_together_are_not_enforced_a_farm_waking_together_is(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(11)
    gsm, code, chat = prompts("gsm8k"), prompts("mbpp"), prompts("awesome_chatgpt_prompts")
    lines: list[bytes] = []

    def add(
        acct: str, t: float, msgs: list[dict[str, str]], params: dict[str, object], **kw: Any
    ) -> None:
        lines.append(event(f"{acct}-{len(lines)}", acct, t, msgs, params, **kw))

    # background users over three days (the log starts with them)
    for a in range(40):
        for t in np.sort(T0 + rng.uniform(0, 3 * 86_400, 30)):
            add(f"user{a}", t, [{"role": "user", "content": chat[rng.integers(len(chat))]}], {})
    day2 = T0 + 30 * 3600
    # a coding-agent team onboarded in the same hour on its company's internal tool
    for a in range(6):
        start = day2 + rng.uniform(0, 1800)
        for i, t in enumerate(np.sort(start + rng.uniform(0, 86_400, 200))):
            msgs = [{"role": "system", "content": "Acme internal coding assistant."}]
            msgs += [{"role": "user", "content": code[(a * 50 + i // 5) % len(code)]}]
            msgs += [
                {"role": "assistant", "content": "call tool"},
                {"role": "user", "content": "go"},
            ]
            add(
                f"team{a}",
                t,
                msgs,
                {"max_tokens": 16000 if i % 2 else 32000, "tools": 8},
                ip="203.0.113.9",
            )
    # an eval team starting its harness together, each from home: CoT suffix,
    # temperature 0 (no shared network: the activation cohort is what groups them)
    for a in range(4):
        start = day2 + rng.uniform(0, 1800)
        for i, t in enumerate(np.sort(start + rng.uniform(0, 86_400, 300))):
            msgs = [{"role": "system", "content": "Lab eval harness v3."}]
            msgs += [
                {
                    "role": "user",
                    "content": gsm[(a * 75 + i) % len(gsm)] + "\nLet's think step by step.",
                }
            ]
            params = {"temperature": 0, "max_tokens": 512 if i % 2 else 1024}
            add(f"eval{a}", t, msgs, params, ip=f"192.0.{a}.7")  # each from home
    # a farm of aged accounts woken together: written-out reasoning, rotating IPs
    pool = gsm + code + chat
    for a in range(8):
        start = day2 + rng.uniform(0, 1800)
        for i, t in enumerate(np.sort(start + rng.uniform(0, 86_400, 24))):
            msgs = [
                {"role": "system", "content": ORCA},
                {"role": "user", "content": pool[rng.integers(len(pool))]},
            ]
            add(
                f"farm{a}",
                t,
                msgs,
                {"max_tokens": 8000 if i % 2 else 6000, "reasoning_effort": "high"},
                ip=f"{rng.integers(1, 223)}.{rng.integers(256)}.{rng.integers(256)}.7",
                out=8000,
                finish="length",
            )
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    detect(tmp_path / "events.jsonl", out)
    recs = [orjson.loads(x) for x in (out / "accounts.jsonl").read_bytes().splitlines()]
    action = {r["account_id"]: r["action"] for r in recs if r["end_user_id"] is None}
    benign = [a for a in action if not a.startswith("farm")]
    assert all(action[a] in ("allow", "review") for a in benign), action
    assert all(action[f"farm{a}"] in ("challenge", "degrade", "block") for a in range(8)), action
    # ... and as one campaign well before each account's own evidence would do (its
    # 20th request): most members are enforced within their first eight requests
    ev = pl.read_ndjson(tmp_path / "events.jsonl").select("account_id", "ts")
    eighth = ev.sort("ts").group_by("account_id").agg(pl.col("ts").get(7).alias("t8"))
    t8 = dict(eighth.iter_rows())
    first = {r["account_id"]: r["first_enforce_ts"] for r in recs if r["end_user_id"] is None}
    early = [
        a
        for a in (f"farm{i}" for i in range(8))
        if first[a] is not None
        and datetime.fromisoformat(first[a].replace("Z", "+00:00")).timestamp() <= t8[a]
    ]
    assert len(early) >= 6, (early, first)


def test_one_exclusive_configuration_each_suffices_with_min_keys_one() -> None:
    one = [(n, 7, SP) for n in range(5)]
    p1 = CohortParams(window_ms=2 * HOUR, warmup_ms=24 * HOUR, min_members=3, min_keys=1)
    members = table(one)
    first = (np.array([48.1, 48.3, 48.5, 48.9, 49.0]) * HOUR).astype(np.int64)
    labels = activation_cohorts(members, key_frequencies(members), first, np.ones(5, bool), p1)
    assert (labels >= 0).all()
    # ... but the same configuration spread over days is no burst
    first = (np.array([30.0, 40.0, 50.0, 60.0, 70.0]) * HOUR).astype(np.int64)
    labels = activation_cohorts(members, key_frequencies(members), first, np.ones(5, bool), p1)
    assert (labels < 0).all()


def test_coactive_peers_count_others_of_the_same_campaign_started_nearby() -> None:
    first = (np.array([0.0, 0.5, 1.0, 1.5, 9.0, 0.2, 0.3]) * HOUR).astype(np.int64)
    # campaign 0: nodes 0-4 (4 started 9 h later); campaign 1: nodes 5, 6
    peer_nodes = np.array([0, 1, 2, 3, 4, 5, 6, 1])  # node 1 listed twice (member + hit)
    peer_camps = np.array([0, 0, 0, 0, 0, 1, 1, 0])
    q_nodes, q_camps = np.array([1, 4, 5, 1]), np.array([0, 0, 1, 1])
    got = coactive_peers(q_nodes, q_camps, peer_nodes, peer_camps, first, 2 * HOUR)
    # node 1 in campaign 0: nodes 0, 2, 3 (not itself, not node 4); node 4: none;
    # node 5 in campaign 1: node 6; node 1 against campaign 1 (not a peer of it): 5, 6
    assert got.tolist() == [3, 0, 1, 2]


def test_coactive_peers_equal_a_brute_force_count() -> None:
    """Random peers (duplicates, several campaigns, window edges) against the
    definition: distinct peers of the campaign, other than the node, first
    seen within the window of the node."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        first = rng.integers(0, 10 * HOUR, n).astype(np.int64)
        k = int(rng.integers(1, 200))
        peer_nodes, peer_camps = rng.integers(0, n, k), rng.integers(0, 4, k)
        q_nodes, q_camps = rng.integers(0, n, 40), rng.integers(0, 5, 40)
        window = int(rng.integers(0, 3 * HOUR))
        got = coactive_peers(q_nodes, q_camps, peer_nodes, peer_camps, first, window)
        peers = set(zip(peer_camps.tolist(), peer_nodes.tolist(), strict=True))
        want = [
            sum(
                1
                for c, p in peers
                if c == qc and p != qn and abs(int(first[p]) - int(first[qn])) <= window
            )
            for qn, qc in zip(q_nodes.tolist(), q_camps.tolist(), strict=True)
        ]
        assert got.tolist() == want


def test_key_df_equals_a_left_join_on_sorted_or_shuffled_frequencies() -> None:
    rng = np.random.default_rng(5)
    for _ in range(30):
        keys = np.unique(rng.integers(1, 500, int(rng.integers(0, 80))).astype(np.uint64))
        freq = pl.DataFrame(
            {"key": keys, "df": rng.integers(1, 9, len(keys)).astype(np.uint32)},
            schema={"key": pl.UInt64, "df": pl.UInt32},
        )
        if rng.random() < 0.5:
            freq = freq.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1 << 30)))
        ask = rng.integers(0, 520, int(rng.integers(0, 50))).astype(np.uint64)
        joined = pl.DataFrame({"key": ask}).join(freq, on="key", how="left", maintain_order="left")
        assert key_df(freq, ask).tolist() == joined["df"].fill_null(0).to_list()


def _wave(join_weight: float) -> list[str | None]:
    ct = KIND_CODE["client+template"]
    # campaign 0 = nodes 0-4, first seen at 48 h; key 1 is theirs. Node 5 shares it
    # and started with them; node 6 shares it and started two days later; node 7
    # started with them but shares nothing
    rows = [(n, 1, ct) for n in range(7)] + [(7, 2, ct)]
    first_h = np.array([48, 48.2, 48.4, 48.6, 48.8, 49.0, 96.0, 48.3])
    lk = linker_with(
        rows,
        8,
        (first_h * HOUR).astype(np.int64),
        profile_weight=0,
        cohort_join_weight=join_weight,
    )
    return [lk.campaign_of(f"a{i}") for i in (5, 6, 7)]


def test_a_new_wave_joins_on_one_key_when_it_starts_with_the_campaign() -> None:
    assert _wave(0.5) == ["c0", None, None]
    assert _wave(0.0) == [None, None, None]  # one key alone is not enough


def _tooling_wave(others: int) -> list[str | None]:
    # campaign 0 = nodes 0-4 (first seen at 48 h) sending configuration key 1.
    # Nodes 5-7 send it too: 5 and 6 started with the campaign, 7 two days later;
    # ``others`` accounts outside the campaign (nodes 8..) send it as well
    n = 8 + others
    rows = [(i, 1, SP) for i in range(n)]
    first_h = np.r_[[48, 48.2, 48.4, 48.6, 48.8, 49.0, 49.2, 96.0], np.full(others, 10.0)]
    lk = linker_with(rows, n, (first_h * HOUR).astype(np.int64), profile_weight=0)
    return [lk.campaign_of(f"a{i}") for i in (5, 6, 7)]


def test_a_new_wave_on_the_campaigns_own_configuration_joins_it() -> None:
    # a tooling key is join-only (one cue); starting with the campaign's accounts
    # on a configuration mostly theirs is the activation-cohort rule: a join
    assert _tooling_wave(0) == ["c0", "c0", None]  # not the one that started later
    # a configuration most of whose senders are outside the campaign: one cue
    # and co-activation stay below min_weight
    assert _tooling_wave(12) == [None, None, None]
