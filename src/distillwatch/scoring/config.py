"""Detection settings: loaded from YAML, validated, with file-and-key errors.

The packaged ``config/default.yaml`` is the documented default; a user file
passed with ``--config`` overrides any subset of it (deep merge).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distillwatch.ingest.schema import TIERS

ACTIONS = ("allow", "review", "challenge", "degrade", "block")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names file and key."""


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_duration(text: str | int | float) -> int:
    """'10m', '1h', '30s', '2d' or seconds -> milliseconds."""
    if isinstance(text, int | float):
        return int(text * 1000)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(text))
    if not m:
        raise ConfigError(f"cannot parse duration {text!r} (use e.g. 10m, 1h, 30s)")
    unit = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2) or "s"]
    return int(float(m.group(1)) * unit)


@dataclass(frozen=True)
class Settings:
    """Validated detection settings."""

    weights: dict[str, dict[str, float]]
    risk: dict[str, float]
    thresholds: dict[str, float]
    min_requests_enforce: int
    campaign_enforce: bool
    window_ms: int
    score_every: int
    lateness_ms: int
    min_end_users: int
    source: str
    # campaign-linking settings, parsed and checked (see _linking: durations as
    # int ms, counts as int); the linker turns them into its LinkParams
    linking: dict[str, float] = field(default_factory=dict)
    # trusted customers: capped at review on their own traffic (scoring.risk)
    trusted_tiers: tuple[str, ...] = ()
    trusted_min_age_ms: int = 0
    # established customers: the same hold for verified, aged accounts on these
    # tiers that also keep to at most established_max_prefixes networks
    established_tiers: tuple[str, ...] = ()
    established_max_prefixes: int = 0
    established_max_daily: int = 0
    established_max_daily_tokens: int = 0
    # a verified member's risk is at most the larger of its own and its
    # campaign's (scoring.risk: proportion for accountable identities)
    verified_campaign_cap: bool = False
    # individuals: held at review on their own traffic when at most
    # individual_max_daily requests on the busiest day (0: off), on at most
    # individual_max_prefixes networks, evasion below individual_max_evasion,
    # at most individual_max_daily_tokens output tokens per active day
    individual_max_daily: int = 0
    individual_max_prefixes: int = 0
    individual_max_evasion: float = 0.0
    individual_max_daily_tokens: int = 0

    @classmethod
    def load(cls, path: Path | str | None = None, **overrides: Any) -> Settings:
        text = resources.files("distillwatch").joinpath("config/default.yaml").read_text()
        raw: dict[str, Any] = yaml.safe_load(text)
        source = "default.yaml"
        if path is not None:
            p = Path(path)
            try:
                user = yaml.safe_load(p.read_text()) or {}
            except (OSError, yaml.YAMLError) as e:
                raise ConfigError(f"{p}: {e}") from e
            if not isinstance(user, dict):
                raise ConfigError(f"{p}: top level must be a mapping")
            raw = _merge(raw, user)
            source = str(p)
        raw = _merge(raw, overrides)
        return cls.from_dict(raw, source)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> Settings:
        from distillwatch.signals import ALL_SIGNALS

        known = {s.name: s.group for s in ALL_SIGNALS}
        weights: dict[str, dict[str, float]] = {}
        for group, sigs in raw.get("signals", {}).items():
            if group not in ("harvest", "automation", "identity"):
                raise ConfigError(f"{source}: signals.{group}: unknown group")
            for name, w in (sigs or {}).items():
                if name not in known:
                    raise ConfigError(f"{source}: signals.{group}.{name}: unknown signal")
                if known[name] != group:
                    raise ConfigError(f"{source}: signals.{group}.{name}: belongs to {known[name]}")
                if not isinstance(w, int | float) or not 0 <= w <= 1:
                    raise ConfigError(f"{source}: signals.{group}.{name}: weight must be in [0, 1]")
                weights.setdefault(group, {})[name] = float(w)
        acts = raw["actions"]
        thresholds = {a: float(acts[a]) for a in ACTIONS[1:]}
        vals = [thresholds[a] for a in ACTIONS[1:]]
        if vals != sorted(vals) or not all(0 < x <= 1 for x in vals):
            raise ConfigError(f"{source}: actions: thresholds must be ascending within (0, 1]")
        return cls(
            weights=weights,
            risk={k: float(v) for k, v in raw["risk"].items()},
            thresholds=thresholds,
            min_requests_enforce=int(acts.get("min_requests_enforce", 40)),
            campaign_enforce=bool(acts.get("campaign_enforce", True)),
            window_ms=parse_duration(raw["replay"]["window"]),
            score_every=int(raw["replay"].get("score_every", 1)),
            lateness_ms=parse_duration(raw["replay"].get("lateness", "10m")),
            min_end_users=int(raw.get("subaccounts", {}).get("min_end_users", 20)),
            source=source,
            linking=_linking(raw.get("linking") or {}, source),
            trusted_tiers=_tiers(acts.get("trusted_tiers") or [], source, "trusted_tiers"),
            trusted_min_age_ms=parse_duration(acts.get("trusted_min_age", 0)),
            established_tiers=_tiers(
                acts.get("established_tiers") or [], source, "established_tiers"
            ),
            established_max_prefixes=_count(
                acts.get("established_max_prefixes", 0), source, "established_max_prefixes"
            ),
            established_max_daily=_count(
                acts.get("established_max_daily", 0), source, "established_max_daily"
            ),
            established_max_daily_tokens=_count(
                acts.get("established_max_daily_tokens", 0),
                source,
                "established_max_daily_tokens",
            ),
            verified_campaign_cap=bool(acts.get("verified_campaign_cap", False)),
            individual_max_daily=_count(
                acts.get("individual_max_daily", 0), source, "individual_max_daily"
            ),
            individual_max_prefixes=_count(
                acts.get("individual_max_prefixes", 0), source, "individual_max_prefixes"
            ),
            individual_max_daily_tokens=_count(
                acts.get("individual_max_daily_tokens", 0), source, "individual_max_daily_tokens"
            ),
            individual_max_evasion=_unit(
                acts.get("individual_max_evasion", 0.0), source, "individual_max_evasion"
            ),
        )


def _unit(raw: Any, source: str, key: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 1:
        raise ConfigError(f"{source}: actions.{key}: must be a number in [0, 1], got {raw!r}")
    return float(raw)


def _tiers(raw: Any, source: str, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise ConfigError(f"{source}: actions.{key}: must be a list of tier names")
    bad = [t for t in raw if t not in TIERS]
    if bad:
        raise ConfigError(
            f"{source}: actions.{key}: unknown tier {bad[0]!r} (one of {', '.join(TIERS)})"
        )
    return tuple(raw)


def _count(raw: Any, source: str, key: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ConfigError(f"{source}: actions.{key}: must be a whole number >= 0, got {raw!r}")
    return raw


# linking.<key>: kind of value (durations become milliseconds)
LINKING_KEYS = {
    "sync": "duration",
    "signup_bucket": "duration",
    "min_members": "int",
    "growth": "float",
    "rebuild_every": "duration",
    "max_rebuild_gap": "duration",
    "rescore_every": "duration",
    "max_keys_per_kind": "int",
    "catch_up_rounds": "int",
    "verdict_hold": "duration",
    "band": "int",
    "min_weight": "float",
    "max_df": "int",
    "resolution": "float",
    "weak_edge": "float",
    "suspect_rebuild": "int",
    "profile_weight": "float",
    "profile_llr_lo": "float",
    "profile_llr_hi": "float",
    "cohort_window": "duration",
    "cohort_warmup": "duration",
    "cohort_min_share": "float",
    "cohort_min_keys": "int",
    "cohort_join_weight": "float",
    "reseller_group_max_share": "float",
}


def _linking(raw: dict[str, Any], source: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: linking: must be a mapping")
    out: dict[str, float] = {}
    for key, value in raw.items():
        kind = LINKING_KEYS.get(key)
        if kind is None:
            raise ConfigError(
                f"{source}: linking.{key}: unknown setting ({', '.join(LINKING_KEYS)})"
            )
        try:
            if kind == "duration":
                out[key] = parse_duration(value)  # int milliseconds
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"not a number: {value!r}")
            else:
                out[key] = int(value) if kind == "int" else float(value)
        except ConfigError as e:
            raise ConfigError(f"{source}: linking.{key}: {e}") from e
        if out[key] < 0:
            raise ConfigError(f"{source}: linking.{key}: must not be negative")
    return out
