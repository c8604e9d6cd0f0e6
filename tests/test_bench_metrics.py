"""Scorecard definitions on hand-made labels and verdicts (bench.metrics)."""

from __future__ import annotations

import polars as pl
import pytest

from distillwatch.bench.metrics import evaluate

LABELS = pl.DataFrame(
    {
        "account_id": ["a1", "a2", "a3", "r1", "r1", "b1"],
        "end_user_id": [None, None, None, "u1", "u2", None],
        "archetype": ["hydra", "hydra", "hydra", "reseller_attacker", "reseller_attacker", "dev"],
        "is_attack": [True, True, True, True, True, False],
        "campaign_id": ["c1", "c1", "c1", "c2", "c2", None],
    },
    schema_overrides={"end_user_id": pl.String, "campaign_id": pl.String},
)


def verdicts(rows: list[tuple[str, str | None, int]]) -> pl.DataFrame:
    """(account, end user, rank) -> the columns evaluate() reads."""
    return pl.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "end_user_id": [r[1] for r in rows],
            "rank": [r[2] for r in rows],
            "review_ms": [0 if r[2] >= 1 else None for r in rows],
            "enforce_ms": [0 if r[2] >= 2 else None for r in rows],
        },
        schema={
            "account_id": pl.String,
            "end_user_id": pl.String,
            "rank": pl.Int8,
            "review_ms": pl.Int64,
            "enforce_ms": pl.Int64,
        },
    )


def requests(rows: list[tuple[str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "end_user_id": [r[1] for r in rows],
            "ts_ms": [10] * len(rows),
        },
        schema={"account_id": pl.String, "end_user_id": pl.String, "ts_ms": pl.Int64},
    )


def test_recall_counts_only_principals_that_sent_traffic() -> None:
    # a3 and r1/u2 never sent a request: dormant, reported, not in recall
    req = requests([("a1", None), ("a2", "x"), ("r1", "u1")])
    v = verdicts([("a1", None, 3), ("a2", None, 0), ("r1", None, 1), ("r1", "u1", 4)])
    m = evaluate("t", LABELS, v, req)
    assert m.attack_principals == 5
    assert m.dormant_attack_principals == 2
    assert m.attack_recall == pytest.approx(2 / 3)  # a1, r1/u1 of a1, a2, r1/u1
    assert m.campaigns == 2
    assert m.campaigns_detected == 2  # c1: 1 of 2 active; c2: 1 of 1


def test_a_missed_active_principal_lowers_recall() -> None:
    req = requests([("a1", None), ("a2", None), ("a3", None), ("r1", "u1"), ("r1", "u2")])
    v = verdicts([("a1", None, 3), ("r1", "u1", 4), ("r1", "u2", 4)])
    m = evaluate("t", LABELS, v, req)
    assert m.dormant_attack_principals == 0
    assert m.attack_recall == pytest.approx(3 / 5)
    assert m.campaigns_detected == 1  # c1: 1 of 3 reviewed
    assert m.leakage == pytest.approx(2 / 5)  # a2 and a3 never enforced
