"""Per-entity HyperLogLog registers held in one NumPy matrix.

Each tracked entity (account or end user) owns ``M`` uint8 registers per
sketch, so distinct counts (templates, IPs, parameter signatures, ...) cost a
fixed 32 bytes per entity whatever its volume. Updates for a whole batch are
one ``np.maximum.at``; estimates for many entities are one vectorised pass.
With ``M = 32`` the standard error is about 18% for large counts and small
counts (the ones that matter for "does this account reuse one template?") are
near exact through linear counting.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from distillwatch.features.fingerprint import fmix64

M = 32
_LOG2M = 5
_ALPHA = 0.697  # HLL bias constant for m = 32
_LOW_BITS = np.uint64(M - 1)
_WORD_SHIFT = np.uint64(_LOG2M)


def register_updates(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Register index and rank for 64-bit hashes (0 hashes are ignored by callers)."""
    # re-mix so that keys with structure (sequential ids, 63-bit hashes) still
    # spread over all 64 bits
    h = fmix64(hashes.astype(np.uint64, copy=False))
    idx = (h & _LOW_BITS).astype(np.int64)
    w = h >> _WORD_SHIFT
    # leading zeros of the remaining (64 - log2M)-bit word, plus one; a zero
    # word has exponent 0 (frexp(0.0) == (0.0, 0)), so it gets the most
    # leading zeros plus one, 64 - log2M + 1, as it should
    _, exp = np.frexp(w.astype(np.float64))
    rank = (64 - _LOG2M + 1) - exp
    return idx, rank.astype(np.uint8)


def update(registers: np.ndarray, rows: np.ndarray, hashes: np.ndarray) -> None:
    """Add hashes to the sketches of ``rows`` (parallel arrays); 0 = no value."""
    keep = hashes != 0
    if not keep.any():
        return
    idx, rank = register_updates(hashes[keep])
    assert registers.flags.c_contiguous  # else reshape(-1) would be a copy
    flat = registers.reshape(-1)
    np.maximum.at(flat, rows[keep].astype(np.int64) * M + idx, rank)


@cache
def _sketch_offsets(n_sketch: int) -> np.ndarray:
    """Offset of each sketch's registers in an entity's row of a block, as a column."""
    out = (np.arange(n_sketch, dtype=np.int64) * M)[:, None]
    out.flags.writeable = False
    return out


def update_block(block: np.ndarray, rows: np.ndarray, hashes: Sequence[np.ndarray]) -> None:
    """Add ``hashes[j]`` (parallel to ``rows``; 0 = no value) to sketch ``j`` of
    each row, the sketches being a C-contiguous (entities, sketches, M) uint8
    block; one :func:`register_updates` pass and one ``np.maximum.at`` for all
    (both element-wise, and max is order-free: the registers ``update`` gives)."""
    assert block.dtype == np.uint8 and block.flags.c_contiguous
    n_sketch = block.shape[1]
    assert len(hashes) == n_sketch
    n = len(rows)
    flat_hashes = np.concatenate(hashes).astype(np.uint64, copy=False)
    nonzero = flat_hashes != 0
    if not np.logical_or.reduce(nonzero, axis=None):
        return
    idx, rank = register_updates(flat_hashes)
    # a zero hash (no value) gets rank 0, and max(register, 0) leaves a uint8
    # register as it is: the same registers as dropping those entries, without
    # a mask per sketch
    rank *= nonzero
    # (sketch j, row i) -> register (rows[i], j, idx) of the block
    base = rows.astype(np.int64) * (n_sketch * M) + _sketch_offsets(n_sketch)
    np.maximum.at(block.reshape(-1), (base + idx.reshape(n_sketch, n)).reshape(-1), rank)


# 2 ** -r for every uint8 register value r (exact powers of two: the same
# numbers np.exp2(-r) gives, without the conversion and the exp2 per call)
_POW2 = np.exp2(-np.arange(256, dtype=np.float64))


# M * log(M / max(z, 1)) for every count z of empty registers (0..M): linear
# counting's estimate, worked out per element by the same operations as on a
# column of counts, looked up instead of recomputed on every call
_LINEAR = M * np.log(M / np.maximum(np.arange(M + 1, dtype=np.int64), 1))


def estimate(registers: np.ndarray) -> np.ndarray:
    """Distinct-count estimates, one per row of a (n, M) register matrix."""
    if registers.dtype.type is np.uint8:
        pow2 = _POW2[registers]
    else:
        pow2 = np.exp2(-registers.astype(np.float64))
    # np.add.reduce is what ndarray.sum calls (without its Python-level wrapper)
    raw = _ALPHA * M * M / np.add.reduce(pow2, axis=1)
    zeros = np.add.reduce(registers == 0, axis=1)
    # (no errstate needed: no division by zero, no log of 0)
    return np.where((raw <= 2.5 * M) & (zeros > 0), _LINEAR[zeros], raw)
