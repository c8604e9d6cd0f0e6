"""Template fingerprints: MinHash signatures and LSH band keys, vectorised.

Shingles are hashed word bigrams of the slot-normalised template
(:mod:`distillwatch.features.text`). Signatures use datasketch's ``affine64``
permutation scheme (MurmurHash3 finaliser pre-mix, then ``a*h + b`` mod 2^64)
with datasketch's own permutation parameters, so a signature computed here
equals ``datasketch.MinHash(num_perm, seed, hashfunc=identity,
scheme="affine64")`` fed the same shingle hashes (a test checks this), and
datasketch's ``MinHashLSH`` can index them. The batch path is NumPy over the
flattened shingles of a whole batch: one pass per permutation, no per-row
Python.

Band keys (``NUM_BANDS`` bands of ``ROWS_PER_BAND`` rows) are what linking
blocks on: two prompts share a band key with probability ``1-(1-s^r)^b`` for
Jaccard similarity ``s`` (0.86 at s=0.8, 0.23 at s=0.5, 0.03 at s=0.3).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa

NUM_PERM = 16
NUM_BANDS = 4
ROWS_PER_BAND = NUM_PERM // NUM_BANDS
SEED = 1
_EMPTY = np.uint64(np.iinfo(np.uint64).max)

U64 = np.uint64


# NumPy never checks integer overflow in array arithmetic (it wraps), only in
# arithmetic on scalars, so the functions here need no np.errstate (a fixed cost
# per call that was a good part of a one-row batch's hashing) except where a
# scalar can come in: fmix64 of a scalar or 0-d array.


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finaliser (a bijection), element-wise, wrapping."""
    if type(h) is np.ndarray and h.ndim:
        return _fmix64(h)
    with np.errstate(over="ignore"):
        return _fmix64(h)


_SHIFT33 = U64(33)
_FMIX_C1 = U64(0xFF51AFD7ED558CCD)
_FMIX_C2 = U64(0xC4CEB9FE1A85EC53)


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _SHIFT33)
    h = h * _FMIX_C1
    h = h ^ (h >> _SHIFT33)
    h = h * _FMIX_C2
    return h ^ (h >> _SHIFT33)


@lru_cache(maxsize=4)
def permutations(num_perm: int = NUM_PERM, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine64 permutation parameters (a, b).

    Drawn exactly as ``datasketch.MinHash(num_perm, seed, scheme="affine64")``
    draws them (tests/test_fingerprint.py compares the two), without importing
    datasketch at run time: its package import pulls in SciPy's integrate and
    redis (~0.5 s of CPU in every feature worker the batch engine spawns).
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = gen.randint(0, 1 << 64, num_perm, dtype=np.uint64)
    return a, b


# seed of the token hashes shingles are built from
SHINGLE_SEED = 11
# Up to this many (shingle x permutation) values the signatures take one
# matrix pass instead of a loop over the permutations (same values).
_MATRIX_MAX = 1 << 15


def list_values(lists: pl.Series) -> tuple[pa.Array, np.ndarray]:
    """A list Series as Arrow: its flat values and its per-row offsets (int64,
    starting at 0, ``len(lists) + 1`` of them)."""
    arr = lists.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    return arr.flatten(), offsets - offsets[0]


def shingle_hashes(tokens: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Flat shingle hashes and per-row offsets for a list[str] Series.

    Shingle i of a row combines token i and token i+1 (the last token pairs
    with a terminator), so a row of L tokens has L shingles.
    """
    values, offsets = list_values(tokens)
    flat = pl.Series(values).hash(seed=SHINGLE_SEED).to_numpy()
    return shingles_from_token_hashes(flat.astype(np.uint64, copy=False), offsets), offsets


def shingle_hashes_from_lists(token_hashes: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`shingle_hashes` from the rows' token hash lists (list[u64]: each
    token's ``hash(seed=SHINGLE_SEED)``, computed in the caller's query)."""
    values, offsets = list_values(token_hashes)
    return shingles_from_token_hashes(np.asarray(values, dtype=np.uint64), offsets), offsets


def shingles_from_token_hashes(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Flat shingle hashes from the flat token hashes (``SHINGLE_SEED``) of rows at ``offsets``."""
    nxt = np.empty_like(flat)
    if flat.size:
        nxt[:-1] = flat[1:]
        ends = offsets[1:][offsets[1:] > offsets[:-1]] - 1  # rows with tokens
        nxt[ends] = U64(0x9E3779B97F4A7C15)
    sh: np.ndarray = flat ^ (nxt * U64(0x100000001B3))  # arrays: wraps silently
    return sh


def minhash_signatures(tokens: pl.Series, num_perm: int = NUM_PERM) -> np.ndarray:
    """MinHash signatures, shape (n_rows, num_perm) uint64; empty rows all-max."""
    return signatures_from_shingles(*shingle_hashes(tokens), num_perm)


def signatures_from_shingles(
    sh: np.ndarray, offsets: np.ndarray, num_perm: int = NUM_PERM
) -> np.ndarray:
    """:func:`minhash_signatures` from flat shingle hashes and per-row offsets."""
    n = len(offsets) - 1
    sig = np.full((n, num_perm), _EMPTY, dtype=np.uint64)
    if sh.size == 0:
        return sig
    a, b = permutations(num_perm)
    mixed = fmix64(sh)
    nonempty = offsets[1:] > offsets[:-1]
    starts = offsets[:-1][nonempty]
    if sh.size * num_perm <= _MATRIX_MAX:  # small batches: all permutations at once
        phv = mixed[:, None] * a[None, :] + b[None, :]
        sig[nonempty] = np.minimum.reduceat(phv, starts, axis=0)
        return sig
    # one permutation at a time into one reused buffer, each into a contiguous
    # row of the transposed signatures (same values, ~30% less CPU than fresh
    # arrays and strided column writes)
    sig_t = np.full((num_perm, n), _EMPTY, dtype=np.uint64)
    phv = np.empty_like(mixed)
    for k in range(num_perm):
        np.multiply(mixed, a[k], out=phv)
        phv += b[k]
        sig_t[k, nonempty] = np.minimum.reduceat(phv, starts)
    return np.ascontiguousarray(sig_t.T)


_U64_31 = U64(31)


@lru_cache(maxsize=4)
def _band_starts(num_bands: int) -> np.ndarray:
    """1, 2, ..., num_bands (read-only: band_keys never writes into it)."""
    out = np.arange(1, num_bands + 1, dtype=np.uint64)
    out.flags.writeable = False
    return out


def band_keys(sig: np.ndarray, num_bands: int = NUM_BANDS) -> np.ndarray:
    """LSH band keys, shape (n_rows, num_bands) uint64; 0 marks an empty prompt."""
    n, k = sig.shape
    r = k // num_bands
    # all bands at once: band j folds its r signature values into j + 1
    rows = sig[:, : num_bands * r].reshape(n, num_bands, r)
    # band j starts from j + 1: one row, broadcast over the n rows by the first
    # step (the same values as np.tile-ing it n times, without np.tile's cost)
    keys = _band_starts(num_bands)
    if r == 0:
        keys = np.tile(keys, (n, 1))
    for i in range(r):
        keys = fmix64(keys * _U64_31 ^ rows[:, :, i])
    empty = sig[:, 0] == _EMPTY
    keys[empty] = 0
    keys[keys == 0] = 1  # keep 0 reserved for "no text"
    keys[empty] = 0
    return keys


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.mean(sig_a == sig_b))
