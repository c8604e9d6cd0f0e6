"""Activation cohorts: accounts that start together on a pipeline nobody else uses.

A farm brings its accounts online in batches (bought or aged accounts woken
together, or fresh sign-ups): many accounts the log had not seen, first
active within a short time of each other, sending requests with the same
tooling (system prompt x parameter configuration, see
``evidence.ATTACH_ONLY``). Each one has sent a request or two, far too few
for its own signals or for pairwise link evidence (paraphrased prompts,
rotating IPs), so the graph leaves them apart until hours later.

:func:`activation_cohorts` groups such accounts: a *burst key* is a tooling
key held by at least ``min_members`` candidate accounts whose first requests
fall in one activation bucket (``window_ms``; two bucketings offset by half a
window, so a burst across a boundary is still seen), and those holders are at
least ``min_share`` of every account ever seen with the key (the
configuration's adoption *is* the burst, not an SDK default that new users
pick up all the time). Accounts sharing burst keys form a cohort; every
member must hold at least ``min_keys`` distinct burst keys of its cohort
(default 1: a member's own evidence is then two cues, starting within the
burst and sending the burst's near-exclusive configuration; 2 asks for two
configurations of the same pipeline).

A cohort is only a *candidate* campaign: it is scored like every campaign
(the members' aggregated signals) and acted on only when that aggregate is
malicious, so a team onboarded together on an internal tool is grouped but
not enforced unless its traffic harvests. Candidates are accounts first seen
at least ``warmup_ms`` after the log began (before that every account is
"new") that the graph left out of every campaign-sized community.

:func:`coactive_peers` carries the same idea into joining a campaign already
found malicious: an account that shares one of its keys and started within
``window_ms`` of several others of that campaign is its next wave (the
linker adds ``cohort_join_weight`` to its key weight, below ``min_weight``;
when the shared key is a tooling key mostly the campaign's, at least
``min_share`` of its senders, the two cues are this module's cohort rule and
the account joins at once, as the next rebuild's cohort would take it).

Catches: the first accounts of a farm that wakes up in batches, within an
hour or two of their first requests, and its later waves at their first
request or two. Misses: farms whose accounts start
spread out over days, farms that send a popular prompt with default
parameters (no key is a burst), and farms active from the start of the log.
A legitimate account that sends a malicious farm's exact system prompt and
parameters and starts within ``window_ms`` of several of the farm's accounts
joins the farm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from distillwatch.features.fingerprint import fmix64
from distillwatch.linking.evidence import ATTACH_ONLY_CODES
from distillwatch.linking.quiet_igraph import ig


@dataclass(frozen=True)
class CohortParams:
    """Activation-cohort settings (module docstring); window_ms 0: off."""

    window_ms: int = 2 * 3_600_000
    warmup_ms: int = 24 * 3_600_000
    min_members: int = 3
    min_share: float = 0.5
    min_keys: int = 1


def burst_keys(
    key: np.ndarray,
    node: np.ndarray,
    first_ms: np.ndarray,
    df: np.ndarray,
    p: CohortParams,
) -> pl.DataFrame:
    """(node, key, cohort key) rows of the burst keys among tooling evidence rows
    (``key``, ``node``) of candidate nodes; ``first_ms``: each row's node's first
    request; ``df``: accounts ever seen with each row's key. A cohort key is a
    tooling key in one activation bucket of one of the two bucketings."""
    out = []
    for half in (0, 1):
        bucket = (first_ms + half * (p.window_ms // 2)) // p.window_ms
        ck = fmix64(key ^ fmix64(bucket.astype(np.uint64) * np.uint64(2) + np.uint64(half + 1)))
        rows = pl.DataFrame({"node": node, "key": key, "ck": ck, "df": df}).unique(["node", "ck"])
        held = rows.group_by("ck").agg(pl.len().alias("k"), pl.col("df").max())
        burst = held.filter(
            (pl.col("k") >= p.min_members)
            & (pl.col("k") >= p.min_share * pl.max_horizontal("df", "k"))
        )
        out.append(rows.join(burst.select("ck"), on="ck", how="semi").select("node", "key", "ck"))
    return pl.concat(out)


def key_df(freq: pl.DataFrame, key: np.ndarray) -> np.ndarray:
    """``freq``'s ``df`` of each key (0 for a key it does not hold).

    A binary search in ``freq``'s keys (sorted first unless they already are,
    as the linker's are), not a join: the candidates' tooling rows are a few
    hundred, ``freq`` holds every key of the log (a join scanned all of it,
    ~80 ms a call at 1M events)."""
    fk, df = freq["key"].to_numpy(), freq["df"].to_numpy()
    if len(fk) == 0 or len(key) == 0:
        return np.zeros(len(key), np.int64)
    if not (fk[1:] >= fk[:-1]).all():
        order = np.argsort(fk, kind="stable")
        fk, df = fk[order], df[order]
    pos = np.minimum(np.searchsorted(fk, key), len(fk) - 1)
    return np.where(fk[pos] == key, df[pos], 0).astype(np.int64)


def activation_cohorts(
    members: pl.DataFrame,
    freq: pl.DataFrame,
    first_ms: np.ndarray,
    candidate: np.ndarray,
    p: CohortParams,
) -> np.ndarray:
    """Cohort label per node (-1: none) from the evidence table ``members``
    (key, kind, node), key frequencies ``freq`` (key, df), each node's first
    request time ``first_ms`` and the ``candidate`` mask (module docstring)."""
    n = len(candidate)
    labels = np.full(n, -1, np.int64)
    if p.window_ms <= 0 or members.height == 0 or not candidate.any():
        return labels
    tool = members.select("key", "kind", "node").filter(
        pl.col("kind").is_in(pl.Series(ATTACH_ONLY_CODES).implode())
    )
    node = tool["node"].to_numpy().astype(np.int64)
    tool = tool.filter(pl.Series(candidate[node]))
    if tool.height == 0:
        return labels
    node = tool["node"].to_numpy().astype(np.int64)
    key = tool["key"].to_numpy()
    rows = burst_keys(key, node, first_ms[node], key_df(freq, key), p)
    return key_groups(rows, n, p.min_keys, p.min_members)


def key_groups(rows: pl.DataFrame, n: int, min_keys: int, min_members: int) -> np.ndarray:
    """Group label per node (-1: none) from (node, key, ck) rows: nodes sharing a
    group key ``ck`` are grouped (connected components); every member must hold
    at least ``min_keys`` distinct ``key`` values among the rows left and every
    group key at least ``min_members`` holders, and so must every group."""
    labels = np.full(n, -1, np.int64)
    for _ in range(8):  # members need min_keys keys; dropping some can undo others
        before = rows.height
        per = rows.group_by("node").agg(pl.col("key").n_unique().alias("c"))
        rows = rows.join(per.filter(pl.col("c") >= min_keys), on="node", how="semi")
        size = rows.group_by("ck").agg(pl.len().alias("k"))
        rows = rows.join(size.filter(pl.col("k") >= min_members), on="ck", how="semi")
        if rows.height in (0, before):
            break
    if rows.height == 0:
        return labels
    # groups: connected components of nodes through shared group keys
    used, inv = np.unique(rows["node"].to_numpy(), return_inverse=True)
    cks, ck_inv = np.unique(rows["ck"].to_numpy(), return_inverse=True)
    g = ig.Graph(n=len(used) + len(cks), edges=np.column_stack([inv, len(used) + ck_inv]))
    comp = np.asarray(g.connected_components().membership, dtype=np.int64)[: len(used)]
    _, comp, sizes = np.unique(comp, return_inverse=True, return_counts=True)
    big = sizes[comp] >= min_members
    labels[used[big]] = comp[big]
    return labels


def coactive_peers(
    nodes: np.ndarray,
    camps: np.ndarray,
    peer_nodes: np.ndarray,
    peer_camps: np.ndarray,
    first_ms: np.ndarray,
    window_ms: int,
) -> np.ndarray:
    """For each (node, campaign) pair: how many *other* peers of that campaign
    (``peer_nodes``/``peer_camps``: its members and the unlinked accounts with
    evidence pointing at it) were first seen within ``window_ms`` of the node.

    Used as join corroboration (linker ``_corroborate``): an account that
    shares a key with a malicious campaign *and* started together with several
    others doing the same is a new wave of that campaign, not a coincidence.
    """
    out = np.zeros(len(nodes), np.int64)
    if len(nodes) == 0 or len(peer_nodes) == 0:
        return out
    # distinct (campaign, node) pairs as one sorted int64 code each (nodes are
    # indices < 2**31): np.unique(axis=0) on the 2-column array was 7% of the
    # main process at 1M (it sorts a structured view)
    shift = np.int64(31)
    code = np.sort((peer_camps.astype(np.int64) << shift) | peer_nodes.astype(np.int64))
    code = code[np.concatenate(([True], code[1:] != code[:-1]))]
    pair_camps, pair_nodes = code >> shift, code & ((np.int64(1) << shift) - 1)
    # one sorted int64 key per (campaign, first seen): campaigns far apart
    span = np.int64(1) << np.int64(42)  # ~139 years of milliseconds
    t_peer = first_ms[pair_nodes]
    key = pair_camps * span + np.clip(t_peer, 0, span - 1)
    key = np.sort(key)
    t = np.clip(first_ms[nodes], 0, span - 1)
    base = camps.astype(np.int64) * span
    lo = np.searchsorted(key, base + np.maximum(t - window_ms, 0), side="left")
    hi = np.searchsorted(key, base + np.minimum(t + window_ms, span - 1), side="right")
    mine = (camps.astype(np.int64) << shift) | nodes.astype(np.int64)
    at = np.minimum(np.searchsorted(code, mine), len(code) - 1)
    me = code[at] == mine
    return np.asarray(hi - lo - me, dtype=np.int64)
