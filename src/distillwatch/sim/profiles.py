"""Archetype catalogue: how each kind of principal behaves.

A :class:`Profile` fixes an archetype's volume (requests per principal per
day), timing (see :mod:`timing`), infrastructure (see :mod:`infra`), text
style (see :mod:`styles`) and request parameters. Numbers follow what the
public distillation reports and ordinary API usage suggest; ranges are the
ones the tests check (``rate`` lo/hi).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Params:
    """Request parameter distribution of an archetype."""

    temperature: tuple[float | None, ...] = (None, 0.7, 1.0)
    max_tokens: tuple[int | None, ...] = (None, 1024, 4096)
    p_stream: float = 0.5
    p_logprobs: float = 0.0
    p_n_multi: float = 0.0
    reasoning: tuple[str | None, ...] = (None,)
    reasoning_p: tuple[float, ...] = (1.0,)
    tools: tuple[int, int] = (0, 0)
    p_seed: float = 0.0
    out_median: float = 350.0
    out_sigma: float = 0.8
    p_tool_call: float = 0.0


@dataclass(frozen=True)
class Profile:
    """Behaviour of one archetype (legitimate or attack)."""

    archetype: str
    style: str
    is_attack: bool
    tactic: str
    rate: tuple[float, float, float, float]  # median, sigma (lognormal), lo, hi requests/day
    p_active: float
    timing: str
    session_len: float
    gap_s: float
    ip_mode: str
    ua_kind: str
    params: Params = field(default_factory=Params)
    paraphrase_rate: float = 0.0
    model_switch: bool = False  # adopts a newly released model within a day
    weekend_factor: float = 1.0


CHAT_P = Params()
DEV_P = Params(temperature=(None, 0.2, 0.0), max_tokens=(None, 2048, 4096), out_median=500)
AGENT_P = Params(
    temperature=(None, 0.0, 1.0),
    max_tokens=(8192, 16384, 32000),
    p_stream=0.95,
    reasoning=(None, "medium", "high"),
    reasoning_p=(0.3, 0.4, 0.3),
    tools=(8, 24),
    out_median=600,
    p_tool_call=0.7,
)
BATCH_P = Params(
    temperature=(0.0,), max_tokens=(16, 64, 256), p_stream=0.0, out_median=12, out_sigma=0.6
)
EVAL_P = Params(
    temperature=(0.0,),
    max_tokens=(512, 1024, 2048),
    p_stream=0.0,
    p_logprobs=0.2,
    p_seed=0.5,
    out_median=300,
)
RAG_P = Params(temperature=(0.2, 0.3), max_tokens=(512, 800), p_stream=0.8, out_median=220)
RESEARCH_P = Params(
    max_tokens=(4096, 16384),
    reasoning=(None, "high"),
    reasoning_p=(0.5, 0.5),
    p_logprobs=0.1,
    p_n_multi=0.1,
    out_median=900,
)
HARVEST_P = Params(
    temperature=(0.7, 1.0),
    max_tokens=(4096, 8192),
    p_stream=0.1,
    reasoning=(None, "high"),
    reasoning_p=(0.4, 0.6),
    out_median=900,
)
COT_P = Params(
    temperature=(0.7, 1.0),
    max_tokens=(8192, 16384),
    p_stream=0.0,
    reasoning=("high", None),
    reasoning_p=(0.7, 0.3),
    out_median=1400,
)
RUBRIC_P = Params(
    temperature=(0.0, 0.2), max_tokens=(1024, 2048), p_stream=0.0, p_logprobs=0.3, out_median=300
)
DATAGEN_P = Params(
    temperature=(0.7, 0.9, 1.0), max_tokens=(2048, 4096), p_stream=0.0, out_median=900
)
SWEEP_P = Params(
    temperature=(0.0, 1.0),
    max_tokens=(16384, 32000),
    p_stream=0.0,
    p_logprobs=0.25,
    p_n_multi=0.2,
    reasoning=("high",),
    reasoning_p=(1.0,),
    tools=(4, 32),
    out_median=1500,
    p_tool_call=0.4,
)

P = Profile
PROFILES: dict[str, Profile] = {
    # --- legitimate ---
    "casual": P(
        "casual",
        "casual",
        False,
        "none",
        (4, 1.0, 1, 60),
        0.35,
        "waking",
        4,
        70,
        "residential",
        "browser",
        CHAT_P,
    ),
    "casual_mobile": P(
        "casual_mobile",
        "casual",
        False,
        "none",
        (3, 1.0, 1, 40),
        0.3,
        "waking",
        3,
        60,
        "mobile",
        "browser",
        CHAT_P,
    ),
    "developer": P(
        "developer",
        "developer",
        False,
        "none",
        (25, 0.8, 2, 300),
        0.75,
        "work",
        6,
        90,
        "corp",
        "sdk",
        DEV_P,
        weekend_factor=0.2,
    ),
    "agent_power": P(
        "agent_power",
        "agent",
        False,
        "none",
        (900, 0.6, 100, 6000),
        0.9,
        "work",
        40,
        8,
        "vpn",
        "agent",
        AGENT_P,
        weekend_factor=0.5,
    ),
    "enterprise_batch": P(
        "enterprise_batch",
        "enterprise",
        False,
        "none",
        (20000, 0.5, 2000, 150000),
        1.0,
        "flat",
        2000,
        0.2,
        "corp",
        "batch",
        BATCH_P,
    ),
    "eval_harness": P(
        "eval_harness",
        "eval",
        False,
        "none",
        (1500, 0.7, 100, 20000),
        0.4,
        "work",
        500,
        0.5,
        "corp",
        "eval",
        EVAL_P,
    ),
    "rag_backend": P(
        "rag_backend",
        "rag",
        False,
        "none",
        (3000, 0.6, 200, 40000),
        1.0,
        "waking",
        1,
        1,
        "datacenter",
        "sdk",
        RAG_P,
    ),
    "reseller_customer": P(
        "reseller_customer",
        "casual",
        False,
        "none",
        (12, 1.0, 1, 200),
        0.6,
        "waking",
        4,
        60,
        "datacenter",
        "sdk",
        CHAT_P,
    ),
    "researcher": P(
        "researcher",
        "researcher",
        False,
        "none",
        (60, 0.9, 2, 800),
        0.6,
        "work",
        10,
        40,
        "corp",
        "sdk",
        RESEARCH_P,
        weekend_factor=0.3,
    ),
    # --- attacks ---
    "bulk_harvester": P(
        "bulk_harvester",
        "harvest",
        True,
        "bulk_harvest",
        (40000, 0.3, 5000, 120000),
        1.0,
        "flat",
        400,
        0.6,
        "datacenter",
        "scraper",
        HARVEST_P,
    ),
    "hydra": P(
        "hydra",
        "hydra",
        True,
        "hydra_cluster",
        (30, 0.5, 5, 100),
        0.9,
        "work",
        6,
        25,
        "datacenter",
        "scraper",
        HARVEST_P,
    ),
    "cot_coercion": P(
        "cot_coercion",
        "cot_coercion",
        True,
        "cot_coercion",
        (40, 0.5, 5, 100),
        0.9,
        "flat",
        5,
        30,
        "datacenter",
        "sdk",
        COT_P,
    ),
    "rubric": P(
        "rubric",
        "rubric",
        True,
        "rubric_grading",
        (40, 0.5, 5, 100),
        0.9,
        "flat",
        8,
        15,
        "datacenter",
        "sdk",
        RUBRIC_P,
    ),
    "datagen": P(
        "datagen",
        "datagen",
        True,
        "synthetic_data",
        (40, 0.5, 5, 100),
        0.9,
        "flat",
        8,
        15,
        "datacenter",
        "sdk",
        DATAGEN_P,
    ),
    "sweep": P(
        "sweep",
        "sweep",
        True,
        "capability_sweep",
        (60, 0.5, 10, 200),
        0.9,
        "work",
        10,
        20,
        "datacenter",
        "sdk",
        SWEEP_P,
    ),
    "reseller_attacker": P(
        "reseller_attacker",
        "cot_coercion",
        True,
        "reseller_mixed",
        (80, 0.4, 20, 200),
        0.95,
        "flat",
        5,
        20,
        "datacenter",
        "sdk",
        COT_P,
    ),
    "evasive": P(
        "evasive",
        "hydra",
        True,
        "evasive",
        (20, 0.6, 5, 80),
        0.7,
        "random",
        1,
        0,
        "rotating",
        "sdk",
        HARVEST_P,
        paraphrase_rate=0.6,
        model_switch=True,
    ),
}


def variant(name: str, **changes: object) -> Profile:
    """A copy of a catalogue profile with some knobs changed (held-out variants)."""
    return replace(PROFILES[name], **changes)  # type: ignore[arg-type]
