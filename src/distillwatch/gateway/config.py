"""Gateway settings: the YAML file of ``distillwatch gateway --config FILE``.

The keys fixed by ``shared/spec/gateway.md`` (listen, upstreams,
upstream_api_key, keys / keys_file, verdicts, state, events_out, mode) plus our
own, all optional:

* ``detection``: path of a detection settings file (default: packaged defaults).
* ``max_body_bytes``: request size limit (413 above it), default 4 MiB.
* ``on_state_error``: ``open`` (serve, verdict file only) or ``closed`` (refuse
  with 503) when Redis is unreachable; default ``open``.
* ``redis_prefix``: key prefix of the shared state, default ``dw:``.
* ``degrade_max_tokens``: cap on ``max_tokens`` for degraded requests, default 1024.
* ``events_rotate_bytes``: start a new event file past this size, default 64 MiB.
* ``upstream_timeout_s``: default 600.
* ``keys_from_redis``: also look unknown keys up in the Redis hash
  ``<redis_prefix>keys`` (field = API key, value = account id); needs a Redis ``state``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from distillwatch.scoring.config import ConfigError


@dataclass
class GatewayConfig:
    """Validated gateway settings."""

    host: str = "127.0.0.1"
    port: int = 8787
    upstream_openai: str = "http://127.0.0.1:9001"
    upstream_anthropic: str = "http://127.0.0.1:9001"
    upstream_api_key: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    verdicts: Path | None = None
    state: str = "memory"
    events_out: Path | None = None
    mode: str = "enforce"
    detection: Path | None = None
    max_body_bytes: int = 4 << 20
    on_state_error: str = "open"
    redis_prefix: str = "dw:"
    degrade_max_tokens: int = 1024
    events_rotate_bytes: int = 64 << 20
    upstream_timeout_s: float = 600.0
    keys_from_redis: bool = False

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"

    @classmethod
    def load(cls, path: str | Path) -> GatewayConfig:
        """Read and validate a YAML file; relative paths resolve against its folder."""
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{p}: {e}") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
        return cls.from_dict(raw, base=p.parent, source=str(p))

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], base: Path | None = None, source: str = "<dict>"
    ) -> GatewayConfig:
        base = base or Path.cwd()

        def path(key: str) -> Path | None:
            v = raw.get(key)
            if v is None:
                return None
            q = Path(str(v)).expanduser()
            return q if q.is_absolute() else base / q

        cfg = cls()
        listen = str(raw.get("listen", f"{cfg.host}:{cfg.port}"))
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{source}: listen: expected HOST:PORT, got {listen!r}")
        cfg.host, cfg.port = host.strip("[]"), int(port)
        ups = raw.get("upstreams") or {}
        if not isinstance(ups, dict):
            raise ConfigError(f"{source}: upstreams: expected a mapping")
        cfg.upstream_openai = str(ups.get("openai", cfg.upstream_openai)).rstrip("/")
        cfg.upstream_anthropic = str(ups.get("anthropic", cfg.upstream_openai)).rstrip("/")
        cfg.upstream_api_key = raw.get("upstream_api_key")
        keys = raw.get("keys") or {}
        if not isinstance(keys, dict):
            raise ConfigError(f"{source}: keys: expected a mapping of key -> account_id")
        cfg.keys = {str(k): str(v) for k, v in keys.items()}
        kf = path("keys_file")
        if kf is not None:
            cfg.keys.update(read_keys_file(kf))
        cfg.verdicts = path("verdicts")
        cfg.state = str(raw.get("state", "memory"))
        if cfg.state != "memory" and not cfg.state.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"{source}: state: expected 'memory' or a redis:// URL")
        cfg.events_out = path("events_out")
        cfg.mode = str(raw.get("mode", "enforce"))
        if cfg.mode not in ("enforce", "shadow"):
            raise ConfigError(f"{source}: mode: expected 'enforce' or 'shadow'")
        cfg.detection = path("detection")
        cfg.on_state_error = str(raw.get("on_state_error", "open"))
        if cfg.on_state_error not in ("open", "closed"):
            raise ConfigError(f"{source}: on_state_error: expected 'open' or 'closed'")
        for key in ("max_body_bytes", "degrade_max_tokens", "events_rotate_bytes"):
            if key in raw:
                v = raw[key]
                if not isinstance(v, int) or v <= 0:
                    raise ConfigError(f"{source}: {key}: expected a positive integer")
                setattr(cfg, key, v)
        cfg.redis_prefix = str(raw.get("redis_prefix", cfg.redis_prefix))
        cfg.upstream_timeout_s = float(raw.get("upstream_timeout_s", cfg.upstream_timeout_s))
        cfg.keys_from_redis = bool(raw.get("keys_from_redis", False))
        if cfg.keys_from_redis and cfg.state == "memory":
            raise ConfigError(f"{source}: keys_from_redis needs state: redis://...")
        return cfg


def read_keys_file(path: Path) -> dict[str, str]:
    """JSONL lines ``{"key": ..., "account_id": ...}`` -> mapping."""
    out: dict[str, str] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError as e:
        raise ConfigError(f"{path}: {e}") from e
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            out[str(obj["key"])] = str(obj["account_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}:{i}: expected {{key, account_id}}: {e}") from e
    return out
