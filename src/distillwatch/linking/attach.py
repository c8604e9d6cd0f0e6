"""Early action: an account joins a known malicious campaign at its first requests.

Between graph rebuilds, :class:`CampaignAttacher` keeps an index of the keys
held by members of malicious campaigns (sorted keys, the campaign holding
each, its weight) and checks every unlinked account's new evidence against
it. Hits are remembered per (account, key) across windows, because an
account sending a request or two per window matches one key at a time; when
the summed weight of the distinct keys an account shares with one campaign
reaches ``min_weight`` (the rule a graph edge follows) it joins that campaign.

A key's weight here is the larger of its graph weight (kind weight shrunk by
how many accounts hold it: specific to a *pair* of accounts) and its
campaign share (kind weight times the share of its holders, the candidate
counted, that are members of the campaign: specific to the *campaign*). A
template that sixty members of a farm use and two other accounts do is
near-useless for telling two accounts apart, but strong evidence that a
third account using it with the farm's client belongs to the farm. Counting
the candidate keeps one conjunctive key below ``min_weight`` (base weight
at most 1): joining still takes at least two keys, or a shared payment
fingerprint.

Catches: new accounts of a farm that reuse its payment method, its
infrastructure x templates, its sign-up burst x client, or a reseller's
attacking end users' templates. Misses: accounts that share nothing with the
campaign's members yet (they wait for the next rebuild).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from distillwatch.linking.evidence import BASE_WEIGHT, IS_ATTACH_ONLY
from distillwatch.linking.graph import key_weights
from distillwatch.linking.order import argsort_bounded, argsort_hashed, run_starts

# sorted keys, campaign, weight, whether the key is a tooling (join-only) key
KeyIndex = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# (nodes, campaigns, best tooling-key weight of each pair) -> weight added to
# their summed key weight (linking.profile, linking.cohort)
Corroborate = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# Many keys against a sorted index (catch-up tries all evidence so far): most
# miss, and a binary search per key is cache misses all the way down. A bitmap
# of the index keys' low bits (the keys are 64-bit hashes) rules out most
# misses with one gather; only the candidates are searched. Same answers.
# The attacher keeps its index's bitmap (key_filter) for every window's lookup.
_PREFILTER_MIN = 1 << 16
KeyFilter = tuple[np.uint64, np.ndarray]  # low-bits mask, bitmap


def key_filter(keys_s: np.ndarray) -> KeyFilter:
    """The bitmap of the low bits of the sorted index keys ``keys_s``."""
    bits = min(max(len(keys_s).bit_length() + 4, 16), 24)
    mask = np.uint64((1 << bits) - 1)
    table = np.zeros(1 << bits, dtype=bool)
    table[(keys_s & mask).astype(np.intp)] = True
    return mask, table


def _lookup(
    keys_s: np.ndarray, key: np.ndarray, filt: KeyFilter | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Position of each key in the sorted index and whether it is there
    (the position is meaningful only where it is); ``filt``: the index's
    :func:`key_filter`, if already built."""
    if filt is None and len(key) >= _PREFILTER_MIN and 0 < len(keys_s) < len(key):
        filt = key_filter(keys_s)
    if filt is not None and len(keys_s):
        mask, table = filt
        cand = np.flatnonzero(table[(key & mask).astype(np.intp)])
        pos = np.zeros(len(key), dtype=np.intp)
        hit = np.zeros(len(key), dtype=bool)
        pos[cand], hit[cand] = _search(keys_s, key[cand])
        return pos, hit
    return _search(keys_s, key)


def _search(keys_s: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.minimum(np.searchsorted(keys_s, key), len(keys_s) - 1)
    return pos, keys_s[pos] == key


def sorted_rows_on(col: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the rows of the sorted column ``col`` whose value
    is in the sorted array ``keys``: each key's run, found by binary search
    (a few keys against a large sorted table: no pass over the table)."""
    lo = np.searchsorted(col, keys, side="left")
    length = np.searchsorted(col, keys, side="right") - lo
    lo, length = lo[length > 0], length[length > 0]
    if len(lo) == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(length)
    # row i of the output: lo[run] + its offset in the run
    step = np.ones(int(ends[-1]), np.int64)
    step[0] = lo[0]
    step[ends[:-1]] = lo[1:] - (lo[:-1] + length[:-1] - 1)
    return np.cumsum(step)


def on_keys(
    ev: dict[str, np.ndarray], keys: np.ndarray, key_sorted: bool = False
) -> dict[str, np.ndarray]:
    """The rows (``key``, ``node``) of evidence arrays whose key is in the sorted array ``keys``
    (``key_sorted``: the evidence is sorted by key, as the linker's table is)."""
    if len(keys) == 0:
        return {"key": ev["key"][:0], "node": ev["node"][:0]}
    if key_sorted:
        rows = sorted_rows_on(ev["key"], keys)
        return {"key": ev["key"][rows], "node": ev["node"][rows]}
    _, hit = _lookup(keys, ev["key"])
    return {"key": ev["key"][hit], "node": ev["node"][hit]}


def campaign_share_weights(kind: np.ndarray, df: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Weight of keys for joining a campaign: kind weight x ``held / (df + 1)``.

    ``df``: accounts holding each key, ``held``: how many of them are members
    of the campaign; the ``+ 1`` is the candidate, which holds the key too.
    """
    d = df.astype(np.float64)
    share = np.minimum(held.astype(np.float64), d) / (d + 1.0)
    return np.asarray(BASE_WEIGHT[kind.astype(np.int64)] * share)


class CampaignAttacher:
    """The malicious-key index and the remembered hits of unlinked accounts."""

    def __init__(self, min_weight: float) -> None:
        self.min_weight = min_weight
        self.index: KeyIndex | None = None
        # remembered hits (node, key) of unlinked nodes, in the order they came
        self._hit_node = np.zeros(0, np.int64)
        self._hit_key = np.zeros(0, np.uint64)
        self._filter: tuple[KeyIndex, KeyFilter] | None = None  # the index's key_filter
        # keys that count as a whole join on their own (sorted): those a tooling
        # group of a reseller's end users was formed on (linking/resold.py); an
        # end user sending one is who the next rebuild would put in that group
        self.full_keys = np.zeros(0, np.uint64)

    def _index_filter(self) -> KeyFilter | None:
        """:func:`key_filter` of the current index (built once per index)."""
        if self.index is None:
            return None
        if self._filter is None or self._filter[0] is not self.index:
            self._filter = (self.index, key_filter(self.index[0]))
        return self._filter[1]

    def pending_hits(self) -> tuple[np.ndarray, np.ndarray]:
        """(node, campaign) of the remembered hits of unlinked nodes (one row per
        hit key; the campaign that holds the key in the index)."""
        if self.index is None or len(self._hit_node) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys_s, camp_s, _, _ = self.index
        pos, ok = _lookup(keys_s, self._hit_key, self._index_filter())
        return self._hit_node[ok], camp_s[pos[ok]]

    def clear(self) -> None:
        """No attachment (nothing malicious, or the final pass)."""
        self.index = None
        self._filter = None

    def build_index(
        self,
        members: pl.DataFrame,
        camp_of_node: np.ndarray,
        malicious: np.ndarray,
        excluded: np.ndarray,
        freq: pl.DataFrame,
    ) -> None:
        """Index the keys held by members of malicious campaigns.

        ``members``: the evidence table (key, kind, node, ...);
        ``camp_of_node``/``malicious``: the current campaigns; ``excluded``:
        nodes never linked (resellers); ``freq``: key document frequencies of
        the last rebuild (same members), which set the weights.
        """
        if not malicious.any() or members.height == 0:
            self.index = None
            return
        key, camp, w, tool = self._entries(members, camp_of_node, malicious, excluded, freq)
        # remembered hits: of nodes still unlinked, on keys still in the index
        keep = camp_of_node[self._hit_node] < 0
        keep[keep] = _lookup(key, self._hit_key[keep])[1]
        self._hit_node, self._hit_key = self._hit_node[keep], self._hit_key[keep]
        self.index = key, camp, w, tool

    def update_index(
        self,
        members: pl.DataFrame,
        camp_of_node: np.ndarray,
        malicious: np.ndarray,
        excluded: np.ndarray,
        freq: pl.DataFrame,
        joined: np.ndarray,
    ) -> np.ndarray:
        """The index :meth:`build_index` would build after the nodes ``joined``
        became members (``camp_of_node`` already says so), recomputing only the
        entries of the keys they hold; returns those keys (sorted).

        Nothing else changes: the other keys' holders, the campaigns' verdicts
        and the key frequencies are the same, so their entries are too; the
        remembered hits of the nodes that joined were dropped when they joined.
        """
        if self.index is None or len(joined) == 0:
            return np.zeros(0, np.uint64)
        keys, node = members["key"].to_numpy(), members["node"].to_numpy()
        mine = np.zeros(max(int(node.max(initial=0)), int(joined.max())) + 1, bool)
        mine[joined] = True
        changed = _distinct(keys[mine[node]])
        if len(changed) == 0:
            return changed
        if len(keys) > 1 and (keys[1:] >= keys[:-1]).all():  # the linker's table is key-sorted
            at_rows = sorted_rows_on(keys, changed)
            rows = pl.DataFrame({"key": keys[at_rows], "node": node[at_rows]})
        else:
            rows = members.filter(pl.Series(_lookup(changed, keys)[1]))
        key, camp, w, tool = self._entries(rows, camp_of_node, malicious, excluded, freq)
        old_k, old_c, old_w, old_t = self.index
        keep = np.ones(len(old_k), bool)  # the index keys are sorted and distinct
        keep[sorted_rows_on(old_k, changed)] = False
        old_k = old_k[keep]
        at = np.searchsorted(old_k, key)  # the recomputed keys are not in old_k
        self.index = (
            np.insert(old_k, at, key),
            np.insert(old_c[keep], at, camp),
            np.insert(old_w[keep], at, w),
            np.insert(old_t[keep], at, tool),
        )
        return changed

    def _entries(
        self,
        members: pl.DataFrame,
        camp_of_node: np.ndarray,
        malicious: np.ndarray,
        excluded: np.ndarray,
        freq: pl.DataFrame,
    ) -> KeyIndex:
        """:func:`_entries`, with :attr:`full_keys` at ``min_weight`` (one cue alone)."""
        key, camp, w, tool = _entries(members, camp_of_node, malicious, excluded, freq)
        if len(self.full_keys) and len(key):
            full = _lookup(self.full_keys, key)[1]
            w = np.where(full, np.maximum(w, self.min_weight), w)
            tool = tool & ~full
        return key, camp, w, tool

    def attach(
        self,
        fresh: list[dict[str, np.ndarray]],
        camp_of_node: np.ndarray,
        excluded: np.ndarray | None = None,
        corroborate: Corroborate | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(nodes, campaigns) that join a campaign given new evidence ``fresh``
        (rows with ``key`` and ``node``); ``excluded`` nodes never join.

        ``corroborate``: weight added to the summed key weight of (node,
        campaign) pairs that share at least one key but fall short of
        ``min_weight``, given each pair's best tooling-key weight (the
        campaign-profile match of :mod:`distillwatch.linking.profile`, the
        co-activation of :mod:`distillwatch.linking.cohort`)."""
        none = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self.index is None or not fresh:
            return none
        keys_s, camp_s, w_s, tool_s = self.index
        key = np.concatenate([f["key"] for f in fresh])
        node = np.concatenate([f["node"] for f in fresh]).astype(np.int64)
        free = camp_of_node[node] < 0
        if excluded is not None:
            free &= ~excluded[node]
        key, node = key[free], node[free]
        filt = self._index_filter()
        pos, hit = _lookup(keys_s, key, filt)
        if not hit.any():
            return none
        new_node, new_key = node[hit], key[hit]
        hn, hk = self._hit_node, self._hit_key
        mark = np.zeros(max(int(hn.max(initial=-1)), int(new_node.max())) + 1, bool)
        mark[new_node] = True
        touched = mark[hn]
        # only the nodes with new hits are re-weighed (the table holds every
        # unlinked node's hits; it is pruned when the index is rebuilt)
        m_node, m_key = _distinct_pairs(
            np.concatenate([hn[touched], new_node]), np.concatenate([hk[touched], new_key])
        )
        pos, held = _lookup(keys_s, m_key, filt)
        m_node, m_key, p = m_node[held], m_key[held], pos[held]
        self._hit_node = np.concatenate([hn[~touched], m_node])
        self._hit_key = np.concatenate([hk[~touched], m_key])
        g_node, g_camp, w, g_tool = tooled_join_weights(m_node, camp_s[p], w_s[p], tool_s[p])
        if corroborate is not None:
            short = w < self.min_weight
            if short.any():
                w = w.copy()
                w[short] += corroborate(g_node[short], g_camp[short], g_tool[short])
        ok = w >= self.min_weight
        if not ok.any():
            return none
        g_node, g_camp, w = g_node[ok], g_camp[ok], w[ok]
        # per node, its heaviest campaign (ties: the lower campaign)
        order = np.lexsort((g_camp, -w, g_node))
        best = order[run_starts(g_node[order])]
        nodes, camps = g_node[best], g_camp[best]
        mark[:] = False
        mark[nodes] = True
        keep = ~mark[self._hit_node]
        self._hit_node, self._hit_key = self._hit_node[keep], self._hit_key[keep]
        return nodes, camps


def _distinct_pairs(node: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (node, key) rows, each at its first row's place (input order)."""
    if len(node) < 2:
        return node, key
    o = argsort_hashed(key)
    ks = key[o]
    krank = np.zeros(len(ks), np.uint64)
    np.cumsum(ks[1:] != ks[:-1], out=krank[1:])
    nb = max(int(node.max()).bit_length(), 1)
    code = krank << np.uint64(nb)
    code |= node[o].astype(np.uint64)
    o2 = argsort_bounded(code, max(int(krank[-1]).bit_length(), 1) + nb)
    # both sorts are stable: a pair's rows stay in input order, its first leads
    first = np.zeros(len(node), bool)
    first[o[o2][run_starts(code[o2])]] = True
    return node[first], key[first]


def join_weights(
    node: np.ndarray, camp: np.ndarray, w: np.ndarray, tool: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (node, campaign) of hit rows (distinct keys): the summed weight of its
    keys, tooling keys counting as one cue (their best weight). Groups in
    (node, campaign) order; each group's keys summed in row order."""
    g_node, g_camp, total, _ = tooled_join_weights(node, camp, w, tool)
    return g_node, g_camp, total


def tooled_join_weights(
    node: np.ndarray, camp: np.ndarray, w: np.ndarray, tool: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`join_weights` and, per group, its best tooling key's weight (0: none)."""
    if len(node) == 0:
        return node, camp, w, w
    cb = max(int(camp.max()).bit_length(), 1)
    code = node.astype(np.uint64) << np.uint64(cb)
    code |= camp.astype(np.uint64)
    o = argsort_bounded(code, max(int(node.max()).bit_length(), 1) + cb)
    cs, ws, ts = code[o], w[o], tool[o]
    start = run_starts(cs)
    total = np.add.reduceat(np.where(ts, 0.0, ws), start)
    best_tool = np.maximum.reduceat(np.where(ts, ws, -np.inf), start)
    best_tool = np.where(np.isinf(best_tool), 0.0, best_tool)
    total += best_tool
    return node[o[start]], camp[o[start]], total, best_tool


def _entries(
    members: pl.DataFrame,
    camp_of_node: np.ndarray,
    malicious: np.ndarray,
    excluded: np.ndarray,
    freq: pl.DataFrame,
) -> KeyIndex:
    """Index entries (sorted keys, campaign, weight) of the keys in ``members``
    held by members of malicious campaigns (see :meth:`CampaignAttacher.build_index`)."""
    nodes = members["node"].to_numpy()
    keys = members["key"].to_numpy()
    camp = camp_of_node[nodes]
    bad_rows = (camp >= 0) & malicious[np.maximum(camp, 0)] & ~excluded[nodes]
    hk, hc = keys[bad_rows], camp[bad_rows]
    if len(hk) > 1 and not (hk[1:] >= hk[:-1]).all():  # the linker's table is key-sorted
        order = np.argsort(hk, kind="stable")
        hk, hc = hk[order], hc[order]
    # Per key, the campaign holding it most (ties: lower index, so the index is
    # the same on every run) and how many members hold it. Most keys are held
    # by one campaign only: their runs settle them; the (key, campaign)
    # counts are needed only for the keys held by several.
    start = np.flatnonzero(np.append(True, hk[1:] != hk[:-1])) if len(hk) else hk[:0]
    uk = hk[start]
    if len(uk) == 0:
        return uk, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    lo = np.minimum.reduceat(hc, start)
    hi = np.maximum.reduceat(hc, start)
    held = np.diff(np.append(start, len(hk)))
    best = lo.copy()
    multi = np.flatnonzero(lo != hi)
    if len(multi):
        rows = np.repeat(lo != hi, held)
        mk, mc = hk[rows], hc[rows]
        order = np.lexsort((mc, mk))
        mk, mc = mk[order], mc[order]
        run = np.flatnonzero(np.append(True, (mk[1:] != mk[:-1]) | (mc[1:] != mc[:-1])))
        rk, rc = mk[run], mc[run]
        rn = np.diff(np.append(run, len(mk)))
        top = np.lexsort((rc, -rn, rk))  # per key: most members, then lower campaign
        first = top[np.append(True, rk[top][1:] != rk[top][:-1])]
        best[multi] = rc[first]
        held[multi] = rn[first]
    fk = freq["key"].to_numpy()
    f_kind, f_df = freq["kind"].to_numpy(), freq["df"].to_numpy()
    if len(fk) > 1 and not (fk[1:] >= fk[:-1]).all():
        order = np.argsort(fk, kind="stable")
        fk, f_kind, f_df = fk[order], f_kind[order], f_df[order]
    if len(fk) == 0:
        return uk[:0], best[:0], np.zeros(0), np.zeros(0, bool)
    pos, found = _lookup(fk, uk)
    pos = pos[found]
    kind, df = f_kind[pos], f_df[pos]
    # join-only (tooling) keys say nothing about a pair of accounts: campaign share only
    tool = IS_ATTACH_ONLY[kind]
    pair = np.where(tool, 0.0, key_weights(kind, df))
    w = np.maximum(pair, campaign_share_weights(kind, df, held[found]))
    return uk[found], best[found], w, tool


def _distinct(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` hashes first: ~100x slower on large
    arrays of distinct 64-bit keys with NumPy 2.4)."""
    s = np.sort(x)
    return s[np.append(True, s[1:] != s[:-1])] if len(s) else s
