"""`distillwatch bench --quick` runs end to end and writes its table, JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path

from distillwatch.bench.runner import run_bench


def test_quick_bench_writes_results_and_beats_rate_limit(tmp_path: Path) -> None:
    results = run_bench(tmp_path, quick=True)
    assert (tmp_path / "quality.md").read_text().count("| distillwatch |") == 2
    assert json.loads((tmp_path / "quality.json").read_text()) == results
    assert (tmp_path / "quality.png").stat().st_size > 10_000
    by = {(r["scenario"], r["name"]): r for r in results}
    for scenario in ("demo", "mixed"):
        ours, rl = by[(scenario, "distillwatch")], by[(scenario, "rate limit")]
        assert ours["attack_recall"] > rl["attack_recall"]
        assert ours["benign_enforced"] <= rl["benign_enforced"]
