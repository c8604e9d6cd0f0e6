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
    camp = camp_of_node[members["node"].to_numpy()]
    in_camp = camp >= 0
    if not in_camp.any():
        return
    m = members.filter(pl.Series(in_camp)).with_columns(pl.Series("camp", camp[in_camp]))
    for kind in np.unique(m["kind"].to_numpy()).tolist():
        part = m.filter(pl.col("kind") == kind)
        cnt = part.group_by("key", "camp").agg(
            pl.len().alias("members"), pl.col("n").sum().alias("requests")
        )
        sk = part.join(cnt.filter(pl.col("members") >= 2), on=["key", "camp"])
        if sk.height:
            yield sk


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
    scored = sk.with_columns(score=pl.col("members").log1p() * base)
    return scored.sort(["score", "key"], descending=[True, False]).unique(
        "node", keep="first", maintain_order=True
    )


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
