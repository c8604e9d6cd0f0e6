"""The command line, driven as a user would (Typer's runner, real files)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from distillwatch.cli import app

runner = CliRunner()
FIX = Path(__file__).parent / "fixtures" / "ingest"


def test_validate_reports_counts_and_writes_rejects(tmp_path: Path) -> None:
    src = next(p for p in sorted(FIX.glob("*.jsonl")) if "bad" in p.name or "mixed" in p.name)
    rej = tmp_path / "rej.jsonl"
    res = runner.invoke(app, ["validate", str(src), "--rejects", str(rej)])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("read "))
    n, a, r = (int(t.strip(",")) for t in line.split()[1::2])
    assert n == a + r and r > 0
    assert len(rej.read_text().splitlines()) == r


def test_simulate_then_detect(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    res = runner.invoke(
        app, ["simulate", "--scenario", "demo", "--out", str(sim), "--days", "1", "--scale", "0.5"]
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "detect",
            str(sim / "events"),
            "--accounts",
            str(sim / "accounts.jsonl"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "rejected 0" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accounts"] > 0
    assert (out / "campaigns.jsonl").exists()


def test_unknown_engine_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["detect", str(tmp_path), "--out", str(tmp_path / "o"), "--engine", "flink"]
    )
    assert res.exit_code != 0
    assert "unknown engine" in res.output
