"""The linker's evidence table, kept in the graph's holder order between rebuilds.

One row per (node, key) fact with the number of requests ``n`` that carried
it, at most ``k`` keys per (node, link kind): the ``k`` carried by the most
requests (:func:`top_k_keep`, the rule of
:func:`distillwatch.linking.linker.keep_top_keys`). The rows are kept sorted
by key and, within a key, by the node's place in the blocking order
(:func:`holder_rank`, the hashed order in which
:func:`distillwatch.linking.graph.build_edges` links a key's holders), so a
rebuild never re-groups or re-sorts the table:

* :meth:`EvidenceTable.merge` folds the evidence that arrived since the last
  rebuild in. Only the new rows are sorted and de-duplicated; they are found
  in the table by binary search (their counts added to the rows they match);
  the per-(node, kind) top-k is re-decided: a new row below the worst of a
  full group's rows is out at once (counts only grow), the groups left over
  the limit are ranked with one sort of packed 64-bit (group, count,
  tie-break) codes; the new rows that survive are inserted at their places
  and the rows that lost their place are dropped, in linear passes over the
  table.
* :func:`distillwatch.linking.graph.sorted_key_graph` reads key frequencies
  and band pairs straight off the sorted rows.

Under the daily rebuilds of a long log the table is not quiet: on a 10-day
public_case (2.9M rows) the (node, kind) groups that get new evidence in a
day hold ~90% of the rows, ~9% of the rows are replaced (new sync buckets
and templates push old ones out of the top-k), and the keys whose holder set
changes carry about half of the rows (their weights all change with their
holder count). So the rebuild is kept linear in the table with small
constants (sorted-array lookups, inserts and one packed sort) rather than
re-deriving only "changed" keys and pairs, which would touch half the table
twice (old and new contributions).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from distillwatch.features.fingerprint import fmix64
from distillwatch.linking.evidence import EVIDENCE_DTYPES
from distillwatch.linking.order import argsort_bounded, argsort_hashed, run_starts

COLS = EVIDENCE_DTYPES  # one row layout for raw evidence and the table
TIE_MOD = 1_000_003  # keep_top_keys' tie-break among keys carried by as many requests
_TIE_BITS = 20  # TIE_MOD < 2**20
_KIND_BITS = 4  # link kind codes < 16


def holder_rank(n_nodes: int, seed: int) -> np.ndarray:
    """Rank of each node ``0..n_nodes-1`` in the blocking order ``fmix64(node + seed)``."""
    h = fmix64(np.arange(n_nodes, dtype=np.uint64) + np.uint64(seed))
    rank = np.empty(n_nodes, np.uint64)
    rank[np.argsort(h)] = np.arange(n_nodes, dtype=np.uint64)
    return rank


def _bits(x: int) -> int:
    return max(int(x).bit_length(), 1)


_run_starts = run_starts


def key_order(key: np.ndarray, node: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Permutation sorting rows by key, then by the node's blocking rank (rows
    with the same key and node in index order). Sorts of packed codes, no
    argsort (:mod:`distillwatch.linking.order`)."""
    o = argsort_hashed(key)
    ks = key[o]
    krank = np.zeros(len(ks), np.uint64)
    if len(ks) > 1:
        np.cumsum(ks[1:] != ks[:-1], out=krank[1:])
    del ks
    rb = _bits(len(rank) - 1)
    comp = krank << np.uint64(rb)
    comp |= rank[node[o]]
    return o[argsort_bounded(comp, _bits(int(krank[-1]) if len(krank) else 0) + rb)]


def top_k_keep(
    node: np.ndarray,
    kind: np.ndarray,
    n: np.ndarray,
    key: np.ndarray,
    k: int,
    settled: int = 0,
) -> np.ndarray:
    """Rows kept when each (node, kind) group keeps its ``k`` keys carried by the
    most requests; ties: the larger ``key % TIE_MOD``, then the lower key (the
    order of :func:`distillwatch.linking.linker.keep_top_keys`' score).

    ``settled``: the first ``settled`` rows already were a top-k (at most ``k``
    per group) before some of their counts grew (:func:`merged_top_k`).
    """
    old, new = slice(0, settled), slice(settled, len(node))
    keep_old, keep_new = merged_top_k(
        (node[old], kind[old], n[old], key[old]), (node[new], kind[new], n[new], key[new]), k
    )
    return np.concatenate([keep_old, keep_new])


Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # node, kind, n, key
# rows per step of the passes over the table: their temporaries stay in cache
# (and below the allocator's mmap threshold) instead of being table-sized
CHUNK = 1 << 18


def _rank_codes(rows: Rows, at: slice) -> tuple[np.ndarray, np.ndarray]:
    """The (node, kind) group id and the (count, tie-break) code of rows ``at``."""
    node, kind, n, key = rows
    gid = node[at].astype(np.int64)
    gid <<= _KIND_BITS
    gid |= kind[at]
    low = n[at].astype(np.uint64)
    low <<= np.uint64(_TIE_BITS)
    low |= key[at] % np.uint64(TIE_MOD)
    return gid, low


def _steps(rows: Rows) -> list[slice]:
    m = len(rows[0])
    return [slice(i, min(i + CHUNK, m)) for i in range(0, m, CHUNK)]


def merged_top_k(old: Rows, new: Rows, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Which ``old`` and ``new`` rows each (node, kind) group keeps (:func:`top_k_keep`),
    ``old`` being a top-k (at most ``k`` rows per group) whose counts may have
    grown since. Counts never shrink, so a group's k-th best can only rise: a
    new row below the worst of a full group's old rows is out without ranking,
    and only the groups left with more than ``k`` rows are ranked."""
    keep_old = np.ones(len(old[0]), bool)
    keep_new = np.ones(len(new[0]), bool)
    n_groups = (max(int(old[0].max(initial=-1)), int(new[0].max(initial=-1))) + 1) << _KIND_BITS
    if n_groups == 0:
        return keep_old, keep_new
    size_old = np.zeros(n_groups, np.int64)
    worst = np.full(n_groups, np.iinfo(np.uint64).max, np.uint64)
    for at in _steps(old):
        gid, low = _rank_codes(old, at)
        size_old += np.bincount(gid, minlength=n_groups)
        np.minimum.at(worst, gid, low)
    full = size_old >= k
    size = size_old
    for at in _steps(new):
        gid, low = _rank_codes(new, at)
        out = full[gid] & (low < worst[gid])
        keep_new[at] = ~out
        size += np.bincount(gid[~out], minlength=n_groups)
    if size.max() <= k:
        return keep_old, keep_new
    over = size > k
    picked = [_candidates(old, keep_old, over), _candidates(new, keep_new, over)]
    gid, low, key = (np.concatenate([p[i] for p in picked]) for i in (1, 2, 3))
    ranked = _top_k(gid, low, key, k, n_groups)
    cut = len(picked[0][0])
    keep_old[picked[0][0]] = ranked[:cut]
    keep_new[picked[1][0]] = ranked[cut:]
    return keep_old, keep_new


def _candidates(
    rows: Rows, keep: np.ndarray, over: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, group, code, key) of the kept ``rows`` in groups ``over`` the limit."""
    parts: list[tuple[np.ndarray, ...]] = []
    for at in _steps(rows):
        gid, low = _rank_codes(rows, at)
        sel = np.flatnonzero(over[gid] & keep[at])
        parts.append((sel + at.start, gid[sel], low[sel], rows[3][at][sel]))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint64), rows[3][:0]
    row, gid, low, key = (np.concatenate(c) for c in zip(*parts, strict=True))
    return row, gid, low, key


def _top_k(gid: np.ndarray, low: np.ndarray, key: np.ndarray, k: int, n_groups: int) -> np.ndarray:
    """:func:`top_k_keep` on rows whose groups all hold more than ``k`` rows;
    ``low``: each row's (count, tie-break) code."""
    nb = _bits(int(low.max()))
    if _bits(n_groups) + nb > 64:
        return _top_k_lexsort(gid, low, key, k)
    code = (gid.astype(np.uint64) << np.uint64(nb)) | low
    s = np.sort(code)
    first = _run_starts(s >> np.uint64(nb))
    groups = (s[first] >> np.uint64(nb)).astype(np.int64)
    end = np.append(first[1:], len(s))
    thr = s[end - k]  # each group's k-th largest code
    above = end - np.searchsorted(s, thr, side="right")  # rows strictly above it
    equal = end - above - np.searchsorted(s, thr, side="left")
    t_dense = np.zeros(n_groups, np.uint64)
    t_dense[groups] = thr
    t_row = t_dense[gid]
    keep = code > t_row
    at = code == t_row
    short = equal > k - above  # more rows tie at the threshold than places left
    if not short.any():
        return keep | at
    s_dense = np.zeros(n_groups, bool)
    s_dense[groups[short]] = True
    keep |= at & ~s_dense[gid]
    tied = np.flatnonzero(at & s_dense[gid])
    order = tied[np.lexsort((key[tied], gid[tied]))]
    gs = gid[order]
    start = _run_starts(gs)
    pos = np.arange(len(order)) - np.repeat(start, np.diff(np.append(start, len(order))))
    left = np.zeros(n_groups, np.int64)
    left[groups] = k - above
    keep[order[pos < left[gs]]] = True
    return keep


def _top_k_lexsort(gid: np.ndarray, low: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """:func:`_top_k` when the packed codes would not fit 64 bits."""
    order = np.lexsort((key, np.iinfo(np.uint64).max - low, gid))
    gs = gid[order]
    first = _run_starts(gs)
    pos = np.arange(len(order)) - np.repeat(first, np.diff(np.append(first, len(order))))
    keep = np.zeros(len(gid), bool)
    keep[order[pos < k]] = True
    return keep


def _as_arrays(parts: list[pl.DataFrame | dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Evidence chunks (frames with counts, raw arrays without: one request each)
    as one set of columns."""
    cols: dict[str, list[np.ndarray]] = {c: [] for c in COLS}
    for p in parts:
        length = p.height if isinstance(p, pl.DataFrame) else len(p["key"])
        for c, dt in COLS.items():
            if c == "n" and (c not in p.columns if isinstance(p, pl.DataFrame) else c not in p):
                cols[c].append(np.ones(length, dt))
            else:
                v = p[c].to_numpy() if isinstance(p, pl.DataFrame) else p[c]
                cols[c].append(np.asarray(v).astype(dt, copy=False))
    return {c: np.concatenate(v) if v else np.zeros(0, COLS[c]) for c, v in cols.items()}


class EvidenceTable:
    """Evidence rows (columns :data:`COLS`) sorted by key and holder rank (module docstring)."""

    def __init__(self, k: int, seed: int = 0) -> None:
        self.k = k
        self.seed = seed
        self.cols: dict[str, np.ndarray] = {c: np.zeros(0, dt) for c, dt in COLS.items()}
        self._frame: pl.DataFrame | None = None

    @property
    def height(self) -> int:
        return len(self.cols["key"])

    def frame(self) -> pl.DataFrame:
        """The rows as a DataFrame (key, kind, node, a, b, n); columns are never
        modified in place, so the frame stays valid after later merges."""
        if self._frame is None:
            self._frame = pl.DataFrame(self.cols)
        return self._frame

    def merge(self, parts: list[pl.DataFrame | dict[str, np.ndarray]], n_nodes: int) -> None:
        """Fold evidence chunks in (rows with key, kind, node, a, b and optionally
        n; nodes below ``n_nodes``): counts of the same (node, key) add up, then
        each (node, kind) keeps its top ``k`` keys."""
        new = _as_arrays(parts)
        if len(new["key"]) == 0:
            return
        rank = holder_rank(n_nodes, self.seed)
        # the new rows in table order, one per (key, node): ``src`` indexes ``new``
        o = key_order(new["key"], new["node"], rank)
        key, node = new.pop("key")[o], new.pop("node")[o]
        dup = np.zeros(len(key), bool)
        dup[1:] = (node[1:] == node[:-1]) & (key[1:] == key[:-1])
        first = np.flatnonzero(~dup)
        del dup
        count = np.add.reduceat(new.pop("n")[o].astype(np.uint64), first).astype(np.uint32)
        src = o[first]
        key, node = key[first], node[first]
        del o, first
        old = self.cols
        m = len(old["key"])
        # their places in the table: the key's block, then the holder rank in it
        start = _run_starts(old["key"])
        keys = old["key"][start]
        code = np.zeros(m, np.uint64)  # each row's key rank, then (rank << 32 | holder)
        code[start[1:]] = 1
        np.cumsum(code, out=code)
        code <<= np.uint64(32)
        code |= rank[old["node"]]
        pos = np.searchsorted(keys, key)
        present = pos < len(keys)
        present[present] = keys[pos[present]] == key[present]
        at = np.append(start, m)[pos]  # where the key's block starts (or would)
        mine = (pos.astype(np.uint64) << np.uint64(32)) | rank[node]
        del pos, keys, start
        at[present] = np.searchsorted(code, mine[present])
        hit = present & (at < m)
        hit[hit] = code[at[hit]] == mine[hit]
        del code, mine, present
        n_old = old["n"].copy()
        n_old[at[hit]] += count[hit]
        miss = np.flatnonzero(~hit)
        del hit
        keep_old, keep_new = merged_top_k(
            (old["node"], old["kind"], n_old, old["key"]),
            (node[miss], new["kind"][src[miss]], count[miss], key[miss]),
            self.k,
        )
        added = miss[keep_new]
        del miss, keep_new
        ins = at[added]  # non-decreasing: the new rows are in table order
        src = src[added]
        added_cols = {"key": key[added], "node": node[added], "n": count[added]}
        del key, node, count, at
        # a new row goes before the old row it was placed at, less the dropped ones
        dropped = np.flatnonzero(~keep_old)
        dest_new = np.arange(len(ins)) + ins - np.searchsorted(dropped, ins)
        total = m - len(dropped) + len(ins)
        # each output row's old row (0 where a new row goes): one gather per
        # column, then the new rows scattered in (half the time of a boolean
        # compress plus a boolean-mask assignment per column)
        take = np.zeros(total, np.intp)
        old_slot = np.ones(total, bool)
        old_slot[dest_new] = False
        take[old_slot] = np.flatnonzero(keep_old)
        del old_slot, keep_old
        # column by column, each old one released once copied (peak: the table
        # plus one column, not two tables)
        old["n"] = n_old
        del n_old
        self.cols, self._frame = {}, None
        out: dict[str, np.ndarray] = {}
        for c, dt in COLS.items():
            was = old.pop(c)
            col = np.take(was, take).astype(dt, copy=False) if m else np.empty(total, dt)
            del was
            col[dest_new] = added_cols[c] if c in added_cols else new.pop(c)[src]
            out[c] = col
        self.cols = out
