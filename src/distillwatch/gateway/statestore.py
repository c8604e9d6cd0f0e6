"""Where the gateway keeps per-account online state: this process, or Redis.

Both backends fold a batch of feature rows into the accounts' state with
:meth:`EntityState.update` (the batch engine's own code: no second copy) and
return a :class:`StateView` of the touched accounts for the scorer.

:class:`RedisState` lets a fleet of gateways share one account state. An
account's row of every EntityState column is packed into one binary value
(layout fixed by the column names, dtypes and shapes; a layout tag in the key
keeps incompatible versions apart) in the hash ``<prefix>acct:<tag>:<account>``
next to a version counter. A fold reads the rows (one pipelined round trip),
folds the batch into a scratch EntityState and writes each row back with a Lua
compare-and-set on the version (a second round trip). Rows another gateway
changed in between are re-read and re-folded, so no update is ever lost and
time statistics (gaps, days) stay exact.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import polars as pl

from distillwatch.features.columns import Features
from distillwatch.signals.state import EntityState, StateView

CAS_SCRIPT = """
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[1]) + 1), 'row', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


class StateUnavailable(RuntimeError):
    """The shared state store could not be reached."""


Keys = pl.Series | list[str]


def _key_list(keys: Keys) -> list[str]:
    return keys.to_list() if isinstance(keys, pl.Series) else keys


def _first_seen(keys: Keys) -> list[str]:
    """Distinct keys in first-seen order (``unique(maintain_order=True)`` without a query)."""
    return list(dict.fromkeys(_key_list(keys)))


def _rows_of(feat: Features, keys: Keys, accounts: list[str]) -> tuple[Features, Keys]:
    """The batch rows whose key is one of ``accounts``."""
    wanted = set(accounts)
    mask = np.array([k in wanted for k in _key_list(keys)], dtype=bool)
    if isinstance(feat, pl.DataFrame):
        m = pl.Series(mask)
        return feat.filter(m), (
            keys.filter(m) if isinstance(keys, pl.Series) else [k for k in keys if k in wanted]
        )
    return {c: v[mask] for c, v in feat.items()}, [k for k in _key_list(keys) if k in wanted]


def _view_of(state: EntityState, keys: list[str]) -> StateView:
    return state.view(np.array([state.index[k] for k in keys], dtype=np.int64))


class MemoryState:
    """In-process state: one EntityState for the gateway's lifetime."""

    def __init__(self) -> None:
        self.state = EntityState()

    def fold(self, feat: Features, keys: Keys) -> StateView:
        """Fold the batch in; view of its accounts in first-seen order."""
        touched = self.state.update(feat, keys)
        order = _first_seen(keys)
        if len(order) == 1 and len(touched) == 1:  # one account: its row is the one touched
            return self.state.view(touched)
        return _view_of(self.state, order)

    def close(self) -> None:
        pass


class RowCodec:
    """Packs one EntityState row into bytes and back."""

    def __init__(self) -> None:
        proto = EntityState(1)
        self.fields: list[tuple[str, np.dtype[Any], tuple[int, ...]]] = [
            (name, col.dtype, col.shape[1:]) for name, col in sorted(proto.cols.items())
        ]
        self.sizes = [
            int(np.prod(shape, dtype=np.int64)) * dt.itemsize for _, dt, shape in self.fields
        ]
        desc = ";".join(f"{n}:{dt.str}:{shape}" for n, dt, shape in self.fields)
        self.tag = hashlib.blake2b(desc.encode(), digest_size=4).hexdigest()

    def encode(self, state: EntityState, row: int) -> bytes:
        return b"".join(state.cols[name][row].tobytes() for name, _, _ in self.fields)

    def decode_into(self, blob: bytes, state: EntityState, row: int) -> None:
        off = 0
        for (name, dt, shape), size in zip(self.fields, self.sizes, strict=True):
            state.cols[name][row] = np.frombuffer(
                blob, dtype=dt, count=size // dt.itemsize, offset=off
            ).reshape(shape)
            off += size


class RedisState:
    """Account state shared through Redis with optimistic Lua compare-and-set."""

    def __init__(self, url: str, prefix: str = "dw:", ttl_ms: int = 30 * 86_400_000) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.codec = RowCodec()
        self.prefix = f"{prefix}acct:{self.codec.tag}:"
        self.ttl_ms = ttl_ms
        self.cas = self.client.register_script(CAS_SCRIPT)
        self.conflicts = 0

    def fold(self, feat: Features, keys: Keys) -> StateView:
        try:
            return self._fold(feat, keys)
        except self._errors as e:
            raise StateUnavailable(str(e)) from e

    def _fold(self, feat: Features, keys: Keys) -> StateView:
        order = _first_seen(keys)
        done: dict[str, tuple[EntityState, int]] = {}
        todo = order
        for _ in range(50):
            if not todo:
                break
            todo = self._attempt(feat, keys, todo, done)
        if todo:
            raise StateUnavailable(f"state of {len(todo)} accounts kept changing under us")
        cols = {
            name: np.stack([st.cols[name][row] for st, row in (done[k] for k in order)])
            for name in done[order[0]][0].cols
        }
        return StateView(cols, order)

    def _attempt(
        self,
        feat: Features,
        keys: Keys,
        accounts: list[str],
        done: dict[str, tuple[EntityState, int]],
    ) -> list[str]:
        names = [self.prefix + a for a in accounts]
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(name, "v", "row")
        stored = pipe.execute()
        scratch = EntityState(max(len(accounts), 1))
        rows = scratch.rows_for(pl.Series(accounts, dtype=pl.String))
        versions: list[bytes] = []
        for (version, blob), row in zip(stored, rows, strict=True):
            versions.append(version or b"0")
            if blob is not None:
                self.codec.decode_into(blob, scratch, int(row))
        if len(accounts) == len(set(_key_list(keys))):
            scratch.update(feat, keys)
        else:
            part, part_keys = _rows_of(feat, keys, accounts)
            scratch.update(part, part_keys)
        pipe = self.client.pipeline(transaction=False)
        for name, version, row in zip(names, versions, rows, strict=True):
            self.cas(
                keys=[name],
                args=[version, self.codec.encode(scratch, int(row)), self.ttl_ms],
                client=pipe,
            )
        results = pipe.execute()
        retry = []
        for acc, row, ok in zip(accounts, rows, results, strict=True):
            if ok:
                done[acc] = (scratch, int(row))
            else:
                retry.append(acc)
        self.conflicts += len(retry)
        return retry

    def close(self) -> None:
        self.client.close()
