"""Per-request features: shape, determinism, cache transparency."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.request import FEATURE_SCHEMA, TEXT_DTYPES, compute_features
from distillwatch.ingest.readers import read_events
from distillwatch.sim import simulate


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    d: Path = tmp_path_factory.mktemp("sim")
    simulate("demo", d, seed=5, days=1, scale=0.3)
    df = pl.from_arrow(read_events(d / "events"))
    assert isinstance(df, pl.DataFrame)
    return df


def test_schema_and_no_nulls(events: pl.DataFrame) -> None:
    feat = compute_features(events)
    assert feat.height == events.height
    assert dict(feat.schema) == FEATURE_SCHEMA
    for c in FEATURE_SCHEMA:
        if c not in ("end_user_id", "model"):
            assert feat[c].null_count() == 0, c
    assert feat["cot"].is_between(0, 1).all()


def test_cache_is_transparent(events: pl.DataFrame) -> None:
    plain = pl.concat([compute_features(events[i : i + 500]) for i in range(0, 2000, 500)])
    cache = TextFeatureCache(TEXT_DTYPES, capacity=300)  # small: forces generation rotation
    cached = pl.concat(
        [compute_features(events[i : i + 500], cache=cache) for i in range(0, 2000, 500)]
        + [compute_features(events[:500], cache=cache)]
    )
    assert_frame_equal(cached[:2000], plain)
    assert_frame_equal(cached[2000:], plain[:500])
    assert cache.hits > 0 and cache.misses > 0


def test_batch_of_one_equals_batch(events: pl.DataFrame) -> None:
    batch = compute_features(events[:50])
    for i in (0, 17, 49):
        assert_frame_equal(compute_features(events[i : i + 1]), batch[i : i + 1])


def test_an_empty_system_prompt_is_no_system_prompt() -> None:
    """sys_key 0 for "" as for a missing system prompt, on both paths: otherwise
    every account sending "system": "" would share a system-prompt link fact."""
    import pyarrow as pa

    from distillwatch.ingest.normalize import normalize_event, rows_to_batch

    def ev(system: object) -> dict[str, object]:
        req: dict[str, object] = {"messages": [{"role": "user", "content": "hi there"}]}
        if system is not None:
            req["system"] = system
        return {"ts": "2026-03-01T00:00:00Z", "account_id": "a", "request": req}

    rows = [normalize_event(ev(s))[0] for s in (None, "", "You are terse.")]
    batch = rows_to_batch([r for r in rows if r is not None])
    assert isinstance(batch, pa.RecordBatch) and batch.num_rows == 3
    for small in (0, 32):
        keys = compute_features(batch, small_batch_max=small)["sys_key"].to_list()
        assert keys[0] == keys[1] == 0 and keys[2] != 0
