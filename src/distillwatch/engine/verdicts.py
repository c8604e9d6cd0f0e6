"""Writes the verdict files of events.md section 4 from the replay's decisions.

``accounts.jsonl``: one line per account, plus one per scored end user of
accounts that forward customers (marked ``reseller`` or seen with at least
``subaccounts.min_end_users`` end users). A reseller whose own risk calls for
enforcement is put to ``review`` instead: enforcement goes to its attacking
end users, not to its legitimate customers. ``campaigns.jsonl``: one line per
linked campaign, as the linker reports them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from distillwatch.engine.replay import Decision, Linker
from distillwatch.scoring.config import ACTIONS, Settings
from distillwatch.scoring.risk import Scorer


def rfc3339(ms: float) -> str | None:
    """Epoch milliseconds -> RFC 3339 UTC string (None for NaN)."""
    if ms != ms:  # NaN
        return None
    dt = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def reseller_rows(dec: Decision, settings: Settings) -> np.ndarray:
    """Boolean per account row: does this account forward its own customers?"""
    st = dec.state
    view = st.view(np.arange(len(st)))
    many = view.distinct("end_users") >= settings.min_end_users
    flagged = view["reseller"] == 1.0
    return np.asarray(many | flagged)


def build_verdicts(
    decisions: dict[str, Decision], scorer: Scorer, linker: Linker | None
) -> list[dict[str, Any]]:
    """Verdict records (accounts, then end users of resellers)."""
    settings = scorer.settings
    acct = decisions["account"]
    resellers = reseller_rows(acct, settings)
    reseller_ids = {acct.state.keys[i] for i in np.flatnonzero(resellers)}
    eu_dec = decisions["end_user"]
    eu_max: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for i, key in enumerate(eu_dec.state.keys):
        account_id, end_user = key.split("\x1f", 1)
        if account_id not in reseller_ids:
            continue
        rec = _record(eu_dec, scorer, linker, i, account_id, end_user)
        eu_max[account_id] = max(eu_max.get(account_id, 0), ACTIONS.index(rec["action"]))
        out.append(rec)
    accounts: list[dict[str, Any]] = []
    for i, account_id in enumerate(acct.state.keys):
        rec = _record(acct, scorer, linker, i, account_id, None)
        if resellers[i]:
            a = ACTIONS.index(rec["action"])
            worst_eu = eu_max.get(account_id, 0)
            if a >= 2 or worst_eu >= 2:
                rec["action"] = "review"
                rec["reasons"].append(
                    {
                        "signal": "reseller",
                        "value": worst_eu,
                        "detail": "account forwards its own customers: enforcement is "
                        "recommended on the attacking end users, the account goes to review",
                    }
                )
        accounts.append(rec)
    return accounts + out


def _record(
    dec: Decision,
    scorer: Scorer,
    linker: Linker | None,
    i: int,
    account_id: str,
    end_user: str | None,
) -> dict[str, Any]:
    res = dec.result
    cols = dec.state.cols
    # an end user of a reseller may be a campaign member itself
    node = account_id if end_user is None else account_id + "\x1f" + end_user
    campaign = linker.campaign_of(node) if linker is not None else None
    if campaign is None and linker is not None and end_user is not None:
        campaign, node = linker.campaign_of(account_id), account_id
    reasons = scorer.reasons(res, i)
    if linker is not None and campaign is not None:
        reasons = linker.link_reasons(node) + reasons
    return {
        "account_id": account_id,
        "end_user_id": end_user,
        "risk": round(float(res.risk[i]), 4),
        "action": ACTIONS[int(res.action[i])],
        "campaign_id": campaign,
        "first_review_ts": rfc3339(float(cols["first_review_ms"][i])),
        "first_enforce_ts": rfc3339(float(cols["first_enforce_ms"][i])),
        "n_requests": int(cols["n"][i]),
        "reasons": reasons,
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "wb") as fh:
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")
