"""What an analyst sees: link reasons per account and campaign records.

Every reason names its evidence: the link kind, the shared values (payment
fingerprint and e-mail domain in clear, hashed keys as ``#`` + 16 hex digits:
IP prefix, template, client signature), and how many other campaign members
share it and how many requests carried it.
"""

from __future__ import annotations

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
    if fact in ("pay", "email") and value in labels:
        return f"{FACT_LABEL[fact]} {labels[value]}"
    return f"{FACT_LABEL[fact]} #{value:016x}"


def shared_keys(members: pl.DataFrame, camp_of_node: np.ndarray) -> pl.DataFrame:
    """Evidence rows of campaign members on keys that other members of the campaign share."""
    camp = camp_of_node[members["node"].to_numpy()]
    m = members.with_columns(pl.Series("camp", camp)).filter(pl.col("camp") >= 0)
    cnt = m.group_by("key", "camp").agg(
        pl.len().alias("members"), pl.col("n").sum().alias("requests")
    )
    return m.join(cnt.filter(pl.col("members") >= 2), on=["key", "camp"])


def reasons_by_node(
    members: pl.DataFrame, camp_of_node: np.ndarray, labels: dict[int, str]
) -> dict[int, list[dict[str, object]]]:
    """Top link reasons for every campaign member (strongest kinds, most shared keys)."""
    sk = shared_keys(members, camp_of_node)
    if sk.height == 0:
        return {}
    base = np.array([LINKS[k][2] for k in KIND_NAMES])[sk["kind"].to_numpy().astype(np.int64)]
    sk = sk.with_columns(score=pl.Series(base) * pl.col("members").log1p())
    top = (
        sk.sort("score", descending=True)
        .unique(["node", "kind"], keep="first")
        .sort("node", "score", descending=[False, True])
        .group_by("node", maintain_order=True)
        .head(REASONS_PER_ACCOUNT)
    )
    out: dict[int, list[dict[str, object]]] = {}
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


def campaign_links(linker: CampaignLinker) -> dict[int, list[dict[str, Any]]]:
    """Per campaign and link kind: how many keys and members tie it, with the top example."""
    n = len(linker.node_ids)
    sk = shared_keys(linker.members, linker.camp_of_node[:n])
    out: dict[int, list[dict[str, Any]]] = {}
    if sk.height == 0:
        return out
    per_key = sk.group_by("camp", "key").agg(pl.col("kind", "a", "b", "members").first())
    top = (
        per_key.sort("members", descending=True)
        .group_by("camp", "kind", maintain_order=True)
        .agg(
            pl.len().alias("keys"),
            pl.col("members").sum().alias("co"),
            pl.col("a", "b", "members").first(),
        )
    )
    labels = linker.facts.labels
    for c, kind, keys, co, a, b, mem in top.sort(
        "camp", "co", descending=[False, True]
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
    return {
        "campaign_id": cid,
        "account_ids": sorted(linker.node_ids[i] for i in members.tolist()),
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
