"""``first_*_ts`` are the event at which the online decision tipped, not the window's end.

An inline gateway decides at every request; the replay folds 10-minute windows.
Recording the window's end would count every request before it as served, so
the replay finds the tipping event inside the window (engine/firsts.py). These
tests check it is exact and causal: the entity's events up to that time reach
the level, the events strictly before it do not.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from distillwatch.engine.firsts import EXACT_EVENTS, _rounds
from distillwatch.engine.replay import Replay
from distillwatch.features.classifiers import CAPABILITIES
from distillwatch.scoring.config import Settings
from test_linking import DAY, T0, WINDOW, frame, replay, rows, scenario


def harvester(n: int, minutes: float, seed: int = 3) -> pl.DataFrame:
    """One account sending ``n`` CoT-harvesting requests within ``minutes``."""
    rng = np.random.default_rng(seed)
    part = rows(rng, ["bulk"], 4.0 * n, 1.0, cot=0.95, single_turn=True, maxlen_hit=True,
                reasoning_harvest=True, long_request=True, output_tokens=4000,
                capability=CAPABILITIES.index("reasoning"), template_key=5, lsh_0=5)  # fmt: skip
    one = {k: v[:n] for k, v in part.items()}
    one["ts"] = T0 + DAY + np.sort(rng.integers(0, int(minutes * 60_000), n))
    return frame([one])


def run(feat: pl.DataFrame, settings: Settings) -> Replay:
    rp = Replay(settings)
    win = feat.with_columns(w=pl.col("ts").dt.epoch("ms") // WINDOW)
    for (w,), part in win.group_by("w", maintain_order=True):
        rp.step(part.drop("w"), (int(w) + 1) * WINDOW)
    return rp


def action_on(feat: pl.DataFrame, settings: Settings, upto: int, strict: bool) -> int:
    """Action of the account on a fresh replay of its events up to ``upto``, as one batch."""
    ts = feat["ts"].dt.epoch("ms")
    sub = feat.filter(ts < upto if strict else ts <= upto)
    rp = Replay(settings)
    rp.step(sub, upto + 1)
    return int(rp.hindsight()["account"].result.action[0])


def test_harvester_is_enforced_at_the_tipping_request_not_the_window_end() -> None:
    settings = Settings.load()
    # 25 requests in 8 minutes: one window, all below the chunking threshold
    feat = harvester(25, 8)
    rp = run(feat, settings)
    st = rp.states["account"]
    t = st.cols["first_enforce_ms"][st.index["bulk"]]
    ts = feat["ts"].dt.epoch("ms").to_numpy()
    assert np.isfinite(t) and t in set(ts.tolist())
    assert t < ts.max()  # the window's end would have served every request before it
    assert action_on(feat, settings, int(t), strict=False) >= 2
    assert action_on(feat, settings, int(t), strict=True) < 2
    r = st.cols["first_review_ms"][st.index["bulk"]]
    assert r <= t and action_on(feat, settings, int(r), strict=True) < 1


def test_long_bursts_are_refined_in_chunks_and_stay_causal() -> None:
    settings = Settings.load(actions={"min_requests_enforce": 50})
    feat = harvester(400, 9)
    rp = run(feat, settings)
    st = rp.states["account"]
    t = int(st.cols["first_enforce_ms"][st.index["bulk"]])
    ts = feat["ts"].dt.epoch("ms").to_numpy()
    served = int((ts < t).sum())
    # past EXACT_EVENTS the tipping event is found within a chunk of at most half the rank
    assert 49 <= served <= 49 + 49 // 2 + 1
    assert action_on(feat, settings, t, strict=False) >= 2


def test_rounds_are_exact_then_growing() -> None:
    rank = np.arange(200)
    rnd = _rounds(rank)
    assert (rnd[:EXACT_EVENTS] == np.arange(EXACT_EVENTS)).all()
    sizes = np.bincount(rnd)
    assert (np.diff(sizes[EXACT_EVENTS:-1]) >= 0).all()
    assert (np.diff(rnd) >= 0).all() and (np.diff(rnd) <= 1).all()


def test_account_joining_a_known_campaign_is_stopped_at_its_first_request() -> None:
    feat, accounts, _ = scenario()
    late = accounts.filter(pl.col("account_id") == "atk_0").with_columns(
        account_id=pl.lit("late_1"), created_at=pl.col("created_at") + pl.duration(days=6)
    )
    base = feat.filter(pl.col("account_id") == "atk_0").tail(3)
    ts0 = int(feat["ts"].dt.epoch("ms").max()) + 3_600_000
    # three requests within two minutes, inside one window
    burst = base.with_columns(
        account_id=pl.lit("late_1"),
        ts=pl.Series([ts0, ts0 + 40_000, ts0 + 100_000]).cast(pl.Datetime("ms", "UTC")),
    )
    rp, linker = replay(pl.concat([feat, burst]), pl.concat([accounts, late]), True)
    assert linker is not None and linker.campaign_of("late_1") == linker.campaign_of("atk_0")
    st = rp.states["account"]
    assert st.cols["first_enforce_ms"][st.index["late_1"]] == ts0
