"""The main process's faster helpers equal the straightforward versions they replace."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from distillwatch.engine.replay import Replay
from distillwatch.features.model_launch import DAY_MS, ModelLaunchTracker
from distillwatch.linking.aggregate import aggregate_state
from distillwatch.linking.evidence import ATTACH_ONLY_CODES, IS_ATTACH_ONLY, KIND_NAMES
from distillwatch.linking.graph import GraphParams, communities
from distillwatch.signals.state import EntityState


def _random_state(rng: np.random.Generator, n: int, prefix: str) -> EntityState:
    st = EntityState(capacity=4)
    st.rows_for(pl.Series([f"{prefix}{i}" for i in range(n)], dtype=pl.String))
    st.num[:n] = rng.random(st.num[:n].shape) * rng.integers(1, 1000)
    st.num[:n][rng.random(st.num[:n].shape) < 0.2] = np.nan
    st.hll[:n] = rng.integers(0, 30, st.hll[:n].shape, dtype=np.uint8)
    return st


def _aggregate_reference(
    state: EntityState, parts: tuple[tuple[EntityState, np.ndarray, np.ndarray], ...]
) -> dict[str, np.ndarray]:
    """The members' values per column as the former aggregate_state gathered them."""
    group = np.concatenate([np.asarray(g, dtype=np.int64) for _, _, g in parts])
    order = np.argsort(group, kind="stable")
    return {
        name: np.concatenate([st.cols[name][np.asarray(r, dtype=np.int64)] for st, r, _ in parts])[
            order
        ]
        for name in state.cols
    }


@pytest.mark.parametrize("seed", range(12))
def test_aggregate_state_equals_per_column_gathers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = _random_state(rng, int(rng.integers(1, 60)), "a")
    b = _random_state(rng, int(rng.integers(1, 20)), "b")
    k = int(rng.integers(1, 8))
    ra = rng.integers(0, len(a), int(rng.integers(1, 80)))
    rb = rng.integers(0, len(b), int(rng.integers(0, 30)))
    ga, gb = rng.integers(0, k, len(ra)), rng.integers(0, k, len(rb))
    for more in ((), ((b, rb, gb),)):
        parts = ((a, ra, ga), *more)
        got = aggregate_state(a, ra, ga, k, more)
        # the same folds over the reference's member values give the same bytes
        vals = _aggregate_reference(a, parts)
        ref = aggregate_state(_Columns(vals), np.arange(len(vals["n"])), _sorted_groups(parts), k)
        for name in a.cols:
            assert got[name].dtype == ref[name].dtype, name
            assert got[name].tobytes() == ref[name].tobytes(), name


class _Columns(EntityState):
    """An EntityState whose rows are given member values (row i: the i-th member)."""

    def __init__(self, vals: dict[str, np.ndarray]) -> None:
        super().__init__(capacity=max(len(vals["n"]), 1))
        self.rows_for(pl.Series([f"m{i}" for i in range(len(vals["n"]))], dtype=pl.String))
        for name, v in vals.items():
            self.cols[name][: len(v)] = v


def _sorted_groups(parts: tuple[tuple[EntityState, np.ndarray, np.ndarray], ...]) -> np.ndarray:
    return np.sort(np.concatenate([np.asarray(g, dtype=np.int64) for _, _, g in parts]))


def test_is_attach_only_equals_isin() -> None:
    codes = np.arange(len(KIND_NAMES), dtype=np.int8)
    assert IS_ATTACH_ONLY[codes].tolist() == np.isin(codes, ATTACH_ONLY_CODES).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_rows_mask_equals_set_lookup(seed: int) -> None:
    rng = np.random.default_rng(seed)
    st = _random_state(rng, 50, "e")
    keys = pl.Series([f"e{i}" for i in rng.choice(50, int(rng.integers(0, 20)), replace=False)])
    rows = rng.integers(0, 50, 30)
    several = set(keys.to_list())
    want = [st.keys[i] in several for i in rows.tolist()]
    assert Replay._rows_mask(st, keys)[rows].tolist() == want


@pytest.mark.parametrize("seed", range(6))
def test_model_flags_of_frames_equal_those_of_dicts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame_t, dict_t = ModelLaunchTracker(), ModelLaunchTracker()
    t = 1_700_000_000_000
    for _ in range(12):
        n = int(rng.choice([1, 5, 63, 64, 300]))
        ts = t + np.sort(rng.integers(0, DAY_MS, n))
        models = [None if rng.random() < 0.1 else f"m{rng.integers(0, 15)}" for _ in range(n)]
        frame = pl.DataFrame(
            {"ts": pl.Series(ts).cast(pl.Datetime("ms", "UTC")), "model": models},
            schema_overrides={"model": pl.String},
        )
        got = frame_t.flags(frame)
        want = dict_t.flags({"ts": ts.astype("datetime64[ms]"), "model": models})
        assert got.tolist() == want.tolist()
        t += int(rng.integers(0, DAY_MS))
    assert frame_t.first_seen == dict_t.first_seen


@pytest.mark.parametrize("seed", range(4))
def test_communities_equal_with_the_graph_built_by_add_edges(seed: int) -> None:
    import random

    import igraph as ig

    rng = np.random.default_rng(seed)
    n, k = 200, 600
    src = rng.integers(0, n, k).astype(np.int32)
    dst = rng.integers(0, n, k).astype(np.int32)
    keep = src != dst
    edges = pl.DataFrame({"src": src[keep], "dst": dst[keep], "w": rng.random(int(keep.sum()))})
    edges = edges.unique(["src", "dst"], keep="first", maintain_order=True)
    params = GraphParams()
    got = communities(edges, n, params)
    # the former construction: the edge array passed to the constructor
    e = edges.sort("src", "dst")
    s, d = e["src"].to_numpy(), e["dst"].to_numpy()
    used, inv = np.unique(np.concatenate([s, d]), return_inverse=True)
    g = ig.Graph(n=len(used), edges=np.column_stack([inv[: len(s)], inv[len(s) :]]))
    ig.set_random_number_generator(random.Random(params.seed))
    try:
        part = g.community_leiden(
            objective_function="modularity",
            weights=e["w"].to_numpy(),
            resolution=params.resolution,
            n_iterations=-1,
        )
    finally:
        ig.set_random_number_generator(random)
    want = np.full(n, -1, np.int64)
    want[used] = part.membership
    assert got.tolist() == want.tolist()


def test_tooling_parts_equal_a_fresh_filter() -> None:
    from distillwatch.linking import CampaignLinker
    from distillwatch.linking.evidence import compact
    from distillwatch.scoring.config import Settings

    rng = np.random.default_rng(0)

    def chunk(n: int) -> dict[str, np.ndarray]:
        return {
            "key": rng.integers(1, 50, n).astype(np.uint64),
            "kind": rng.integers(0, len(KIND_NAMES), n).astype(np.int8),
            "node": rng.integers(0, 30, n).astype(np.int32),
            "a": rng.integers(0, 9, n).astype(np.uint64),
            "b": rng.integers(0, 9, n).astype(np.uint64),
        }

    def fresh(parts: list[pl.DataFrame | dict[str, np.ndarray]]) -> list[list[list[int]]]:
        out = []
        for p in parts:
            kind = np.asarray(p["kind"])
            tool = np.isin(kind, ATTACH_ONLY_CODES)
            out.append([np.asarray(p[c])[tool].tolist() for c in ("key", "kind", "node")])
        return out

    linker = CampaignLinker(Settings.load())
    linker._pending = [compact([chunk(40)])]
    linker._raw = [chunk(30), chunk(25)]
    for _ in range(2):  # the second time from the memo
        got = [[t[c].tolist() for c in ("key", "kind", "node")] for t in linker._tooling_parts()]
        assert got == fresh([*linker._pending, *linker._raw])
    linker._raw = [linker._raw[1], chunk(12)]  # parts leave and arrive
    got = [[t[c].tolist() for c in ("key", "kind", "node")] for t in linker._tooling_parts()]
    assert got == fresh([*linker._pending, *linker._raw])
    assert len(linker._tooling.seen) == 3
