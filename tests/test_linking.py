"""Campaign linking in the causal replay, on small synthetic feature streams.

A hydra-like farm (thin per-account volume, shared /24s, payment pool and
task pool, CoT harvesting) must be found as a campaign and enforced early,
while an enterprise batch job and eval harnesses that share a corporate /24
and templates among themselves must not be enforced, and a reseller must
never be linked through its customers.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from distillwatch.engine.replay import Replay
from distillwatch.features.classifiers import CAPABILITIES
from distillwatch.features.request import FEATURE_SCHEMA
from distillwatch.linking import CampaignLinker
from distillwatch.scoring.config import Settings

T0 = 1_772_409_600_000
DAY = 86_400_000
WINDOW = 600_000


def rows(
    rng: np.random.Generator, accts: list[str], per_day: float, days: float, **kw: object
) -> dict[str, np.ndarray]:
    """Requests of some accounts spread uniformly over ``days``; kw give constant or per-row columns."""
    counts = rng.poisson(per_day * days, len(accts))
    acct = np.repeat(np.array(accts, dtype=object), counts)
    n = len(acct)
    out: dict[str, np.ndarray] = {
        "account_id": acct,
        "ts": T0 + rng.integers(0, int(days * DAY), n),
    }
    for k, v in kw.items():
        out[k] = v(n) if callable(v) else np.full(n, v)
    return out


def frame(parts: list[dict[str, np.ndarray]]) -> pl.DataFrame:
    defaults: dict[str, object] = {
        "model": "m1", "cot": 0.0, "rubric": 0.0, "datagen": 0.0, "capability": 0, "single_turn": False,
        "tool_use": False, "maxlen_hit": False, "long_request": False, "prob_harvest": False,
        "reasoning_harvest": False, "output_tokens": 300,
    }  # fmt: skip
    frames = []
    for p in parts:
        df = pl.DataFrame({k: v for k, v in p.items() if k != "ts"})
        df = df.with_columns(pl.Series("ts", p["ts"]).cast(pl.Datetime("ms", "UTC")))
        missing = [c for c in FEATURE_SCHEMA if c not in df.columns]
        df = df.with_columns(
            [pl.lit(defaults.get(c, 0 if c != "end_user_id" else None)).alias(c) for c in missing]
        )
        frames.append(df.select([pl.col(c).cast(t) for c, t in FEATURE_SCHEMA.items()]))
    return pl.concat(frames).sort("ts")


def pick(rng: np.random.Generator, pool: list[int]) -> object:
    return lambda n: rng.choice(np.array(pool, dtype=np.uint64), n)


def scenario(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(seed)
    atk = [f"atk_{i}" for i in range(30)]
    ent = [f"ent_{i}" for i in range(4)]
    evl = [f"eval_{i}" for i in range(3)]
    cas = [f"cas_{i}" for i in range(60)]
    tasks = list(range(10_000, 10_060))
    bench = list(range(20_000, 20_040))  # a public benchmark: eval harnesses and some casual users
    parts = [
        rows(rng, atk, 12, 2, ip_prefix=pick(rng, [101, 102, 103]), ua_key=pick(rng, [7, 8]), param_sig=55,
             template_key=pick(rng, tasks), lsh_0=pick(rng, tasks), sys_key=77, cot=0.95,
             capability=CAPABILITIES.index("reasoning"), single_turn=True, maxlen_hit=True,
             reasoning_harvest=True, long_request=True, output_tokens=3000),
        rows(rng, ent, 150, 2, ip_prefix=201, ua_key=9, param_sig=66, template_key=pick(rng, [30_001, 30_002]),
             lsh_0=pick(rng, [30_001, 30_002]), sys_key=88, single_turn=True, output_tokens=12,
             capability=CAPABILITIES.index("other")),
        rows(rng, evl, 80, 2, ip_prefix=201, ua_key=10, param_sig=67, template_key=pick(rng, bench),
             lsh_0=pick(rng, bench), sys_key=89, single_turn=True, capability=lambda n: rng.choice([0, 3, 5], n),
             prob_harvest=lambda n: rng.random(n) < 0.2),
        rows(rng, cas, 6, 2, ip_prefix=lambda n: rng.integers(1 << 20, 1 << 40, n).astype(np.uint64),
             ua_key=pick(rng, [11, 12, 13]), param_sig=68,
             template_key=lambda n: np.where(rng.random(n) < 0.2, rng.choice(bench, n), rng.integers(1 << 20, 1 << 40, n)).astype(np.uint64),
             lsh_0=lambda n: rng.integers(1 << 20, 1 << 40, n).astype(np.uint64), sys_key=90),
        # a few end-user rows so the replay has both entity levels
        rows(rng, ["cas_0"], 3, 2, end_user_id="u1", ip_prefix=999, template_key=1, lsh_0=1),
    ]  # fmt: skip
    feat = frame(parts)
    ids = atk + ent + evl + cas
    kind = {a: a.split("_")[0] for a in ids}
    created = [
        T0 - 5 * DAY + (i % 3) * 60_000 if a in atk else T0 - 400 * DAY + i * DAY
        for i, a in enumerate(ids)
    ]
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "created_at": created,
            "tier": [
                "startup_program" if a in atk else "enterprise" if a in ent else "pay_as_you_go"
                for a in ids
            ],
            "verified": [a not in atk for a in ids],
            "payment_fingerprint": [
                f"pm_pool{i % 3}" if a in atk else f"pm_{a}" for i, a in enumerate(ids)
            ],
            "email_domain": [
                "gmail.com" if a in atk else "globex.com" if a in ent + evl else "gmail.com"
                for a in ids
            ],
            "country": ["SG"] * len(ids),
            "reseller": [False] * len(ids),
        }
    ).with_columns(pl.col("created_at").cast(pl.Datetime("ms", "UTC")))
    return feat, accounts, kind


def replay(
    feat: pl.DataFrame, accounts: pl.DataFrame, link: bool, settings: Settings | None = None
) -> tuple[Replay, CampaignLinker | None]:
    settings = settings or Settings.load()
    linker = CampaignLinker(settings, accounts) if link else None
    rp = Replay(settings, accounts, linker)
    win = feat.with_columns(w=pl.col("ts").dt.epoch("ms") // WINDOW)
    for (w,), part in win.group_by("w", maintain_order=True):
        rp.step(part.drop("w"), (int(w) + 1) * WINDOW)
    return rp, linker


@pytest.fixture(scope="module")
def runs() -> dict[str, object]:
    feat, accounts, kind = scenario()
    # members send ~24 requests each: below this evidence floor, so alone none is enforced
    settings = Settings.load(actions={"min_requests_enforce": 40})
    with_link, linker = replay(feat, accounts, True, settings)
    without, _ = replay(feat, accounts, False, settings)
    return {
        "feat": feat,
        "accounts": accounts,
        "kind": kind,
        "link": with_link,
        "linker": linker,
        "nolink": without,
    }


def enforce_times(rp: Replay, who: list[str]) -> np.ndarray:
    st = rp.states["account"]
    return np.array([st.cols["first_enforce_ms"][st.index[a]] for a in who])


def test_farm_is_one_malicious_campaign_and_benign_clusters_are_not(
    runs: dict[str, object],
) -> None:
    linker = runs["linker"]
    assert isinstance(linker, CampaignLinker)
    kind: dict[str, str] = runs["kind"]  # type: ignore[assignment]
    atk = [a for a, k in kind.items() if k == "atk"]
    camps = {linker.campaign_of(a) for a in atk}
    assert len(camps) == 1 and None not in camps
    risk = linker.campaign_risk(pl.Series(list(kind)))
    for a, r in zip(kind, risk, strict=True):
        assert (r > 0) == (kind[a] == "atk"), a
    # the enterprise job and eval harnesses may be linked among themselves, never to the farm
    for a, k in kind.items():
        if k in ("ent", "eval", "cas"):
            assert linker.campaign_of(a) not in camps


def test_linking_enforces_thin_members_early(runs: dict[str, object]) -> None:
    kind: dict[str, str] = runs["kind"]  # type: ignore[assignment]
    atk = [a for a, k in kind.items() if k == "atk"]
    with_link = enforce_times(runs["link"], atk)  # type: ignore[arg-type]
    without = enforce_times(runs["nolink"], atk)  # type: ignore[arg-type]
    assert np.isfinite(with_link).all()
    # each member sends ~24 requests: below min_requests_enforce, so alone it is never enforced
    assert np.isnan(without).mean() > 0.8
    assert np.nanmedian(with_link) - T0 < DAY / 2


def test_benign_shared_infrastructure_is_never_enforced(runs: dict[str, object]) -> None:
    kind: dict[str, str] = runs["kind"]  # type: ignore[assignment]
    benign = [a for a, k in kind.items() if k != "atk"]
    rp: Replay = runs["link"]  # type: ignore[assignment]
    assert np.isnan(enforce_times(rp, benign)).all()
    dec = rp.hindsight()["account"]
    st = dec.state
    actions = np.array([dec.result.action[st.index[a]] for a in benign])
    assert (actions < 2).all()


def test_new_account_sharing_payment_is_actioned_at_first_request(runs: dict[str, object]) -> None:
    feat, accounts, _ = scenario()
    late = pl.DataFrame(
        {
            "account_id": ["late_1"],
            "created_at": [T0 + DAY],
            "tier": ["education"],
            "verified": [False],
            "payment_fingerprint": ["pm_pool1"],
            "email_domain": ["gmail.com"],
            "country": ["HK"],
            "reseller": [False],
        }
    ).with_columns(pl.col("created_at").cast(pl.Datetime("ms", "UTC")))
    one = (
        feat.filter(pl.col("account_id") == "atk_0")
        .tail(1)
        .with_columns(account_id=pl.lit("late_1"), ts=pl.col("ts") + pl.duration(hours=2))
    )
    # campaign membership must outweigh the risk bias for a one-request account to be
    # enforced: risk.campaign * campaign risk > -risk.bias + logit(challenge)
    settings = Settings.load(risk={"campaign": 9.0})
    rp, linker = replay(
        pl.concat([feat, one]).sort("ts"), pl.concat([accounts, late]), True, settings
    )
    assert linker is not None
    st = rp.states["account"]
    assert st.cols["n"][st.index["late_1"]] == 1
    assert linker.campaign_risk(pl.Series(["late_1"]))[0] >= settings.thresholds["review"]
    assert linker.campaign_of("late_1") == linker.campaign_of("atk_0")
    assert np.isfinite(st.cols["first_enforce_ms"][st.index["late_1"]])
    reasons = linker.link_reasons("late_1")
    assert any(r["signal"] == "link:payment" and "pm_pool1" in str(r["detail"]) for r in reasons)


def test_reseller_is_never_a_node(runs: dict[str, object]) -> None:
    feat, accounts, _ = scenario()
    accounts = accounts.with_columns(reseller=pl.col("account_id") == "atk_3")
    _, linker = replay(feat, accounts, True)
    assert linker is not None
    assert linker.campaign_of("atk_3") is None
    assert linker.campaign_of("atk_4") is not None


def test_campaign_records_follow_the_contract(runs: dict[str, object]) -> None:
    linker = runs["linker"]
    assert isinstance(linker, CampaignLinker)
    recs = linker.campaign_records()
    bad = [r for r in recs if r["malicious"]]
    assert len(bad) == 1
    r = bad[0]
    for field in (
        "campaign_id",
        "account_ids",
        "n_requests",
        "first_seen",
        "detected_at",
        "risk",
        "targets",
        "links",
        "reasons",
    ):
        assert field in r
    assert len(r["account_ids"]) == 30 and r["n_requests"] > 500
    assert r["targets"] == ["reasoning"]
    first = datetime.fromisoformat(r["first_seen"].replace("Z", "+00:00"))
    detected = datetime.fromisoformat(r["detected_at"].replace("Z", "+00:00"))
    assert first <= detected and first.tzinfo == UTC
    kinds = {link["kind"] for link in r["links"]}
    assert {"payment", "prefix+template"} <= kinds
    assert all(link["keys"] >= 1 and "shared by" in link["example"] for link in r["links"])
    assert r["campaign_id"] == linker.campaign_of(r["account_ids"][0])
    reasons = linker.link_reasons(r["account_ids"][0])
    assert reasons and all(
        str(x["signal"]).startswith("link:") and "other campaign members" in str(x["detail"])
        for x in reasons
    )
