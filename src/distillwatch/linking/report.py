"""What an analyst sees: link reasons per account and campaign records.

Every reason names its evidence: the link kind, the shared values (payment
fingerprint and e-mail domain in clear, hashed keys as ``#`` + 16 hex digits:
IP prefix, template, client signature), and how many other campaign members
share it and how many requests carried it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from distillwatch.features.classifiers import CAPABILITIES
from distillwatch.linking.evidence import FACT_LABEL, KIND_NAMES, LINKS
from distillwatch.linking.order import argsort_bounded, argsort_hashed, run_starts

if TYPE_CHECKING:
    from distillwatch.linking.linker import CampaignLinker

REASONS_PER_ACCOUNT = 3
TARGET_MIN_SHARE = 0.15


def describe(fact: str, value: int, labels: dict[int, str]) -> str:
    if fact in ("pay", "email", "reseller") and value in labels:
        return f"{FACT_LABEL[fact]} {labels[value]}"
    return f"{FACT_LABEL[fact]} #{value:016x}"


def shared_keys(members: pl.DataFrame, camp_of_node: np.ndarray) -> Iterator[pl.DataFrame]:
    """Evidence rows of campaign members on keys other members of the campaign share.

    Yielded one link kind at a time, so the intermediate frames of the whole
    evidence table never exist at once (this was the peak of a 10M-event run).
    """
    node = members["node"].to_numpy()
    camp = camp_of_node[node]
    in_camp = camp >= 0
    if not in_camp.any():
        return
    kind = members["kind"].to_numpy()
    for k in np.unique(kind[in_camp]).tolist():
        rows = np.flatnonzero(in_camp & (kind == k))
        key, c = members["key"].to_numpy()[rows], camp[rows]
        # (key, campaign) groups by one sort of packed (key rank, campaign) codes
        order = argsort_hashed(key)
        ks = key[order]
        code = np.zeros(len(ks), np.uint64)
        np.cumsum(ks[1:] != ks[:-1], out=code[1:])
        cb = _bits(int(c.max()))
        kb = _bits(int(code[-1]))
        code <<= np.uint64(cb)
        code |= c[order].astype(np.uint64)
        by = argsort_bounded(code, kb + cb)
        order = order[by]
        start = run_starts(code[by])
        size = np.diff(np.append(start, len(order)))
        n = members["n"].to_numpy()[rows]
        req = np.add.reduceat(n[order].astype(np.uint64), start)
        shared = np.repeat(size >= 2, size)
        if not shared.any():
            continue
        sel = order[shared]  # rows of groups with two members or more
        at = rows[sel]
        yield pl.DataFrame(
            {
                **{col: members[col].to_numpy()[at] for col in members.columns},
                "camp": c[sel],
                "members": np.repeat(size, size)[shared].astype(np.uint32),
                "requests": np.repeat(req, size)[shared].astype(np.uint32),
            }
        )


def _bits(x: int) -> int:
    return max(int(x).bit_length(), 1)


Reasons = dict[int, list[dict[str, object]]]
Links = dict[int, list[dict[str, Any]]]


def reasons_and_links(
    members: pl.DataFrame, camp_of_node: np.ndarray, labels: dict[int, str]
) -> tuple[Reasons, Links]:
    """:func:`reasons_by_node` and the per-campaign links of :func:`campaign_links`
    from one pass of :func:`shared_keys` (its group-bys and joins are most of
    the cost of either)."""
    best, tops = [], []
    for sk in shared_keys(members, camp_of_node):
        best.append(_best_key_per_node(sk))
        tops.append(_top_keys_per_kind(sk))
    return _reasons(best, labels), _links(tops, labels)


def reasons_by_node(
    members: pl.DataFrame, camp_of_node: np.ndarray, labels: dict[int, str]
) -> Reasons:
    """Top link reasons for every campaign member (strongest kinds, most shared keys)."""
    return _reasons([_best_key_per_node(sk) for sk in shared_keys(members, camp_of_node)], labels)


def campaign_links(linker: CampaignLinker) -> Links:
    """Per campaign and link kind: how many keys and members tie it, with the top example."""
    n = len(linker.node_ids)
    tops = [_top_keys_per_kind(sk) for sk in shared_keys(linker.members, linker.camp_of_node[:n])]
    return _links(tops, linker.facts.labels)


def _best_key_per_node(sk: pl.DataFrame) -> pl.DataFrame:
    """Each node's strongest shared key of one link kind."""
    base = LINKS[KIND_NAMES[int(sk["kind"][0])]][2]
    # the key most members share (the score grows with them), ties: the lower
    # key; a node holds a key once. Sorts of packed codes, rows by node.
    node = sk["node"].to_numpy()
    mem = sk["members"].to_numpy().astype(np.int64)
    key = sk["key"].to_numpy()
    top_mem = int(mem.max())
    mb = _bits(top_mem)
    code = node.astype(np.uint64) << np.uint64(mb)
    code |= (top_mem - mem).astype(np.uint64)
    o = argsort_bounded(code, _bits(int(node.max())) + mb)
    sc = code[o]
    start = run_starts(sc >> np.uint64(mb))
    cand = o[sc == np.repeat(sc[start], np.diff(np.append(start, len(sc))))]
    first = run_starts(node[cand])
    low = np.minimum.reduceat(key[cand], first)
    pick = cand[key[cand] == np.repeat(low, np.diff(np.append(first, len(cand))))]
    return sk[pick].with_columns(score=pl.col("members").log1p() * base)


def _reasons(best: list[pl.DataFrame], labels: dict[int, str]) -> Reasons:
    if not best:
        return {}
    top = (
        pl.concat(best)
        .sort(["node", "score", "kind"], descending=[False, True, False])
        .group_by("node", maintain_order=True)
        .head(REASONS_PER_ACCOUNT)
    )
    out: Reasons = {}
    for node, kind, a, b, n_mem, n_req in top.select(
        "node", "kind", "a", "b", "members", "requests"
    ).iter_rows():
        name = KIND_NAMES[kind]
        fa, fb, _ = LINKS[name]
        what = describe(fa, a, labels) + ("" if fb is None else " and " + describe(fb, b, labels))
        out.setdefault(int(node), []).append(
            {
                "signal": f"link:{name}",
                "value": int(n_mem) - 1,
                "detail": f"shares {what} with {int(n_mem) - 1} other campaign members "
                f"({int(n_req)} requests carry it)",
            }
        )
    return out


def _top_keys_per_kind(sk: pl.DataFrame) -> pl.DataFrame:
    """Per campaign, keys and co-occurrences of one link kind, with its most shared key."""
    per_key = sk.group_by("camp", "key").agg(pl.col("kind", "a", "b", "members").first())
    return (
        per_key.sort(["members", "key"], descending=[True, False])
        .group_by("camp", "kind", maintain_order=True)
        .agg(
            pl.len().alias("keys"),
            pl.col("members").sum().alias("co"),
            pl.col("a", "b", "members").first(),
        )
    )


def _links(tops: list[pl.DataFrame], labels: dict[int, str]) -> Links:
    out: Links = {}
    if not tops:
        return out
    top = pl.concat(tops)
    for c, kind, keys, co, a, b, mem in top.sort(
        ["camp", "co", "kind"], descending=[False, True, False]
    ).iter_rows():
        name = KIND_NAMES[int(kind)]
        fa, fb, _ = LINKS[name]
        example = describe(fa, a, labels) + (
            "" if fb is None else " and " + describe(fb, b, labels)
        )
        out.setdefault(int(c), []).append(
            {
                "kind": name,
                "keys": int(keys),
                "co_occurrences": int(co),
                "example": f"{example} shared by {int(mem)} members",
            }
        )
    return out


def campaign_record(
    linker: CampaignLinker, c: int, cid: str, members: np.ndarray, links: list[dict[str, Any]]
) -> dict[str, Any]:
    """One campaigns.jsonl line (events.md section 4)."""
    from distillwatch.engine.verdicts import rfc3339

    res = linker.last_result
    scored = res is not None and c < len(res.risk)
    targets: list[str] = []
    reasons: list[dict[str, Any]] = []
    n_req, first = 0, float("nan")
    if scored and res is not None:
        cap = res_cap(linker, c)
        if cap is not None and cap.sum() > 0:
            shares = cap / cap.sum()
            targets = [
                CAPABILITIES[i] for i in np.argsort(-shares) if shares[i] >= TARGET_MIN_SHARE
            ]
        reasons = linker.scorer_reasons(c)
        n_req, first = int(linker.n_requests[c]), float(linker.first_seen[c])
    detected = linker.detected_at.get(cid)
    ids = [linker.node_ids[i] for i in members.tolist()]
    end_users = sorted(tuple(k.split("\x1f", 1)) for k in ids if "\x1f" in k)
    return {
        "campaign_id": cid,
        # accounts whose traffic the campaign holds: a reseller's account when
        # its end users are members (they are listed under end_users)
        "account_ids": sorted({k.split("\x1f", 1)[0] for k in ids}),
        "end_users": [{"account_id": a, "end_user_id": u} for a, u in end_users],
        "n_requests": n_req,
        "first_seen": rfc3339(first) if first > 0 else None,
        "detected_at": None if detected is None else rfc3339(float(detected)),
        "risk": round(float(linker.camp_risk[c]), 4) if c < len(linker.camp_risk) else 0.0,
        "malicious": bool(c < len(linker.malicious) and linker.malicious[c]),
        "targets": targets,
        "links": links,
        "reasons": reasons,
    }


def res_cap(linker: CampaignLinker, c: int) -> np.ndarray | None:
    cap = linker.camp_cap
    return None if cap is None or c >= len(cap) else np.asarray(cap[c])
