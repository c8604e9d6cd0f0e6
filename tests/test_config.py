"""Settings files: defaults documented in default.yaml, errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillwatch.linking.linker import LinkParams, link_params
from distillwatch.scoring.config import ConfigError, Settings


def test_packaged_linking_section_matches_the_code_defaults() -> None:
    assert link_params(Settings.load()) == LinkParams()


def test_user_file_overrides_linking_settings(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("linking:\n  rebuild_every: 10m\n  min_members: 5\n  resolution: 0.5\n")
    p = link_params(Settings.load(f))
    assert p.rebuild_every_ms == 600_000 and p.min_members == 5
    assert isinstance(p.rebuild_every_ms, int) and isinstance(p.min_members, int)
    assert p.graph.resolution == 0.5 and p.sync_ms == LinkParams().sync_ms


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("linking:\n  rebuild_evry: 1h\n", "linking.rebuild_evry: unknown setting"),
        ("linking:\n  sync: soon\n", "linking.sync: cannot parse duration"),
        ("linking:\n  band: two\n", "linking.band: not a number"),
        ("linking:\n  min_weight: -1\n", "linking.min_weight: must not be negative"),
        ("actions:\n  review: 0.9\n  challenge: 0.5\n", "thresholds must be ascending"),
        ("signals:\n  harvest:\n    nope: 0.5\n", "signals.harvest.nope: unknown signal"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, body: str, needle: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(ConfigError) as e:
        Settings.load(f)
    assert str(f) in str(e.value) and needle in str(e.value)
