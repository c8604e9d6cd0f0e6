"""Accountable customers linked to a campaign by shared content alone.

A malicious campaign's members take its risk (and are enforced with it).
Among them, an *accountable* customer (a verified, aged account on a trusted
or established tier: :meth:`distillwatch.scoring.risk.Scorer.accountable`)
keeps only its own risk when nothing *hard* ties it to the members that are
not accountable customers themselves (the farm): no shared payment
fingerprint, e-mail domain, sign-up burst, IP prefix or reseller, only what it
sends (templates, system prompts, client signatures, timing); and when either
it shares such a fact with other accountable members (an organisation:
colleagues on one corporate network) or most members are accountable
customers (``MIN_SHARE``: a crowd on a public template). Its own traffic then
decides, so the trusted-customer hold applies and an analyst reviews it.

Catches: unrelated customers who all run a public eval template (FastChat's
LLM-as-judge prompts, an lm-eval-harness task) with an SDK's default client
and parameters: they share templates, client signatures and even timing, and
were found as one "campaign" and blocked together with the few untrusted
accounts that send the same template; and a company's engineers on a
popular coding agent whose tasks and scaffold a farm also sends (however few
of the campaign's members they are). A lone verified, aged account in a
campaign of throwaways, tied to nobody by a hard fact (bought or aged
accounts a farm mixes in), is enforced with the campaign. Misses, on
purpose: a verified, aged account that harvests alongside a campaign mostly
made of accountable customers it shares nothing hard with is only reviewed
(its own risk would enforce it, the hold caps it); one that shares payment or
infrastructure with the farm is enforced with it. A farm that puts several
bought, verified, aged accounts on one network of their own looks like an
organisation and is reviewed, not enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from distillwatch.linking.evidence import KIND_CODE, LINKS, PartRows, kind_rows

Evidence = Callable[[], Sequence[Any]]
Exempt = Callable[[np.ndarray], np.ndarray]

# a member with no hard tie at all is exempt only in a campaign at least this
# share of whose members are accountable customers: a crowd of customers on
# one public eval template, not a farm that mixed a few verified, aged
# accounts in with its throwaways
MIN_SHARE = 0.5
# facts that tie accounts to one operator, not just to the same content
HARD_FACTS = frozenset({"pay", "email", "signup", "prefix", "reseller"})
HARD_KINDS: tuple[str, ...] = tuple(
    k for k, (a, b, _) in LINKS.items() if a in HARD_FACTS or b in HARD_FACTS
)
HARD_CODES = np.array([KIND_CODE[k] for k in HARD_KINDS], dtype=np.int64)


_IS_HARD = np.zeros(len(KIND_CODE), dtype=bool)
_IS_HARD[HARD_CODES] = True


def _node_key(rows: dict[str, np.ndarray]) -> pl.DataFrame:
    return pl.DataFrame({"node": rows["node"].astype(np.int64, copy=False), "key": rows["key"]})


def hard_rows(part: Any) -> pl.DataFrame:
    """The (node, key) rows of an evidence part whose kind is hard (a frame of
    just those two columns passes through: already filtered)."""
    if isinstance(part, pl.DataFrame) and part.columns == ["node", "key"]:
        return part
    return _node_key(kind_rows(part, _IS_HARD))


# what ties a member to the others of its campaign (hard_linked)
NONE, PEERS, FARM = 0, 1, 2


def hard_linked(
    evidence: Sequence[Any],
    camp_of_node: np.ndarray,
    nodes: np.ndarray,
    peers_exempt: Exempt | None = None,
) -> np.ndarray:
    """For each of ``nodes`` (campaign members), what hard keys tie it to the
    other members of its own campaign: ``NONE``, ``PEERS`` (only members
    ``peers_exempt`` says are accountable customers themselves: colleagues
    on one corporate network) or ``FARM`` (a member that is not; every hard
    link without ``peers_exempt``).

    ``evidence``: the linker's evidence parts, each with ``key``, ``kind`` and
    ``node`` columns (the merged table, pending frames, raw rows), or their
    :func:`hard_rows` already;
    ``camp_of_node``: campaign index per node (-1: none). Polars' hashed
    ``is_in`` and joins find the holders (NumPy's ``isin`` sorted millions of
    rows per call: ~0.3 s at 1M events).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    out = np.full(len(nodes), NONE, dtype=np.int8)
    frames = [f for f in (hard_rows(e) for e in evidence) if f.height]
    if len(nodes) == 0 or not frames:
        return out
    rows = pl.concat(frames).lazy()
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
    same = camp_of_node[a] == camp_of_node[b]
    a, b = a[same], b[same]
    out[np.isin(nodes, a)] = PEERS if peers_exempt is not None else FARM
    if peers_exempt is not None and len(b):
        other, at = np.unique(b, return_inverse=True)
        out[np.isin(nodes, a[~peers_exempt(other)[at]])] = FARM
    return out


class HardLinks:
    """:func:`hard_linked` answers per node, remembered for a while: ``FARM``
    until the next rebuild (which may change memberships), ``NONE`` and
    ``PEERS`` until the next re-score (:meth:`tick`) or rebuild, so a member
    that joins sharing payment or infrastructure with an exempt one is seen
    within one re-score interval, and the evidence is not scanned on every
    window."""

    def __init__(self) -> None:
        # each evidence part's hard rows, filtered once per part
        self._rows = PartRows(_IS_HARD, _node_key)
        self.epoch = 0
        self.known: dict[int, tuple[int, int, int]] = {}  # node -> (camp, epoch, tie)

    def rebuilt(self) -> None:
        self.known.clear()

    def tick(self) -> None:
        self.epoch += 1

    def of(
        self,
        nodes: np.ndarray,
        camp_of_node: np.ndarray,
        evidence: Evidence,
        peers_exempt: Exempt | None = None,
    ) -> np.ndarray:
        camps = camp_of_node[nodes]
        out = np.full(len(nodes), NONE, dtype=np.int8)
        todo = []
        for j, (n, c) in enumerate(zip(nodes.tolist(), camps.tolist(), strict=True)):
            hit = self.known.get(n)
            if hit is not None and hit[0] == c and (hit[2] == FARM or hit[1] == self.epoch):
                out[j] = hit[2]
            else:
                todo.append(j)
        if todo:
            t = np.array(todo, dtype=np.int64)
            got = hard_linked(self._rows.of(evidence()), camp_of_node, nodes[t], peers_exempt)
            out[t] = got
            for j, h in zip(todo, got.tolist(), strict=True):
                self.known[int(nodes[j])] = (int(camps[j]), self.epoch, int(h))
        return out
