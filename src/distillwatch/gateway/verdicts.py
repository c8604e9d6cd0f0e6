"""Verdicts published by the last detect/replay run (events.md section 4).

:class:`VerdictStore` maps an account, and an (account, end user) pair, to the
index of its action in :data:`~distillwatch.scoring.config.ACTIONS`. The file
is re-read when its modification time or size changes (checked at most every
``check_every_s`` seconds, so a hot path costs one clock read). A file being
rewritten is read whole or not at all: a line that does not parse keeps the
previous table in force until the next change.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from distillwatch.scoring.config import ACTIONS
from distillwatch.scoring.risk import TRUSTED_REASON

ACTION_INDEX = {a: i for i, a in enumerate(ACTIONS)}
REVIEW = ACTION_INDEX["review"]


class VerdictStore:
    """Account and end-user actions from an ``accounts.jsonl`` file."""

    def __init__(self, path: Path | None, check_every_s: float = 0.5) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self.accounts: dict[str, int] = {}
        self.end_users: dict[tuple[str, str], int] = {}
        self.campaigns: dict[str, str] = {}
        self.trusted: frozenset[str] = frozenset()
        self._stamp: tuple[int, int] | None = None
        self._next_check = 0.0
        self.reloads = 0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed since the last read."""
        now = time.monotonic()
        if self.path is None or (not force and now < self._next_check):
            return
        self._next_check = now + self.check_every_s
        try:
            st = os.stat(self.path)
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            self._load(self.path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            return  # half-written file: keep the previous table, retry on next change
        self._stamp = stamp
        self.reloads += 1

    def _load(self, data: bytes) -> None:
        accounts: dict[str, int] = {}
        end_users: dict[tuple[str, str], int] = {}
        campaigns: dict[str, str] = {}
        trusted: set[str] = set()
        for line in data.splitlines():
            if not line.strip():
                continue
            obj = orjson.loads(line)
            acc = str(obj["account_id"])
            act = ACTION_INDEX[obj.get("action") or "allow"]
            eu = obj.get("end_user_id")
            if eu is None:
                accounts[acc] = act
                if obj.get("campaign_id"):
                    campaigns[acc] = str(obj["campaign_id"])
                if any(r.get("signal") == TRUSTED_REASON for r in obj.get("reasons") or ()):
                    trusted.add(acc)
            else:
                end_users[(acc, str(eu))] = act
        self.accounts, self.end_users, self.campaigns = accounts, end_users, campaigns
        self.trusted = frozenset(trusted)

    def decide(self, account_id: str, published: int, online: int) -> int:
        """The action to apply: the stricter of the published action (:meth:`action`)
        and the online one.

        An account the last run held at review as a trusted customer (verified,
        trusted tier, outside any malicious campaign) keeps that hold online:
        the gateway does not know tiers, so its online score alone never takes
        such an account past review; the published action (campaign evidence)
        still does.
        """
        if account_id in self.trusted:
            online = min(online, REVIEW)
        return max(published, online)

    def action(self, account_id: str, end_user_id: str | None = None) -> int:
        """Stricter of the account's and the end user's published action (0 if none)."""
        self.refresh()
        a = self.accounts.get(account_id, 0)
        if end_user_id is not None:
            a = max(a, self.end_users.get((account_id, end_user_id), 0))
        return a
