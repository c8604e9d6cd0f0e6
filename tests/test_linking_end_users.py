"""Attackers hiding among a reseller's customers are linked as end users.

A reseller account is never a graph node (its customers must not be linked
through it), but its end users are: they link on content shared within the
reseller (reseller x template, reseller x synchrony). The attacker end users
form a campaign of their own, a late attacker joining it is actioned before
the per-entity evidence floor, and the reseller's legitimate customers (who
share the reseller's IPs, client and a few app templates) are not enforced.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from distillwatch.engine.replay import Replay
from distillwatch.engine.verdicts import build_verdicts
from distillwatch.features.classifiers import CAPABILITIES
from distillwatch.linking import CampaignLinker
from distillwatch.linking.evidence import END_USER_KINDS, KIND_CODE, str_keys
from distillwatch.scoring.config import Settings
from test_linking import DAY, T0, frame, pick, replay, rows

RES = "res_1"
Run = tuple[pl.DataFrame, Replay, CampaignLinker, Replay]


def stream(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    pool = list(range(50_000, 50_020))  # the attackers' task pool
    app = [60_001, 60_002, 60_003]  # the reseller's own app templates, used by everyone
    common = {"ip_prefix": 4242, "ua_key": 17, "param_sig": 18, "sys_key": 19}
    parts = []
    for i in range(60):
        parts.append(rows(rng, [RES], 20, 2, end_user_id=f"cust_{i}", **common,
                          template_key=lambda n: np.where(rng.random(n) < 0.3, rng.choice(app, n), rng.integers(1 << 20, 1 << 40, n)).astype(np.uint64),
                          lsh_0=lambda n: rng.integers(1 << 20, 1 << 40, n).astype(np.uint64)))  # fmt: skip
    for i in range(8):
        parts.append(rows(rng, [RES], 24, 2, end_user_id=f"atk_{i}", **common,
                          template_key=pick(rng, pool), lsh_0=pick(rng, pool), cot=0.95,
                          capability=CAPABILITIES.index("reasoning"), single_turn=True,
                          maxlen_hit=True, reasoning_harvest=True, long_request=True,
                          output_tokens=3000))  # fmt: skip
    late = rows(rng, [RES], 12 * 4, 0.25, end_user_id="atk_late", **common,
                template_key=pick(rng, pool), lsh_0=pick(rng, pool), cot=0.95,
                capability=CAPABILITIES.index("reasoning"), single_turn=True, maxlen_hit=True,
                reasoning_harvest=True, long_request=True, output_tokens=3000)  # fmt: skip
    late["ts"] = late["ts"] + 2 * DAY
    parts.append(late)
    accounts = pl.DataFrame(
        {
            "account_id": [RES],
            "created_at": [T0 - 900 * DAY],
            "tier": ["enterprise"],
            "verified": [True],
            "payment_fingerprint": ["pm_res"],
            "email_domain": ["resellco.com"],
            "country": ["US"],
            "reseller": [True],
        }
    ).with_columns(pl.col("created_at").cast(pl.Datetime("ms", "UTC")))
    return frame(parts), accounts


@pytest.fixture(scope="module")
def run() -> Run:
    feat, accounts = stream()
    settings = Settings.load()
    rp, linker = replay(feat, accounts, True, settings)
    alone, _ = replay(feat, accounts, False, settings)
    assert linker is not None
    return feat, rp, linker, alone


def test_attacker_end_users_form_their_own_malicious_campaign(run: Run) -> None:
    _, _, linker, _ = run
    atk = [f"{RES}\x1fatk_{i}" for i in range(8)]
    camps = {linker.campaign_of(k) for k in atk}
    assert len(camps) == 1 and None not in camps
    assert linker.campaign_of(RES) is None  # the reseller itself is never a node
    rec = next(r for r in linker.campaign_records() if r["campaign_id"] in camps)
    assert rec["malicious"] and rec["account_ids"] == [RES]
    members = {e["end_user_id"] for e in rec["end_users"]}  # type: ignore[attr-defined]
    assert {f"atk_{i}" for i in range(8)} <= members
    assert not any(m.startswith("cust_") for m in members)
    kinds = {link["kind"] for link in rec["links"]}  # type: ignore[attr-defined]
    assert kinds <= {"reseller+template", "reseller+sync", "reseller+tooling"}
    reasons = linker.link_reasons(atk[0])
    assert reasons and all(RES in str(r["detail"]) for r in reasons)


def test_late_attacker_is_enforced_before_the_evidence_floor(run: Run) -> None:
    _, rp, _, alone = run
    key = f"{RES}\x1fatk_late"
    st, st0 = rp.states["end_user"], alone.states["end_user"]
    n = st.cols["n"][st.index[key]]
    assert n < Settings.load().min_requests_enforce  # alone, never enough evidence
    assert np.isnan(st0.cols["first_enforce_ms"][st0.index[key]])
    assert np.isfinite(st.cols["first_enforce_ms"][st.index[key]])


def test_reseller_customers_are_not_enforced_and_the_reseller_goes_to_review(run: Run) -> None:
    _, rp, linker, _ = run
    st = rp.states["end_user"]
    cust = [st.index[f"{RES}\x1fcust_{i}"] for i in range(60)]
    assert np.isnan(st.cols["first_enforce_ms"][cust]).all()
    records = build_verdicts(rp.hindsight(), rp.scorer, linker)
    acct = next(r for r in records if r["account_id"] == RES and r["end_user_id"] is None)
    assert acct["action"] == "review"
    eu = {r["end_user_id"]: r for r in records if r["end_user_id"] is not None}
    assert all(eu[f"cust_{i}"]["action"] in ("allow", "review") for i in range(60))
    assert all(eu[f"atk_{i}"]["action"] in ("degrade", "block") for i in range(8))
    assert eu["atk_0"]["campaign_id"] is not None
    assert any(r["signal"].startswith("link:reseller") for r in eu["atk_0"]["reasons"])


def test_reseller_keys_hashed_once_per_account_equal_the_per_row_hash(run: Run) -> None:
    _, _, linker, _ = run
    want = int(str_keys(pl.Series([RES]), 37)[0])
    m = linker.members.filter(pl.col("kind").is_in([KIND_CODE[k] for k in END_USER_KINDS]))
    assert m.height and set(m["a"].to_list()) == {want}
    assert linker.facts.labels[want] == RES
