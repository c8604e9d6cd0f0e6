"""API key -> account: from the config (``keys:`` / ``keys_file``) and optionally Redis.

With ``keys_from_redis`` a key missing from the config is looked up in the
Redis hash ``<redis_prefix>keys``; answers (found or not) are cached for
``ttl_s`` seconds so revocations and new keys take effect within that time.
"""

from __future__ import annotations

import time
from typing import Any

from .config import GatewayConfig


class KeyStore:
    """Resolves client API keys to account ids."""

    def __init__(self, cfg: GatewayConfig, ttl_s: float = 30.0) -> None:
        self.static = dict(cfg.keys)
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._redis: Any = None
        self._hash = f"{cfg.redis_prefix}keys"
        if cfg.keys_from_redis:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(
                cfg.state, socket_timeout=0.5, socket_connect_timeout=0.5
            )

    async def account(self, key: str | None) -> str | None:
        """The key's account, or None if missing/unknown (or Redis unreachable)."""
        if not key:
            return None
        acc = self.static.get(key)
        if acc is not None or self._redis is None:
            return acc
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            raw = await self._redis.hget(self._hash, key)
        except Exception:  # unreachable: an unknown key is refused, never guessed
            return hit[1] if hit is not None else None
        val = raw.decode() if isinstance(raw, bytes) else raw
        self._cache[key] = (now + self.ttl_s, val)
        return val

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
