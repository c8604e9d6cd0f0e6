"""End-to-end detect on simulated traffic: contract output, causality, quality floor."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import polars as pl
import pytest

from distillwatch.bench.runner import run_scenario
from distillwatch.engine.detect import detect
from distillwatch.sim import simulate

ACTIONS = ("allow", "review", "challenge", "degrade", "block")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sim")
    simulate("demo", d, seed=3, fmt="jsonl", days=2)
    return d


@pytest.fixture(scope="module")
def verdicts(sim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    detect(sim_dir / "events", out, sim_dir / "accounts.jsonl")
    return out


def _lines(p: Path) -> list[dict]:  # type: ignore[type-arg]
    return [orjson.loads(x) for x in p.read_bytes().splitlines() if x.strip()]


def test_verdicts_follow_the_contract(sim_dir: Path, verdicts: Path) -> None:
    recs = _lines(verdicts / "accounts.jsonl")
    seen = {
        orjson.loads(line)["account_id"]
        for p in (sim_dir / "events").glob("*.jsonl")
        for line in p.read_bytes().splitlines()
    }
    accounts = {r["account_id"] for r in recs if r["end_user_id"] is None}
    assert accounts == seen
    for r in recs:
        assert 0.0 <= r["risk"] <= 1.0 and r["action"] in ACTIONS
        assert isinstance(r["reasons"], list)
        if ACTIONS.index(r["action"]) >= 2 and r["first_enforce_ts"]:
            assert r["first_review_ts"] is not None
            assert r["first_review_ts"] <= r["first_enforce_ts"]
        for reason in r["reasons"]:
            assert set(reason) >= {"signal", "value", "detail"}
    summary = json.loads((verdicts / "summary.json").read_text())
    assert summary["read"] == summary["accepted"] + summary["rejected"]


def test_bad_lines_are_counted_not_lost(sim_dir: Path, tmp_path: Path) -> None:
    src = next((sim_dir / "events").glob("*.jsonl"))
    good = src.read_bytes().splitlines()[:300]
    bad = [
        b"not json",
        b'{"ts": "yesterday", "account_id": "a", "request": {"messages": []}}',
        b'{"account_id": "a"}',
        b"\xff\xfe",
    ]
    events = tmp_path / "ev.jsonl"
    events.write_bytes(b"\n".join(good[:100] + bad + good[100:]) + b"\n")
    s = detect(events, tmp_path / "out", link=False)
    assert (s.read, s.accepted, s.rejected) == (304, 300, 4)
    rejects = _lines(tmp_path / "out" / "rejects.jsonl")
    assert [r["line"] for r in rejects] == [101, 102, 103, 104]
    assert all(r["source"].endswith("ev.jsonl") and r["reason"] for r in rejects)


def test_replay_is_causal(sim_dir: Path, verdicts: Path, tmp_path: Path) -> None:
    """Decisions made before time T do not change when events after T are removed."""
    events = pl.concat(
        [
            pl.read_ndjson(p, infer_schema_length=None)
            for p in sorted((sim_dir / "events").glob("*.jsonl"))
        ],
        how="diagonal_relaxed",
    )
    ts = events["ts"].str.to_datetime(time_zone="UTC")
    cut = ts.min() + (ts.max() - ts.min()) * 0.5  # type: ignore[operator]
    part = tmp_path / "first-half.jsonl"
    with open(part, "wb") as fh:
        src_lines = b"".join(p.read_bytes() for p in sorted((sim_dir / "events").glob("*.jsonl")))
        for line in src_lines.splitlines():
            ev = orjson.loads(line)
            if pl.Series([ev["ts"]]).str.to_datetime(time_zone="UTC")[0] <= cut:
                fh.write(line + b"\n")
    detect(part, tmp_path / "half", sim_dir / "accounts.jsonl")
    full = {(r["account_id"], r["end_user_id"]): r for r in _lines(verdicts / "accounts.jsonl")}
    half = {
        (r["account_id"], r["end_user_id"]): r for r in _lines(tmp_path / "half" / "accounts.jsonl")
    }
    cut_s = cut.strftime("%Y-%m-%dT%H:%M:%S")
    checked = 0
    for key, r in full.items():
        for field in ("first_review_ts", "first_enforce_ts"):
            if r[field] is not None and r[field][:19] < cut_s[:19]:
                assert half[key][field] == r[field], (key, field)
                checked += 1
    assert checked > 5


def test_quality_floor_on_demo(sim_dir: Path, verdicts: Path) -> None:
    rows = run_scenario(sim_dir, verdicts, baselines=False)
    ours = rows[0]
    assert ours.attack_recall >= 0.8
    assert ours.benign_enforced_rate <= 0.01


def test_detect_is_deterministic(sim_dir: Path, verdicts: Path, tmp_path: Path) -> None:
    """Same input, same settings: byte-identical verdict files (analysts diff runs)."""
    detect(sim_dir / "events", tmp_path / "again", sim_dir / "accounts.jsonl")
    for name in ("accounts.jsonl", "campaigns.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (verdicts / name).read_bytes(), name


def test_streamed_replay_equals_replay_from_store(
    sim_dir: Path, verdicts: Path, tmp_path: Path
) -> None:
    """Time-ordered input is replayed while features are computed; same verdicts as after ingest."""
    streamed = json.loads((verdicts / "summary.json").read_text())
    assert streamed["streamed"] is True
    s = detect(sim_dir / "events", tmp_path / "store", sim_dir / "accounts.jsonl", stream=False)
    assert s.streamed is False
    for name in ("accounts.jsonl", "campaigns.jsonl"):
        assert (tmp_path / "store" / name).read_bytes() == (verdicts / name).read_bytes(), name


@pytest.mark.parametrize("workers", [1, 2])
def test_unordered_input_falls_back_to_the_store(
    sim_dir: Path, verdicts: Path, tmp_path: Path, workers: int
) -> None:
    """Files in reverse time order: streaming notices and replays from the store; same verdicts.

    With two workers the store's parts are written by the worker processes."""
    files = sorted((sim_dir / "events").iterdir())
    assert len(files) >= 2
    rev = tmp_path / "events"
    rev.mkdir()
    for i, f in enumerate(reversed(files)):
        (rev / f"{i:03d}-{f.name}").write_bytes(f.read_bytes())
    s = detect(rev, tmp_path / "out", sim_dir / "accounts.jsonl", workers=workers)
    assert s.streamed is False
    for name in ("accounts.jsonl", "campaigns.jsonl"):
        assert (tmp_path / "out" / name).read_bytes() == (verdicts / name).read_bytes(), name
    assert not (tmp_path / "out" / "features").exists()  # scratch parts removed


def test_parquet_row_groups_read_in_workers_lose_nothing(tmp_path: Path) -> None:
    """Parquet parts are read and normalised in the feature workers: same counts,
    same rejects (source, row, reason, excerpt) and same verdicts as in-process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sim = tmp_path / "sim"
    simulate("demo", sim, scale=0.3, seed=5, fmt="parquet", days=1, chunk_rows=4_000)
    bad = pa.table(
        {
            "ts": ["2026-03-01T00:00:00Z", "not a time", "2026-03-01T00:00:01Z"],
            "account_id": [None, "acct_x", "acct_y"],
            "request": [{"messages": [{"role": "user", "content": "hi"}]}] * 3,
        }
    )
    pq.write_table(bad, sim / "events" / "zz-bad.parquet", row_group_size=2)
    runs = {}
    for w in (1, 2):
        out = tmp_path / f"w{w}"
        runs[w] = (detect(sim / "events", out, sim / "accounts.jsonl", workers=w), out)
    s1, o1 = runs[1]
    s2, o2 = runs[2]
    assert (s1.read, s1.accepted, s1.rejected) == (s2.read, s2.accepted, s2.rejected)
    assert s1.read == s1.accepted + s1.rejected and s1.rejected == 2
    rej = _lines(o2 / "rejects.jsonl")
    assert [(r["line"], r["source"].endswith("zz-bad.parquet")) for r in rej] == [
        (1, True),
        (2, True),
    ]
    assert "account_id" in rej[0]["reason"] and "time" in rej[1]["reason"]
    for name in ("rejects.jsonl", "accounts.jsonl", "campaigns.jsonl"):
        assert (o1 / name).read_bytes() == (o2 / name).read_bytes(), name


def _polars_threads() -> int:
    return pl.thread_pool_size()


def test_feature_workers_run_one_polars_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """Feature workers are spawned with one Polars thread (one worker per core
    already); a user's own POLARS_MAX_THREADS is left as it is, and the
    setting does not leak into this process's environment."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from distillwatch.engine.detect import WORKER_THREADS_ENV, _worker_env

    monkeypatch.delenv(WORKER_THREADS_ENV, raising=False)
    ctx = multiprocessing.get_context("spawn")
    for preset, expected in ((None, 1), ("2", 2)):
        if preset is not None:
            monkeypatch.setenv(WORKER_THREADS_ENV, preset)
        with _worker_env(), ProcessPoolExecutor(1, mp_context=ctx) as pool:
            assert pool.submit(_polars_threads).result() == expected
        assert os.environ.get(WORKER_THREADS_ENV) == preset
