"""Accountable customers linked to a campaign by shared content alone.

A malicious campaign's members take its risk (and are enforced with it).
Among them, an *accountable* customer (a verified, aged account on a trusted
or established tier: :meth:`distillwatch.scoring.risk.Scorer.accountable`)
keeps only its own risk when nothing *hard* ties it to the other members
and most members are accountable customers too (``MIN_SHARE``):
no shared payment fingerprint, e-mail domain, sign-up burst, IP prefix or
reseller, only what it sends (templates, system prompts, client signatures,
timing). Its own traffic then decides, so the trusted-customer hold applies
and an analyst reviews it.

Catches: unrelated customers who all run a public eval template (FastChat's
LLM-as-judge prompts, an lm-eval-harness task) with an SDK's default client
and parameters: they share templates, client signatures and even timing, and
were found as one "campaign" and blocked together with the few untrusted
accounts that send the same template. Misses, on purpose: a verified, aged
account that harvests alongside a farm it shares nothing hard with is only
reviewed (its own risk would enforce it, the hold caps it); one that shares
payment or infrastructure with the farm is enforced with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from distillwatch.linking.evidence import KIND_CODE, LINKS

Evidence = Callable[[], Sequence[Any]]

# the exemption holds only in a campaign at least this share of whose members
# are accountable customers: a crowd of customers on one public eval template,
# not a farm that mixed a few verified, aged accounts in with its throwaways
MIN_SHARE = 0.5
# facts that tie accounts to one operator, not just to the same content
HARD_FACTS = frozenset({"pay", "email", "signup", "prefix", "reseller"})
HARD_KINDS: tuple[str, ...] = tuple(
    k for k, (a, b, _) in LINKS.items() if a in HARD_FACTS or b in HARD_FACTS
)
HARD_CODES = np.array([KIND_CODE[k] for k in HARD_KINDS], dtype=np.int64)


def hard_linked(evidence: Sequence[Any], camp_of_node: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """For each of ``nodes`` (campaign members), whether it shares a key of a
    hard kind with another member of its own campaign.

    ``evidence``: the linker's evidence parts, each with ``key``, ``kind`` and
    ``node`` columns (the merged table, pending frames, raw rows);
    ``camp_of_node``: campaign index per node (-1: none). Polars' hashed
    ``is_in`` filters the parts (NumPy's ``isin`` sorted millions of rows per
    call: ~0.3 s at 1M events).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    out = np.zeros(len(nodes), dtype=bool)
    frames = [
        pl.DataFrame(
            {
                "node": np.asarray(e["node"]).astype(np.int64, copy=False),
                "key": np.asarray(e["key"]),
                "kind": np.asarray(e["kind"]).astype(np.int8, copy=False),
            }
        ).lazy()
        for e in evidence
        if len(e["key"])
    ]
    if len(nodes) == 0 or not frames:
        return out
    rows = pl.concat(frames).filter(
        pl.col("kind").is_in(pl.Series(HARD_CODES.astype(np.int8)).implode())
    )
    own = rows.filter(pl.col("node").is_in(pl.Series(nodes).implode())).select("key", "node")
    holders = rows.join(own.select("key").unique(), on="key", how="semi")
    pairs = (
        own.join(holders.select("key", pl.col("node").alias("other")), on="key")
        .filter(pl.col("node") != pl.col("other"))
        .select("node", "other")
        .collect()
    )
    a, b = pairs["node"].to_numpy(), pairs["other"].to_numpy()
    keep = b < len(camp_of_node)
    a, b = a[keep], b[keep]
    linked = a[camp_of_node[a] == camp_of_node[b]]
    return np.isin(nodes, linked)


class HardLinks:
    """:func:`hard_linked` answers per node, remembered for a while: a hard
    link until the next rebuild (which may change memberships), "no hard
    link" until the next re-score (:meth:`tick`) or rebuild, so a member that
    joins sharing payment or infrastructure with an exempt one is seen within
    one re-score interval, and the evidence is not scanned on every window."""

    def __init__(self) -> None:
        self.epoch = 0
        self.known: dict[int, tuple[int, int, bool]] = {}  # node -> (camp, epoch, hard)

    def rebuilt(self) -> None:
        self.known.clear()

    def tick(self) -> None:
        self.epoch += 1

    def of(self, nodes: np.ndarray, camp_of_node: np.ndarray, evidence: Evidence) -> np.ndarray:
        camps = camp_of_node[nodes]
        out = np.zeros(len(nodes), dtype=bool)
        todo = []
        for j, (n, c) in enumerate(zip(nodes.tolist(), camps.tolist(), strict=True)):
            hit = self.known.get(n)
            if hit is not None and hit[0] == c and (hit[2] or hit[1] == self.epoch):
                out[j] = hit[2]
            else:
                todo.append(j)
        if todo:
            t = np.array(todo, dtype=np.int64)
            got = hard_linked(evidence(), camp_of_node, nodes[t])
            out[t] = got
            for j, h in zip(todo, got.tolist(), strict=True):
                self.known[int(nodes[j])] = (int(camps[j]), self.epoch, bool(h))
        return out
