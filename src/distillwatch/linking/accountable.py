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


def _spans(sorted_values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in ``sorted_values`` of every element equal to one of ``wanted``."""
    lo = np.searchsorted(sorted_values, wanted, side="left")
    size = np.searchsorted(sorted_values, wanted, side="right") - lo
    at = np.flatnonzero(size)
    lo, size = lo[at], size[at]
    starts = np.cumsum(size) - size
    out: np.ndarray = np.repeat(lo - starts, size) + np.arange(int(size.sum()))
    return out


class HardIndex:
    """One evidence part's hard (node, key) rows, sorted by node and by key:
    the keys a few nodes hold and the holders of a few keys are binary
    searches, not a scan of the part (the merged table holds millions of rows
    and is asked on many windows)."""

    def __init__(self, rows: dict[str, np.ndarray]) -> None:
        node = np.asarray(rows["node"]).astype(np.int64, copy=False)
        key = np.asarray(rows["key"])
        by_node = np.argsort(node, kind="stable")
        self.node_sorted, self.key_by_node = node[by_node], key[by_node]
        by_key = np.argsort(key, kind="stable")
        self.key_sorted, self.node_by_key = key[by_key], node[by_key]

    def __len__(self) -> int:
        return len(self.node_sorted)

    def keys_of(self, nodes: np.ndarray) -> np.ndarray:
        """The keys (with repeats) that ``nodes`` (sorted, unique) hold here."""
        out: np.ndarray = self.key_by_node[_spans(self.node_sorted, nodes)]
        return out

    def holders_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(node, key) of every row here holding one of ``keys`` (sorted, unique)."""
        at = _spans(self.key_sorted, keys)
        return self.node_by_key[at], self.key_sorted[at]


def hard_rows(part: Any) -> HardIndex:
    """The :class:`HardIndex` of an evidence part's rows whose kind is hard (an
    index passes through: already built)."""
    if isinstance(part, HardIndex):
        return part
    return HardIndex(kind_rows(part, _IS_HARD))


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
    ``camp_of_node``: campaign index per node (-1: none). Each part's
    :class:`HardIndex` finds the keys and their holders by binary search, so
    a call costs what the asked nodes' keys hold, not the size of the
    evidence (a scan and join of every hard row took ~30-40 ms per call at 1M
    events, and the replay asks on many windows).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    out = np.full(len(nodes), NONE, dtype=np.int8)
    parts = [ix for ix in (hard_rows(e) for e in evidence) if len(ix)]
    if len(nodes) == 0 or not parts:
        return out
    # every holder of a key one of ``nodes`` holds, once per (node, key); then
    # per (key, campaign) how many holders, and how many not exempt: counts,
    # not the pairs (a farm's shared /24 or card has thousands of holders, and
    # the pairs of one key are their square)
    asked = np.unique(nodes)
    keys = np.unique(np.concatenate([ix.keys_of(asked) for ix in parts]))
    if len(keys) == 0:
        return out
    found = [ix.holders_of(keys) for ix in parts]
    h = (
        pl.DataFrame(
            {
                "node": np.concatenate([n for n, _ in found]),
                "key": np.concatenate([k for _, k in found]),
            }
        )
        .unique()
        .filter(pl.col("node") < len(camp_of_node))
    )
    h_node = h["node"].to_numpy()
    h_camp = camp_of_node[h_node]
    exempt = np.zeros(len(h_node), dtype=bool)
    if peers_exempt is not None:
        mine = np.isin(h_camp, camp_of_node[nodes])
        uniq, at = np.unique(h_node[mine], return_inverse=True)
        if len(uniq):
            exempt[mine] = peers_exempt(uniq)[at]
    h = h.with_columns(camp=pl.Series(h_camp), farm=pl.Series(~exempt))
    per_key = h.group_by("key", "camp").agg(
        pl.len().alias("holders"), pl.col("farm").sum().alias("farm_holders")
    )
    ties = (
        h.filter(pl.col("node").is_in(pl.Series(nodes).implode()))
        .join(per_key, on=["key", "camp"])
        .group_by("node")
        .agg(
            (pl.col("holders") > 1).any().alias("linked"),
            (pl.col("farm_holders") - pl.col("farm").cast(pl.UInt32) > 0).any().alias("farm"),
        )
    )
    linked = ties.filter(pl.col("linked"))
    if peers_exempt is None:
        out[np.isin(nodes, linked["node"].to_numpy())] = FARM
        return out
    out[np.isin(nodes, linked["node"].to_numpy())] = PEERS
    out[np.isin(nodes, linked.filter(pl.col("farm"))["node"].to_numpy())] = FARM
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
        self._rows = PartRows(_IS_HARD, HardIndex)
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
