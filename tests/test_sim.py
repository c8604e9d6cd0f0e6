"""Simulator: determinism, labels, contract shape, volume and timing statistics.

Runs on the shipped prompt sample (``data_dir`` points nowhere), so it needs
no ../shared data, and at small scales to stay fast.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from distillwatch.sim import HELD_OUT_SEEDS, SCENARIOS, simulate
from distillwatch.sim.infra import tz_of
from distillwatch.sim.scenarios import START_MS

NO_DATA = Path("/nonexistent-distillwatch-data")


def run(
    tmp: Path, scenario: str, seed: int = 0, scale: float = 0.2, days: int = 2, fmt: str = "parquet"
) -> Path:
    out = tmp / f"{scenario}-{seed}-{fmt}"
    simulate(scenario, out, scale=scale, seed=seed, fmt=fmt, data_dir=NO_DATA, days=days)  # type: ignore[arg-type]
    return out


def events(out: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted((out / "events").glob("*.parquet"))])


def labels(out: Path) -> pl.DataFrame:
    return pl.read_ndjson(
        out / "labels_accounts.jsonl",
        schema_overrides={"end_user_id": pl.String, "campaign_id": pl.String},
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("sim"), "demo", scale=0.5, days=3)


def test_deterministic_under_seed(tmp_path: Path) -> None:
    a = events(run(tmp_path / "a", "demo", seed=3, scale=0.2, days=1))
    b = events(run(tmp_path / "b", "demo", seed=3, scale=0.2, days=1))
    c = events(run(tmp_path / "c", "demo", seed=4, scale=0.2, days=1))
    assert a.equals(b)
    assert not a.select("account_id", "ts").equals(c.select("account_id", "ts"))


def test_contract_shape(demo: Path) -> None:
    ev = events(demo)
    assert ev.height > 5_000
    assert ev["id"].n_unique() == ev.height
    assert ev["account_id"].null_count() == 0
    ts = ev["ts"].str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC")
    assert ts.null_count() == 0
    msgs = ev.select(pl.col("request").struct.field("messages")).to_series()
    assert (msgs.list.len() >= 1).all()
    last_role = msgs.list.last().struct.field("role")
    assert (last_role == "user").all()
    roles = set(msgs.explode().struct.field("role").unique().to_list())
    assert (
        roles <= {"system", "user", "assistant", "tool"}
        and "assistant" in roles
        and "tool" in roles
    )
    # Anthropic-shaped requests carry the system prompt at top level, never as a message
    anth = ev.filter(pl.col("endpoint") == "messages")
    assert anth.height > 0
    assert (
        not anth.select(pl.col("request").struct.field("messages"))
        .to_series()
        .explode()
        .struct.field("role")
        .eq("system")
        .any()
    )
    resp = ev["response"].struct.unnest()
    assert resp.filter(pl.col("status") == 200)["text"].str.len_chars().min() > 0  # type: ignore[operator]
    params = ev["request"].struct.field("params").struct.unnest()
    with_reason = params["reasoning_effort"].is_not_null() & (resp["status"] == 200)
    assert resp.filter(with_reason)["reasoning"].null_count() == 0
    acc = [json.loads(x) for x in (demo / "accounts.jsonl").read_text().splitlines()]
    assert {
        "account_id",
        "created_at",
        "tier",
        "verified",
        "payment_fingerprint",
        "email_domain",
        "country",
        "reseller",
    } <= set(acc[0])
    assert all(datetime.fromisoformat(a["created_at"].replace("Z", "+00:00")) for a in acc)


def test_jsonl_format_same_shape(tmp_path: Path) -> None:
    out = run(tmp_path, "demo", scale=0.1, days=1, fmt="jsonl")
    lines = (out / "events").glob("*.jsonl")
    first = json.loads(next(iter(sorted(lines))).read_text().splitlines()[0])
    assert isinstance(first["ts"], str) and first["account_id"]
    assert first["request"]["messages"][-1]["role"] == "user"
    assert set(first["usage"]) == {"input_tokens", "output_tokens", "reasoning_tokens"}


def test_labels_consistent(demo: Path) -> None:
    ev = events(demo).select("id", "account_id", "end_user_id")
    lab = labels(demo)
    acc_lab = lab.filter(pl.col("end_user_id").is_null())
    eu_lab = lab.filter(pl.col("end_user_id").is_not_null())
    assert set(ev["account_id"].unique()) <= set(acc_lab["account_id"])
    assert set(ev["end_user_id"].drop_nulls().unique()) <= set(eu_lab["end_user_id"])
    req = pl.read_parquet(demo / "labels_requests.parquet")
    assert req.height == ev.height and req["id"].n_unique() == req.height
    j = ev.join(req, on="id").join(
        acc_lab.select("account_id", acc="is_attack"), on="account_id", how="left"
    )
    j = j.join(eu_lab.select("end_user_id", eu="is_attack"), on="end_user_id", how="left")
    expect = (
        pl.when(pl.col("end_user_id").is_not_null()).then(pl.col("eu")).otherwise(pl.col("acc"))
    )
    assert j.select((expect == pl.col("is_attack")).all()).item()
    # reseller: legitimate account line, attacker end users inside it
    res = lab.filter(pl.col("archetype") == "reseller")
    assert res.height >= 1 and not res["is_attack"].any()
    inside = eu_lab.filter(pl.col("account_id").is_in(res["account_id"].to_list()))
    assert inside["is_attack"].any() and not inside["is_attack"].all()
    # every attack line has a campaign, no benign line does
    assert lab.filter(pl.col("is_attack"))["campaign_id"].null_count() == 0
    assert (
        lab.filter(~pl.col("is_attack"))["campaign_id"].null_count()
        == lab.filter(~pl.col("is_attack")).height
    )


def test_benign_only_has_no_attacks(tmp_path: Path) -> None:
    out = run(tmp_path, "benign_only", scale=0.05, days=1)
    assert not labels(out)["is_attack"].any()
    assert not pl.read_parquet(out / "labels_requests.parquet")["is_attack"].any()


def test_hydra_volume_and_infrastructure(tmp_path: Path) -> None:
    out = run(tmp_path, "hydra", scale=0.3, days=3)
    lab = labels(out).filter(pl.col("archetype") == "hydra")
    ev = events(out).filter(pl.col("account_id").is_in(lab["account_id"].to_list()))
    per_day = ev.group_by("account_id", pl.col("ts").str.slice(0, 10)).len()["len"]
    assert per_day.min() >= 5 and per_day.max() <= 100  # type: ignore[operator]
    assert 15 <= per_day.median() <= 60  # type: ignore[operator]
    acc = pl.read_ndjson(out / "accounts.jsonl").join(lab, on="account_id")
    assert set(acc["tier"].unique()) <= {"startup_program", "education"}
    per_camp = acc.group_by("campaign_id").agg(pl.col("payment_fingerprint").n_unique(), pl.len())
    assert (per_camp["payment_fingerprint"] < per_camp["len"]).all()  # shared payment methods
    nets = ev.select(pl.col("ip").str.replace(r"\.\d+$", "")).n_unique()
    assert nets <= 12  # proxies concentrated in a few /24s


def test_casual_users_daytime(demo: Path) -> None:
    lab = labels(demo).filter(pl.col("archetype") == "casual")
    acc = pl.read_ndjson(demo / "accounts.jsonl").join(lab, on="account_id")
    ev = events(demo).join(acc.select("account_id", "country"), on="account_id")
    utc_h = ev["ts"].str.slice(11, 2).cast(pl.Int64).to_numpy()
    local = np.mod(utc_h + tz_of(ev["country"].to_numpy()), 24)
    assert ev.height > 100
    assert np.mean((local >= 7) & (local < 24)) >= 0.85


def test_evasive_switches_to_new_model(tmp_path: Path) -> None:
    out = run(tmp_path, "evasive", scale=0.2, days=10)
    lab = labels(out)
    ev = events(out).join(lab.select("account_id", "archetype"), on="account_id")
    release = START_MS + int(SCENARIOS["evasive"].release_day * 10 * 86_400_000)
    t = ev["ts"].str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC").dt.epoch("ms")
    ev = ev.with_columns(t.alias("ms"))
    late = ev.filter(pl.col("ms") > release + 86_400_000)
    ev_share = late.filter(pl.col("archetype") == "evasive")["model"].eq("frontier-2").mean()
    ben_share = late.filter(pl.col("archetype") == "casual")["model"].eq("frontier-2").mean()
    assert ev_share == 1.0 and ben_share is not None and ben_share < 0.5  # type: ignore[operator]
    eva = ev.filter(pl.col("archetype") == "evasive")
    assert eva["ip"].str.replace(r"\.\d+$", "").n_unique() > 0.9 * eva.height  # no shared /24
    first_ms = int(eva["ms"].to_numpy().min())
    assert first_ms >= START_MS + 2 * 86_400_000  # aged accounts wake up mid-window


def test_labels_parquet_schema(demo: Path) -> None:
    sch = pq.read_schema(demo / "labels_requests.parquet")
    assert sch.names == ["id", "is_attack"]


def test_scenarios_and_held_out_documented() -> None:
    needed = {
        "demo",
        "hydra",
        "cot_rubric",
        "bulk",
        "reseller_mixed",
        "evasive",
        "benign_only",
        "mixed",
        "public_case",
    }
    assert needed <= set(SCENARIOS)
    assert all(s.description for s in SCENARIOS.values())
    assert len(HELD_OUT_SEEDS) >= 3 and "evasive_heldout" in SCENARIOS
