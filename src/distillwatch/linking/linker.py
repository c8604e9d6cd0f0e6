"""CampaignLinker: the causal replay's incremental account graph and campaigns.

``observe`` turns each event-time window into distinct evidence rows (cheap,
vectorised). ``refresh`` then

* attaches accounts that are not yet in a campaign to a *malicious* campaign
  as soon as their new evidence (shared payment, infrastructure x template,
  sign-up burst x client, ...) weighs ``min_weight`` against that campaign's
  keys: early action at an account's first requests; and, whenever the
  malicious-key index is rebuilt, tries the evidence every unlinked account
  has accrued so far against it (``catch_up_rounds`` times, the accounts
  that joined in one round adding their keys for the next), so accounts
  that were active before their campaign was found join it when it is;
* rebuilds the graph and re-runs Leiden only when the evidence table grew by
  ``growth`` since the last rebuild (and at most every ``rebuild_every_ms``),
  so the total rebuild cost is a geometric series: near-linear in events;
  and at least every ``max_rebuild_gap_ms`` of event time, so a campaign that
  starts late in a long window is still found within that delay;
* re-scores campaigns (members' state aggregated, same scorer as accounts)
  after a rebuild or attach and at least every ``rescore_every_ms``;
* also rebuilds (at most every ``rebuild_every_ms``) when ``suspect_rebuild``
  more accounts are at review on their own, outside any malicious campaign,
  than after the last rebuild: suspicion the graph does not explain yet
  (a farm waking up late in a long log is otherwise found only after
  ``max_rebuild_gap_ms``).

Low-and-slow farms that rotate IPs and paraphrase share only a little with
each member (pair weights below ``min_weight``), so the graph also keeps
*weak* edges (``weak_edge`` <= w < ``min_weight``) for accounts that strong
edges leave out of every campaign-sized community (:func:`two_stage_communities`:
strongly linked groups are partitioned exactly as before and never merged
through weak links), and such an account stays in its community only while
its summed edge weight to the other members reaches ``min_weight``
(:func:`supported_members`): several weak links to the group count as one
strong one. Joining a malicious campaign between rebuilds may be
corroborated by the account's harvest profile matching the campaign's
(:mod:`distillwatch.linking.profile`), never without a shared key.

A campaign is malicious when its aggregate risk reaches the ``review``
threshold and it has at least ``min_members`` accounts. That verdict is
*held* for ``verdict_hold_ms`` (default a day) after it was last confirmed:
when a rebuild re-partitions the graph or a re-score lowers the aggregate, a
campaign at least half of whose members were in a malicious campaign within
that time keeps their (mean) risk as a floor. Early aggregates are thin (a
few hours of a few accounts), and the signals that make a farm's automation
visible at campaign level count per day (busiest day's volume, hours of the
day over several days), so a verdict found on the first hours must not be
undone by the next hours' re-partition before a day of evidence can confirm
or clear it. A held verdict names itself in the campaign's reasons. Reseller accounts
(marked, or seen with many end users) are never nodes: their customers must
not be linked through them. Their end users are nodes of their own (key
``account_id + "\x1f" + end_user_id``, the replay's end-user entity key),
linked on content within the reseller only (see
:mod:`distillwatch.linking.evidence`), so attackers hiding among a reseller's
customers form a campaign of end users and are actioned as one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from distillwatch.linking.accountable import FARM, MIN_SHARE, NONE, PEERS, HardLinks
from distillwatch.linking.aggregate import aggregate_state
from distillwatch.linking.attach import CampaignAttacher, on_keys
from distillwatch.linking.cohort import CohortParams, activation_cohorts, coactive_peers
from distillwatch.linking.evidence import (
    ATTACH_ONLY_CODES,
    BASE_WEIGHT,
    END_USER_KINDS,
    IS_ATTACH_ONLY,
    KIND_CODE,
    AccountFacts,
    PartRows,
    compact,
    evidence_arrays,
    mix,
    row_facts,
    str_keys,
)
from distillwatch.linking.graph import GraphParams, communities, sorted_key_graph
from distillwatch.linking.profile import CampaignProfiles
from distillwatch.linking.report import (
    Links,
    campaign_links,
    campaign_record,
    reasons_and_links,
)
from distillwatch.linking.resold import (
    GroupParams,
    GroupScorer,
    due_groups,
    tooling_groups,
    tooling_rows,
)
from distillwatch.linking.table import EvidenceTable
from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import Scorer, ScoreResult
from distillwatch.signals.state import EntityState

HOUR_MS = 3_600_000
TOOLING_BASE = float(BASE_WEIGHT[ATTACH_ONLY_CODES].min())  # a tooling key's full weight
MAX_PENDING_CHUNKS = 8


@dataclass(frozen=True)
class LinkParams:
    """Linking settings (defaults documented in docs and the class docstring)."""

    graph: GraphParams = field(default_factory=GraphParams)
    sync_ms: int = 10 * 60_000
    signup_bucket_ms: int = 10 * 60_000
    min_members: int = 3
    growth: float = 1.0
    rebuild_every_ms: int = HOUR_MS
    max_rebuild_gap_ms: int = 24 * HOUR_MS  # new campaigns are found within this delay
    rescore_every_ms: int = HOUR_MS
    compact_rows: int = 2_000_000  # raw evidence rows buffered before de-duplication
    # evidence kept per (account, link kind): its most used keys. Bounds the
    # table by accounts x kinds instead of by events (the long tail of keys an
    # account used once links nothing).
    max_keys_per_kind: int = 48
    # when the malicious-key index is rebuilt: rounds of trying every unlinked
    # account's evidence so far against it (0: only evidence that arrives later)
    catch_up_rounds: int = 4
    # a campaign found malicious stays so through re-partitions and re-scores
    # for this long after it was last confirmed (module docstring)
    verdict_hold_ms: int = 24 * HOUR_MS
    # weak edges: pairs whose summed key weight is at least this (below
    # ``graph.min_weight``) enter community detection too; a node stays in its
    # community only while its summed edge weight to the other members reaches
    # ``graph.min_weight`` (see ``supported_members``). 0 or >= min_weight: off.
    weak_edge: float = 0.3
    # joining a malicious campaign: an account sharing at least one key with it
    # gets profile_weight x ramp(its harvest-profile log-likelihood ratio under
    # the campaign, profile_llr_lo, profile_llr_hi) added to its key weight
    # (linking/profile.py). 0: off.
    # rebuild (at most every rebuild_every) when this many more accounts are at
    # review or above on their own without being in a malicious campaign than
    # at the last rebuild: suspicion the graph does not explain yet. 0: off.
    suspect_rebuild: int = 3
    profile_weight: float = 0.5
    profile_llr_lo: float = 4.0
    profile_llr_hi: float = 12.0
    # activation cohorts (linking/cohort.py) among the nodes the graph leaves out
    cohort: CohortParams = field(default_factory=CohortParams)
    # joining: an account first seen with several others of the campaign (linking/
    # cohort.py coactive_peers) gets this added to its key weight. 0: off.
    cohort_join_weight: float = 0.5
    # tooling groups of a reseller's end users (linking/resold.py)
    groups: GroupParams = field(default_factory=GroupParams)


def link_params(settings: Settings) -> LinkParams:
    """LinkParams from the ``linking`` section of the settings (defaults elsewhere).

    The settings already hold each value in its type (durations as int ms).
    """
    cfg: dict[str, Any] = dict(settings.linking)
    graph = {k: cfg.pop(k) for k in ("band", "min_weight", "max_df", "resolution") if k in cfg}
    ms = (
        "sync",
        "signup_bucket",
        "rebuild_every",
        "max_rebuild_gap",
        "rescore_every",
        "verdict_hold",
    )
    coh = {
        (k[7:] + "_ms" if k in ("cohort_window", "cohort_warmup") else k[7:]): cfg.pop(k)
        for k in [k for k in cfg if k.startswith("cohort_") and k != "cohort_join_weight"]
    }
    grp = (
        {"max_share": cfg.pop("reseller_group_max_share")}
        if "reseller_group_max_share" in cfg
        else {}
    )
    for k in ("min_members", "min_share", "min_keys"):
        if k in coh:
            grp[k] = coh[k]
    if "min_members" in cfg:
        coh["min_members"] = grp["min_members"] = cfg["min_members"]
    rest = {f"{k}_ms" if k in ms else k: v for k, v in cfg.items()}
    return LinkParams(
        graph=GraphParams(**graph), cohort=CohortParams(**coh), groups=GroupParams(**grp), **rest
    )


def keep_top_keys(members: pl.DataFrame, k: int) -> pl.DataFrame:
    """Per (node, kind), the ``k`` keys carried by the most requests (ties: lower key)."""
    if members.height == 0:
        return members
    # deterministic order: count first, the key's low bits break ties
    score = pl.col("n").cast(pl.Float64) + (pl.col("key") % 1_000_003).cast(pl.Float64) / 2e6
    rank = score.rank("ordinal", descending=True).over(["node", "kind"])
    return members.filter(rank <= k)


def free_edges(edges: pl.DataFrame, placed: np.ndarray, need: float) -> pl.DataFrame:
    """The edges between nodes not ``placed`` in a campaign, less those touching
    a node whose summed edge weight stays below ``need`` (it can never be a
    supported member, :func:`supported_members`)."""
    src, dst = edges["src"].to_numpy(), edges["dst"].to_numpy()
    w = edges["w"].to_numpy()
    keep = ~placed[src] & ~placed[dst]
    n = len(placed)
    for _ in range(4):
        deg = np.bincount(src[keep], w[keep], n) + np.bincount(dst[keep], w[keep], n)
        drop = keep & ((deg[src] < need) | (deg[dst] < need))
        if not drop.any():
            break
        keep &= ~drop
    return edges.filter(pl.Series(keep))


def supported_members(labels: np.ndarray, edges: pl.DataFrame, need: float) -> np.ndarray:
    """Community labels with unsupported members removed (-1).

    A member stays only while the summed weight of its edges to other members
    of its community reaches ``need``: several weak links to the group count
    as one strong one. Removing a member can leave another unsupported, so
    this peels until stable.
    """
    labels = labels.copy()
    if edges.height == 0:
        return labels
    src, dst = edges["src"].to_numpy(), edges["dst"].to_numpy()
    w = edges["w"].to_numpy()
    n = len(labels)
    for _ in range(8):
        inside = (labels[src] >= 0) & (labels[src] == labels[dst])
        deg = np.bincount(src[inside], w[inside], n) + np.bincount(dst[inside], w[inside], n)
        drop = (labels >= 0) & (deg < need)
        if not drop.any():
            break
        labels[drop] = -1
    return labels


def two_stage_communities(
    edges: pl.DataFrame, n: int, params: GraphParams, weak_floor: float, min_members: int
) -> np.ndarray:
    """Communities of the strong edges (exactly as without weak edges); then, among
    the nodes those leave out of every campaign-sized community, communities of
    their edges down to ``weak_floor`` whose members are supported
    (:func:`supported_members`). Weak evidence never merges or reshapes a
    strongly linked group (a benign team's cluster cannot be pulled into a farm
    by a few weak links); it only groups accounts that strong evidence leaves
    alone (alone, or in pairs too small to be a campaign)."""
    need = params.min_weight
    labels = communities(edges.filter(pl.col("w") >= need), n, params)
    _, inv, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    placed = (labels >= 0) & (sizes[inv] >= min_members)
    usable = edges.filter(pl.col("w") >= weak_floor)
    free = free_edges(usable, placed, need)
    if free.height == 0:
        return labels
    extra = supported_members(communities(free, n, params), free, need)
    base = int(labels.max()) + 1 if len(labels) else 0
    return np.where(extra >= 0, extra + base, labels)


def campaign_id_of(account_id: str) -> str:
    """Stable campaign id derived from the campaign's earliest member."""
    return "cmp_" + hashlib.blake2b(account_id.encode(), digest_size=6).hexdigest()


class CampaignLinker:
    """Implements the replay's ``Linker`` protocol (see :mod:`distillwatch.engine.replay`)."""

    def __init__(
        self,
        settings: Settings,
        accounts: pl.DataFrame | None = None,
        params: LinkParams | None = None,
    ) -> None:
        self.settings = settings
        self.p = params or link_params(settings)
        self.facts = AccountFacts.build(accounts, self.p.signup_bucket_ms)
        self.node_of: dict[str, int] = {}
        self.node_ids: list[str] = []
        self._acct_row = np.zeros(0, np.int64)  # node -> accounts-table row (-1: unknown)
        self._reseller_key = np.zeros(0, np.uint64)  # account node -> its reseller key (0: not yet)
        # the evidence table, sorted in the graph's holder order (linking/table.py)
        self._table = EvidenceTable(self.p.max_keys_per_kind, self.p.graph.seed)
        self._raw: list[dict[str, np.ndarray]] = []  # evidence arrays not yet compacted
        self._raw_rows = 0
        # compacted chunks of evidence not yet merged into members: merged once, at
        # the next rebuild (re-aggregating one growing pending table on every
        # chunk cost a group_by over it each time)
        self._pending: list[pl.DataFrame] = []
        self._rows_total = 0
        self._fresh: list[dict[str, np.ndarray]] = []  # evidence not yet tried for attachment
        self.camp_of_node = np.zeros(0, dtype=np.int64)
        self.camp_ids: list[str] = []
        self.camp_risk = np.zeros(0)
        self.malicious = np.zeros(0, dtype=bool)
        self.detected_at: dict[str, int] = {}
        # held verdicts: per node, the risk of the malicious campaign it was last
        # in (0: none) and when that campaign's own aggregate last confirmed it;
        # per campaign, the time its verdict was last confirmed and whether its
        # risk is a held floor
        self._held_risk = np.zeros(0)
        self._held_at = np.zeros(0, dtype=np.int64)
        self.camp_confirmed = np.zeros(0, dtype=np.int64)
        self.camp_held = np.zeros(0, dtype=bool)
        self.risk_by_account: dict[str, float] = {}
        # risk_by_account as known before this window's rebuild/rescore
        # (attachments included): what the replay may use at an entity's own
        # event times. Reset by observe (a window without refresh: the current
        # risk) and after refresh's attachments; _rescore replaces
        # risk_by_account, never mutates it.
        self._early_risk: dict[str, float] = self.risk_by_account
        self.last_result: ScoreResult | None = None
        self.n_requests = np.zeros(0)
        self.first_seen = np.zeros(0)
        self.camp_cap: np.ndarray | None = None
        self._scorer: Scorer | None = None
        self._last_now = -(2**62)
        self._attacher = CampaignAttacher(self.p.graph.min_weight)
        self._state_row = np.zeros(0, dtype=np.int64)
        self._reasons: dict[int, list[dict[str, object]]] | None = None
        self._links: tuple[np.ndarray, Links] | None = None
        self._excluded = np.zeros(0, dtype=bool)
        self._eu = np.zeros(0, dtype=bool)  # node is a reseller's end user
        self._last_rebuild = -(2**62)
        self._last_rescore = -(2**62)
        self._rows_at_rebuild = 0
        self._suspects_at_rebuild = 0
        self.rebuilds = 0
        self._final = False
        self._freq = pl.DataFrame(schema={"key": pl.UInt64, "kind": pl.Int8, "df": pl.UInt32})
        self._eu_state: EntityState | None = None
        self._state: EntityState | None = None
        # which campaign members share payment / infrastructure with another
        # (linking.accountable; remembered while their campaign is unchanged)
        self._hard = HardLinks()
        self._accountable_share = np.zeros(0)  # per campaign, from the last re-score
        self._profiles = CampaignProfiles()
        self._first_ms = np.zeros(0, np.int64)  # per node: its first request
        self._reseller_of = np.zeros(0, np.uint64)  # per end-user node: its reseller's key
        self._grouped = np.zeros(0, bool)  # node placed by a tooling group at the last rebuild
        self._group_scorer = GroupScorer()
        self._tooling_of: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        self._log_start = np.iinfo(np.int64).max
        self._last_cohort_check = -(2**62)
        # the join-only (tooling) rows of each pending frame and raw chunk
        self._tooling = PartRows(IS_ATTACH_ONLY, lambda rows: rows)

    # ---- observe ----------------------------------------------------------------
    def _nodes(self, ids: pl.Series, end_user: bool = False) -> np.ndarray:
        node_of = self.node_of
        ids_l = ids.to_list()
        new = [a for a in dict.fromkeys(ids_l) if a not in node_of]
        if new:
            start = len(self.node_ids)
            self.node_ids.extend(new)
            node_of.update({a: start + i for i, a in enumerate(new)})
            index = {} if end_user else self.facts.index
            self._grow(len(self.node_ids))
            rows = np.fromiter((index.get(a, -1) for a in new), np.int64, len(new))
            self._acct_row[start : len(self.node_ids)] = rows
            self._eu[start : len(self.node_ids)] = end_user
            if len(self.facts.reseller):
                marked = (rows >= 0) & self.facts.reseller[np.maximum(rows, 0)]
                self._excluded[start : len(self.node_ids)] = marked
            self._pay_rows(np.arange(start, len(self.node_ids)))
        return np.fromiter(map(node_of.__getitem__, ids_l), dtype=np.int64, count=len(ids_l))

    def _grow(self, n: int) -> None:
        old = len(self.camp_of_node)
        if n <= old:
            return
        cap = max(n, 2 * old, 1024)
        self.camp_of_node = np.concatenate([self.camp_of_node, np.full(cap - old, -1, np.int64)])
        self._excluded = np.concatenate([self._excluded, np.zeros(cap - old, bool)])
        self._acct_row = np.concatenate([self._acct_row, np.full(cap - old, -1, np.int64)])
        self._reseller_key = np.concatenate([self._reseller_key, np.zeros(cap - old, np.uint64)])
        self._eu = np.concatenate([self._eu, np.zeros(cap - old, bool)])
        self._held_risk = np.concatenate([self._held_risk, np.zeros(cap - old)])
        self._held_at = np.concatenate([self._held_at, np.zeros(cap - old, np.int64)])
        never = np.full(cap - old, np.iinfo(np.int64).max, np.int64)
        self._first_ms = np.concatenate([self._first_ms, never])
        self._reseller_of = np.concatenate([self._reseller_of, np.zeros(cap - old, np.uint64)])
        self._grouped = np.concatenate([self._grouped, np.zeros(cap - old, bool)])

    def _account_fact(self, name: str, nodes: np.ndarray) -> np.ndarray:
        arr: np.ndarray = getattr(self.facts, name)
        rows = self._acct_row[nodes]
        out = np.zeros(len(nodes), np.uint64)
        if len(arr):
            out[rows >= 0] = arr[rows[rows >= 0]]
        return out

    def _pay_rows(self, nodes: np.ndarray) -> None:
        pay = self._account_fact("pay", nodes)
        keep = (pay != 0) & ~self._excluded[nodes]
        if keep.any():
            key = mix(pay[keep], np.ones(int(keep.sum()), np.uint64), KIND_CODE["payment"])
            self._add(
                {
                    "key": key,
                    "kind": np.full(len(key), KIND_CODE["payment"], np.int8),
                    "node": nodes[keep].astype(np.int32),
                    "a": pay[keep],
                    "b": np.zeros(len(key), np.uint64),
                }
            )

    def _add(self, ev: dict[str, np.ndarray]) -> None:
        self._raw.append(ev)
        self._fresh.append(ev)
        self._raw_rows += len(ev["key"])
        self._rows_total += len(ev["key"])
        if self._raw_rows >= self.p.compact_rows:
            self._pending.append(compact(self._raw))
            if len(self._pending) > MAX_PENDING_CHUNKS:  # bound memory on long gaps
                self._pending = [compact([], pl.concat(self._pending))]
            self._raw, self._raw_rows = [], 0

    def observe(self, feat: pl.DataFrame, window_end_ms: int) -> None:
        """Fold one window of feature rows into the evidence tables."""
        self._early_risk = self.risk_by_account
        if feat.height == 0:
            return
        nodes = self._nodes(feat["account_id"])
        ts = np.asarray(feat["ts"].to_numpy()).astype("datetime64[ms]").view(np.int64)
        self._seen(nodes, ts)
        facts = row_facts(feat, self.p.sync_ms)
        keep = ~self._excluded[nodes]
        if not keep.all():
            self._observe_end_users(feat, facts, ~keep, nodes, ts)
            if not keep.any():
                return
            facts = {k: v[keep] for k, v in facts.items()}
            nodes = nodes[keep]
        facts["signup"] = self._account_fact("signup", nodes)
        facts["email"] = self._account_fact("email", nodes)
        self._add(evidence_arrays(facts, nodes))

    def _seen(self, nodes: np.ndarray, ts: np.ndarray) -> None:
        """Remember each node's first request time ``ts`` (ms; and the log's start)."""
        if len(ts):
            self._log_start = min(self._log_start, int(ts.min()))
            np.minimum.at(self._first_ms, nodes, ts)

    def _observe_end_users(
        self,
        feat: pl.DataFrame,
        facts: dict[str, np.ndarray],
        resold: np.ndarray,
        acct_nodes: np.ndarray,
        ts: np.ndarray,
    ) -> None:
        """Evidence of the end users in rows of reseller accounts (module docstring);
        ``acct_nodes``/``ts``: each row's account node and time (ms)."""
        eu = feat["end_user_id"]
        has = resold & eu.is_not_null().to_numpy()
        if not has.any():
            return
        mask = pl.Series(has)
        acct = feat["account_id"].filter(mask)
        nodes = self._nodes(acct + "\x1f" + eu.filter(mask), end_user=True)
        self._seen(nodes, ts[has])
        reseller = self._reseller_keys(acct_nodes[has])
        self._reseller_of[nodes] = reseller
        eu_facts = {"reseller": reseller, "template": facts["template"][has]}
        eu_facts["sync"] = facts["sync"][has]
        eu_facts["tooling"] = facts["tooling"][has]
        self._add(evidence_arrays(eu_facts, nodes, END_USER_KINDS))

    def _reseller_keys(self, acct_nodes: np.ndarray) -> np.ndarray:
        """``str_keys(account_id, 37)`` of reseller account nodes, hashed once per
        account (their account ids are the readable labels of these keys)."""
        key = self._reseller_key[acct_nodes]
        todo = np.unique(acct_nodes[key == 0])
        if len(todo):
            ids = pl.Series([self.node_ids[i] for i in todo.tolist()], dtype=pl.String)
            got = str_keys(ids, 37)
            self._reseller_key[todo] = got
            for k, a in zip(got.tolist(), ids.to_list(), strict=True):
                self.facts.labels.setdefault(k, a)
            key = self._reseller_key[acct_nodes]
        return key

    # ---- refresh ----------------------------------------------------------------
    def refresh(
        self,
        now_ms: int,
        state: EntityState,
        scorer: Scorer,
        end_users: EntityState | None = None,
    ) -> None:
        """Attach, rebuild and re-score as the schedule in the module docstring says.

        ``state``: the accounts' state; ``end_users``: the end users' (for
        end-user nodes; without it they are left out of campaign scores).
        """
        self._eu_state = end_users
        self._state = state
        final = now_ms <= self._last_now  # a repeated time: the replay's hindsight pass
        self._final = final
        self._last_now = max(self._last_now, now_ms)
        if len(self._attach()):
            self._reasons = None
        self._early_risk = self.risk_by_account
        changed = final
        new_rows = self._rows_total - self._rows_at_rebuild
        grown = new_rows > 0 and new_rows >= self.p.growth * self._rows_at_rebuild
        since = now_ms - self._last_rebuild
        stale = new_rows > 0 and since >= self.p.max_rebuild_gap_ms
        due = (grown and since >= self.p.rebuild_every_ms) or stale
        watch = self.p.suspect_rebuild > 0
        if watch and not due and new_rows > 0 and since >= self.p.rebuild_every_ms:
            new_suspects = self._unexplained(state) - self._suspects_at_rebuild
            due = new_suspects >= self.p.suspect_rebuild
        if not due and new_rows > 0 and since >= self.p.rebuild_every_ms:
            due = self._cohort_due(now_ms)
        rebuilt = due or (final and new_rows > 0)
        if rebuilt:
            self._rebuild(state)
            self._last_rebuild = now_ms
            changed = True
        if changed or now_ms - self._last_rescore >= self.p.rescore_every_ms:
            self._rescore(now_ms, state, scorer, changed)
            self._last_rescore = now_ms
        if watch and rebuilt:
            self._suspects_at_rebuild = self._unexplained(state)

    def _unexplained(self, state: EntityState) -> int:
        """Accounts at review or above on their own that no malicious campaign holds."""
        n = len(self.node_ids)
        accts = np.flatnonzero(~self._eu[:n] & ~self._excluded[:n])
        rows = self._rows_in(state, accts)
        known = rows >= 0
        reviewed = np.zeros(len(accts), bool)
        reviewed[known] = ~np.isnan(state.cols["first_review_ms"][rows[known]])
        camp = self.camp_of_node[accts]
        held = np.zeros(len(accts), bool)
        if len(self.malicious):
            inside = camp >= 0
            held[inside] = self.malicious[camp[inside]]
        return int((reviewed & ~held).sum())

    @property
    def members(self) -> pl.DataFrame:
        """The merged evidence (key, kind, node, a, b, n), sorted by key and holder rank."""
        return self._table.frame()

    def _merge(self) -> None:
        if self._raw or self._pending:
            parts: list[pl.DataFrame | dict[str, np.ndarray]] = [*self._pending, *self._raw]
            self._raw, self._raw_rows, self._pending = [], 0, []
            self._table.merge(parts, len(self.node_ids))
            self._links = None

    def _rebuild(self, state: EntityState) -> None:
        self._merge()
        self._hard.rebuilt()
        self._rows_at_rebuild = self._rows_total
        self._fresh = []
        self._mark_resellers(state)
        n = len(self.node_ids)
        strong = self.p.graph.min_weight
        weak = 0.0 < self.p.weak_edge < strong
        gp = replace(self.p.graph, min_weight=self.p.weak_edge) if weak else self.p.graph
        rows = self._table.cols
        self._freq, edges = sorted_key_graph(
            rows["key"], rows["kind"], rows["node"], gp, self._excluded[:n]
        )
        if weak:
            labels = two_stage_communities(
                edges, n, self.p.graph, self.p.weak_edge, self.p.min_members
            )
        else:
            labels = communities(edges, n, self.p.graph)
        labels = self._with_groups(self._with_cohorts(labels), self._table.cols)
        ids, inv, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        big = (ids >= 0) & (sizes >= self.p.min_members)
        new_index = np.cumsum(big) - 1
        camp = np.where(big[inv], new_index[inv], -1)
        self.camp_of_node[:n] = camp
        self.camp_of_node[n:] = -1
        earliest = np.full(int(big.sum()), n, dtype=np.int64)
        members = np.flatnonzero(camp >= 0)
        np.minimum.at(earliest, camp[members], members)
        self.camp_ids = [campaign_id_of(self.node_ids[i]) for i in earliest.tolist()]
        self.rebuilds += 1
        self._reasons = None

    def _cohort_candidates(self, placed: np.ndarray) -> np.ndarray:
        """Nodes an activation cohort may take (linking/cohort.py): not placed,
        not excluded, first seen at least ``warmup`` after the log began."""
        n = len(self.node_ids)
        start = self._log_start + self.p.cohort.warmup_ms
        return ~placed & ~self._excluded[:n] & (self._first_ms[:n] >= start)

    def _with_cohorts(self, labels: np.ndarray) -> np.ndarray:
        """Community labels plus activation cohorts among the nodes left out of
        every campaign-sized community (new labels after the existing ones)."""
        if self.p.cohort.window_ms <= 0:
            return labels
        _, inv, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        placed = (labels >= 0) & (sizes[inv] >= self.p.min_members)
        n = len(labels)
        cand = self._cohort_candidates(placed)
        coh = activation_cohorts(self.members, self._freq, self._first_ms[:n], cand, self.p.cohort)
        base = int(labels.max()) + 1 if n else 0
        return np.where(coh >= 0, coh + base, labels)

    def _with_groups(self, labels: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        """Labels plus tooling groups of resellers' end users (linking/resold.py)
        among the end-user nodes left out of every campaign-sized community."""
        _, inv, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        placed = (labels >= 0) & (sizes[inv] >= self.p.min_members)
        n = len(labels)
        cand = ~placed & self._eu[:n] & ~self._excluded[:n]
        grp, keys = tooling_groups(tooling_rows([rows]), self._reseller_of, cand, self.p.groups)
        self._grouped[:n] = grp >= 0
        self._attacher.full_keys = keys  # joining such a group: its keys count alone
        base = int(labels.max()) + 1 if n else 0
        return np.where(grp >= 0, grp + base, labels)

    def _cohort_due(self, now_ms: int) -> bool:
        """A rebuild is due when the evidence since the last one holds an
        activation cohort of accounts first seen within two cohort windows that
        are in no malicious campaign, at least one of them in no campaign at all,
        or the evidence so far a tooling group of resellers' end users
        (linking/resold.py) with such an end user (checked at most every
        ``rebuild_every``)."""
        if not (self._raw or self._pending):
            return False
        if now_ms - self._last_cohort_check < self.p.rebuild_every_ms:
            return False
        self._last_cohort_check = now_ms
        n = len(self.node_ids)
        # recent arrivals in no malicious campaign: a cohort found thin (not yet
        # malicious) is regrouped with the accounts that joined its burst since,
        # for as long as its activation is recent (never on an old cohort)
        camp = self.camp_of_node[:n]
        held = np.zeros(n, bool)
        if len(self.malicious):
            held[camp >= 0] = self.malicious[camp[camp >= 0]]
        fresh = self._first_ms[:n] >= now_ms - 2 * self.p.cohort.window_ms
        if self._new_cohort(camp, held | ~fresh):
            return True
        horizon = max(self.p.cohort.window_ms, self.p.rebuild_every_ms)
        return self._new_group(camp, held, self._first_ms[:n] >= now_ms - 2 * horizon)

    def _new_cohort(self, camp: np.ndarray, out: np.ndarray) -> bool:
        """An activation cohort in the evidence since the last rebuild among the
        candidates not ``out``, with an account in no campaign (``camp``)."""
        if self.p.cohort.window_ms <= 0:
            return False
        n = len(camp)
        cand = self._cohort_candidates(out)
        if not cand.any():
            return False
        rows = []
        for ev in self._tooling_parts():  # tooling rows of candidates only
            keep = cand[ev["node"]]
            if keep.any():
                rows.append({c: ev[c][keep] for c in ("key", "kind", "node")})
        if not rows:
            return False
        recent = pl.DataFrame({c: np.concatenate([r[c] for r in rows]) for c in rows[0]})
        coh = activation_cohorts(recent, self._freq, self._first_ms[:n], cand, self.p.cohort)
        # only new information: a cohort with an account no campaign holds yet
        return bool(((coh >= 0) & (camp < 0)).any())

    def _tooling_parts(self) -> list[dict[str, np.ndarray]]:
        """The join-only (tooling) rows (key, kind, node) of each pending frame and
        raw evidence chunk, in that order. Each chunk is filtered once, not at
        every hourly check until the next rebuild merges it."""
        return self._tooling.of([*self._pending, *self._raw])

    def _new_group(self, camp: np.ndarray, held: np.ndarray, fresh: np.ndarray) -> bool:
        """A new tooling group (:func:`distillwatch.linking.resold.due_groups`)
        whose pooled traffic (scored as the group's campaign would be) reaches
        ``review``: suspicion the graph does not hold yet."""
        n = len(camp)
        eu = self._eu[:n] & ~self._excluded[:n]
        if self.p.groups.max_share <= 0 or self._state is None or self._eu_state is None:
            return False
        if not (eu & fresh & (camp < 0)).any():
            return False
        rows = tooling_rows([self._table_tooling(), *self._pending_tooling(), *self._raw])
        grouped = self._grouped[:n]
        labels = due_groups(rows, self._reseller_of, eu, camp, held, fresh, grouped, self.p.groups)
        nodes = np.flatnonzero(labels >= 0)
        state_rows = self._rows_in(self._state, nodes)
        have = state_rows >= 0
        if not have.any():
            return False
        k = int(labels.max()) + 1
        view = aggregate_state(self._eu_state, state_rows[have], labels[nodes][have], k)
        risk = self._group_scorer.scorer(self.settings).score(view).risk
        return bool((risk >= self.settings.thresholds["review"]).any())

    def _table_tooling(self) -> dict[str, np.ndarray]:
        """The evidence table's ``reseller+tooling`` rows, cached while the table
        (replaced, never modified in place, by a merge) stays the same."""
        key = self._table.cols["key"]
        if self._tooling_of is None or self._tooling_of[0] is not key:
            self._tooling_of = (key, tooling_rows([self._table.cols]))
        return self._tooling_of[1]

    def _pending_tooling(self) -> list[dict[str, np.ndarray]]:
        return [{c: f[c].to_numpy() for c in ("key", "kind", "node", "a")} for f in self._pending]

    def _rows_in(self, state: EntityState, nodes: np.ndarray) -> np.ndarray:
        """State row of each node (-1 while it has no state yet), cached.

        Account nodes index ``state``, end-user nodes the end users' state.
        """
        n = len(self.node_ids)
        if len(self._state_row) < n:
            grow = np.full(n - len(self._state_row), -1, dtype=np.int64)
            self._state_row = np.concatenate([self._state_row, grow])
        rows = self._state_row[nodes]
        miss = nodes[rows < 0]
        if len(miss):
            empty: dict[str, int] = {}
            where = (state.index, empty if self._eu_state is None else self._eu_state.index)
            got = np.array(
                [
                    where[e].get(self.node_ids[i], -1)
                    for i, e in zip(miss.tolist(), self._eu[miss].tolist(), strict=True)
                ],
                dtype=np.int64,
            )
            self._state_row[miss] = got
            rows = self._state_row[nodes]
        return np.asarray(rows, dtype=np.int64)

    def _mark_resellers(self, state: EntityState) -> None:
        n = len(self.node_ids)
        accts = np.flatnonzero(~self._eu[:n])
        rows = self._rows_in(state, accts)
        known = rows >= 0
        if known.any():
            view = state.view(rows[known])
            many = view.distinct("end_users") >= self.settings.min_end_users
            flagged = view["reseller"] == 1.0
            ex = self._excluded[:n]
            ex[accts[known][many | flagged]] = True

    def _rescore(self, now_ms: int, state: EntityState, scorer: Scorer, rebuilt: bool) -> None:
        self._hard.tick()
        was_malicious = self.malicious
        n_camp = len(self.camp_ids)
        nodes = np.flatnonzero(self.camp_of_node[: len(self.node_ids)] >= 0)
        rows = self._rows_in(state, nodes)
        have = rows >= 0
        self.risk_by_account = {}
        if n_camp == 0 or not have.any():
            self.camp_risk, self.malicious = np.zeros(n_camp), np.zeros(n_camp, bool)
            self.camp_confirmed = np.zeros(n_camp, np.int64)
            self.camp_held = np.zeros(n_camp, bool)
            self._attacher.clear()
            return
        group = self.camp_of_node[nodes[have]]
        eu = self._eu[nodes[have]]
        more: tuple[tuple[EntityState, np.ndarray, np.ndarray], ...] = ()
        if eu.any() and self._eu_state is not None:
            more = ((self._eu_state, rows[have][eu], group[eu]),)
        view = aggregate_state(state, rows[have][~eu], group[~eu], n_camp, more)
        res = scorer.score(view)
        grouped = np.unique(self.camp_of_node[nodes[self._grouped[nodes]]])
        res = self._group_scorer.rescore(view, res, grouped, scorer.settings)
        size = np.bincount(self.camp_of_node[nodes], minlength=n_camp)
        self._hold(now_ms, nodes, res.risk, size)
        if self.p.profile_weight > 0:
            self._profiles.fit(view, self.malicious, state)
        self.last_result, self.n_requests, self.first_seen = res, view["n"], view["first_ts"]
        self.camp_cap, self._scorer = view["cap"], scorer
        for c in np.flatnonzero(self.malicious).tolist():
            self.detected_at.setdefault(self.camp_ids[c], now_ms)
        bad = nodes[self.malicious[self.camp_of_node[nodes]]]
        self._accountable_share = self._share_accountable(bad, n_camp)
        risk = self.camp_risk[self.camp_of_node[bad]]
        self.risk_by_account = {
            self.node_ids[i]: float(r) for i, r in zip(bad.tolist(), risk.tolist(), strict=True)
        }
        if self._final:
            self._rejoin()
        elif rebuilt or not np.array_equal(self.malicious, was_malicious):
            self._build_index()
            self._catch_up()

    def _share_accountable(self, bad: np.ndarray, n_camp: int) -> np.ndarray:
        """Per campaign: the share of its members that are accountable customers."""
        size = np.bincount(self.camp_of_node[bad], minlength=n_camp)
        held = np.bincount(self.camp_of_node[bad[self._accountable_nodes(bad)]], minlength=n_camp)
        return held / np.maximum(size, 1)

    def _own_risk_only(self, ids: list[str]) -> np.ndarray:
        """For members of malicious campaigns: which keep their own risk
        (accountable customers tied to the campaign by content alone:
        :mod:`.accountable`), judged on their state now."""
        nodes = np.array([self.node_of[a] for a in ids], dtype=np.int64)
        out = np.zeros(len(nodes), dtype=bool)
        cand = np.flatnonzero(self._accountable_nodes(nodes))
        if len(cand) == 0:
            return out
        # a hard fact shared with a member that is not accountable itself (the
        # farm) ties it to the campaign. Otherwise: kept out when it shares
        # one with other accountable members (an organisation: colleagues on
        # one office network), or when most of the campaign is accountable (a
        # crowd on a public template); a lone aged account that shares nothing
        # hard with anyone in a campaign of throwaways is not (bought accounts)
        ties = self._hard.of(
            nodes[cand], self.camp_of_node, self._evidence_parts, self._accountable_nodes
        )
        camp = self.camp_of_node[nodes[cand]]
        share = self._accountable_share
        crowd = np.zeros(len(cand), dtype=bool)
        known = camp < len(share)
        crowd[known] = share[camp[known]] >= MIN_SHARE
        out[cand[(ties == PEERS) | ((ties == NONE) & crowd)]] = True
        return out

    def _accountable_nodes(self, nodes: np.ndarray) -> np.ndarray:
        """Which of ``nodes`` are accountable customers now (end users never are)."""
        assert self._state is not None and self._scorer is not None
        out = np.zeros(len(nodes), dtype=bool)
        rows = self._rows_in(self._state, nodes)
        ok = np.flatnonzero((rows >= 0) & ~self._eu[nodes])
        # accountable customers are verified (Scorer.accountable): the rest need
        # no view (a farm's shared keys have thousands of unverified holders)
        ok = ok[self._state.cols["verified"][rows[ok]] == 1.0]
        if len(ok):
            trusted, established = self._scorer.accountable(self._state.view(rows[ok]))
            out[ok] = trusted | established
        return out

    def _evidence_parts(self) -> list[Any]:
        """All evidence so far: the merged table, pending frames, raw rows."""
        return [self._table.cols, *self._pending, *self._raw]

    def _hold(self, now_ms: int, nodes: np.ndarray, own: np.ndarray, size: np.ndarray) -> None:
        """Campaign risk and verdict from the aggregate risk ``own``, with held
        verdicts as floors (module docstring); remembers them on the members."""
        review = self.settings.thresholds["review"]
        n_camp = len(own)
        camp = self.camp_of_node[nodes]
        live = (self._held_risk[nodes] > 0) & (
            now_ms - self._held_at[nodes] <= self.p.verdict_hold_ms
        )
        k = np.bincount(camp[live], minlength=n_camp)
        floor = np.bincount(camp[live], self._held_risk[nodes][live], n_camp) / np.maximum(k, 1)
        since = np.full(n_camp, np.iinfo(np.int64).max)
        np.minimum.at(since, camp[live], self._held_at[nodes][live])
        confirmed = own >= review
        held = ~confirmed & (2 * k >= size) & (k > 0) & (floor > own)
        risk = np.where(held, floor, own)
        self.camp_risk = risk
        self.malicious = (risk >= review) & (size >= self.p.min_members)
        self.camp_held = held & self.malicious
        self.camp_confirmed = np.where(confirmed, now_ms, np.where(held, since, 0))
        bad = self.malicious[camp]
        self._held_risk[nodes[bad]] = risk[camp[bad]]
        self._held_at[nodes[bad]] = self.camp_confirmed[camp[bad]]

    def _rejoin(self) -> None:
        """Hindsight: the final partition leaves out accounts that joined a
        campaign by attachment but share too little with any one member to be
        placed by the graph (their final action would fall back to their own
        signals); the same join rule, on all their evidence, puts them back.
        Nothing is attached after this (the attacher is cleared)."""
        self._build_index()
        self._catch_up()
        self._attacher.clear()

    def _build_index(self) -> None:
        n = len(self.node_ids)
        self._attacher.build_index(
            self.members, self.camp_of_node, self.malicious, self._excluded[:n], self._freq
        )

    def _catch_up(self) -> None:
        """Try every unlinked account's evidence so far against a new malicious-key index.

        Attachment otherwise sees only evidence that arrives after the index is
        built, so an account active since before its campaign was found would
        have to build its link evidence again from its next requests. Same
        rule (summed distinct key weight against one campaign reaches
        ``min_weight``), on evidence at or before now. The accounts that join
        are members for the next round (their keys count for others: the
        index entries of the keys they hold are recomputed, and the evidence
        on those keys tried again), up to ``catch_up_rounds`` rounds.
        """
        # the evidence does not change between rounds; only the membership does
        known = [
            {"key": f["key"].to_numpy(), "node": f["node"].to_numpy()}
            for f in (self.members, *self._pending)
            if f.height
        ]
        table_first = self.members.height > 0  # known[0] is the key-sorted table
        known += self._raw
        fresh = known
        joined = np.zeros(0, np.int64)
        for r in range(self.p.catch_up_rounds):
            if self._attacher.index is None:
                return
            if r:
                # only the entries of the keys the joined nodes hold change,
                # so only evidence on those keys can tip another node over
                n = len(self.node_ids)
                changed = self._attacher.update_index(
                    self.members,
                    self.camp_of_node,
                    self.malicious,
                    self._excluded[:n],
                    self._freq,
                    joined,
                )
                fresh = [
                    on_keys(f, changed, key_sorted=table_first and i == 0)
                    for i, f in enumerate(known)
                ]
            joined = self._attach(fresh)
            if len(joined) == 0:
                return

    def _attach(self, fresh: list[dict[str, np.ndarray]] | None = None) -> np.ndarray:
        """Put unlinked accounts whose evidence points at a malicious campaign into it
        (:mod:`distillwatch.linking.attach`); ``fresh``: that evidence (default:
        what arrived since the last attachment). Returns the nodes that joined."""
        if fresh is None:
            fresh, self._fresh = self._fresh, []
        on = self.p.profile_weight > 0 or self.p.cohort_join_weight > 0
        corroborate = self._corroborate if on else None
        nodes, camps = self._attacher.attach(fresh, self.camp_of_node, self._excluded, corroborate)
        if len(nodes) == 0:
            return nodes
        self.camp_of_node[nodes] = camps
        self._held_risk[nodes] = self.camp_risk[camps]
        self._held_at[nodes] = self.camp_confirmed[camps]
        for i, c in zip(nodes.tolist(), camps.tolist(), strict=True):
            self.risk_by_account[self.node_ids[i]] = float(self.camp_risk[c])
        return nodes

    def _corroborate(self, nodes: np.ndarray, camps: np.ndarray, tool: np.ndarray) -> np.ndarray:
        """Profile bonus of (node, campaign) pairs (:mod:`distillwatch.linking.profile`;
        0 for nodes without state yet) plus the co-activation bonus
        (:meth:`_coactivation`; ``tool``: each pair's best tooling-key weight)."""
        out = self._coactivation(nodes, camps, tool)
        if self._state is None or self.p.profile_weight <= 0:
            return out
        rows = self._rows_in(self._state, nodes)
        for eu in (False, True):
            st = self._eu_state if eu else self._state
            sel = np.flatnonzero((rows >= 0) & (self._eu[nodes] == eu))
            if st is None or len(sel) == 0:
                continue
            p = self.p
            out[sel] += self._profiles.bonus(
                st.view(rows[sel]), camps[sel], p.profile_weight, p.profile_llr_lo, p.profile_llr_hi
            )
        return out

    def _coactivation(self, nodes: np.ndarray, camps: np.ndarray, tool: np.ndarray) -> np.ndarray:
        """``cohort_join_weight`` for (node, campaign) pairs whose node was first
        seen (after the warm-up) within ``cohort_window`` of at least
        ``min_members - 1`` other accounts of that campaign: members, or
        unlinked accounts whose evidence points at it too
        (:func:`distillwatch.linking.cohort.coactive_peers`). Below
        ``min_weight``: it corroborates a shared key, never joins alone.

        When the pair's evidence includes a tooling key the campaign holds
        (``tool``: its weight, tooling base weight x campaign share) of which the
        campaign's accounts are at least ``cohort_min_share``, the two cues are
        the activation-cohort rule itself (a configuration mostly the campaign's,
        first seen with several of its accounts): ``min_weight``, a join, as the
        next rebuild's cohort would take it."""
        out = np.zeros(len(nodes))
        w, coh = self.p.cohort_join_weight, self.p.cohort
        if w <= 0 or coh.window_ms <= 0 or len(nodes) == 0:
            return out
        n = len(self.node_ids)
        camp = self.camp_of_node[:n]
        want = np.unique(camps)
        mem = np.flatnonzero(np.isin(camp, want))
        hit_nodes, hit_camps = self._attacher.pending_hits()
        peer_nodes = np.concatenate([mem, hit_nodes]).astype(np.int64)
        peer_camps = np.concatenate([camp[mem], hit_camps]).astype(np.int64)
        peers = coactive_peers(
            nodes.astype(np.int64), camps, peer_nodes, peer_camps, self._first_ms, coh.window_ms
        )
        new = self._first_ms[nodes] >= self._log_start + coh.warmup_ms
        coactive = new & (peers >= self.p.min_members - 1)
        out[coactive] = w
        cohort = tool >= coh.min_share * TOOLING_BASE - 1e-9
        out[coactive & cohort] = max(w, self.p.graph.min_weight)
        return out

    def scorer_reasons(self, c: int) -> list[dict[str, Any]]:
        """The signals behind campaign ``c``'s aggregate risk (first, when its
        risk is a held verdict, that verdict)."""
        if self._scorer is None or self.last_result is None or c >= len(self.last_result.risk):
            return []
        out = self._scorer.reasons(self.last_result, c)
        if c < len(self.camp_held) and self.camp_held[c]:
            from distillwatch.engine.verdicts import rfc3339

            since = rfc3339(float(self.camp_confirmed[c]))
            own = float(self.last_result.risk[c])
            held = {
                "signal": "campaign_verdict_held",
                "value": round(float(self.camp_risk[c]), 4),
                "detail": f"most members were in a campaign found malicious (risk"
                f" {self.camp_risk[c]:.2f}), last confirmed {since}; held while its"
                f" evidence accrues (its own aggregate risk now {own:.2f})",
            }
            out = [held, *out]
        return out

    # ---- queries ----------------------------------------------------------------
    def campaign_risk(self, account_ids: pl.Series, early: bool = False) -> np.ndarray:
        """Risk of each account's campaign when that campaign is malicious, else 0.

        ``early``: as known before the last refresh's rebuild and re-score
        (after its attachments), i.e. without this window's other accounts.
        """
        ids = account_ids.to_list()
        get = (self._early_risk if early else self.risk_by_account).get
        risk = np.array([get(a, 0.0) for a in ids], dtype=np.float64)
        at = np.flatnonzero(risk > 0)
        if len(at) and self._state is not None and self._scorer is not None:
            risk[at[self._own_risk_only([ids[i] for i in at.tolist()])]] = 0.0
        return risk

    def farm_tied(self, account_ids: list[str]) -> np.ndarray:
        """Which accounts share a hard fact (payment, e-mail domain, sign-up
        burst, IP prefix, reseller) with a member of their campaign that is not
        an accountable customer: tied to the operator, not just to the content
        (:mod:`.accountable`). Accounts in no campaign: False."""
        out = np.zeros(len(account_ids), dtype=bool)
        nodes = np.array([self.node_of.get(a, -1) for a in account_ids], dtype=np.int64)
        at = np.flatnonzero(nodes >= 0)
        at = at[self.camp_of_node[nodes[at]] >= 0]
        if len(at) == 0 or self._state is None or self._scorer is None:
            return out
        ties = self._hard.of(
            nodes[at], self.camp_of_node, self._evidence_parts, self._accountable_nodes
        )
        out[at] = ties == FARM
        return out

    def campaign_of(self, account_id: str) -> str | None:
        node = self.node_of.get(account_id)
        if node is None or self.camp_of_node[node] < 0:
            return None
        return self.camp_ids[int(self.camp_of_node[node])]

    def link_reasons(self, account_id: str) -> list[dict[str, object]]:
        node = self.node_of.get(account_id)
        if node is None:
            return []
        if self._reasons is None:
            self._merge()
            n = len(self.node_ids)
            camp = self.camp_of_node[:n]
            self._reasons, links = reasons_and_links(self.members, camp, self.facts.labels)
            # campaign_records' links, from the same pass: valid while the
            # evidence table and the campaigns are these
            self._links = (camp.copy(), links)
        return self._reasons.get(node, [])

    def _campaign_links(self) -> Links:
        """:func:`campaign_links`, from :meth:`link_reasons`' pass when nothing changed since."""
        n = len(self.node_ids)
        if self._links is not None:
            camp, links = self._links
            if np.array_equal(camp, self.camp_of_node[:n]):
                return links
        return campaign_links(self)

    def campaign_records(self) -> list[dict[str, Any]]:
        self.link_reasons("")  # make sure evidence is merged
        n = len(self.node_ids)
        links = self._campaign_links()
        camp = self.camp_of_node[:n]
        order = np.argsort(camp, kind="stable")
        bounds = np.searchsorted(camp[order], np.arange(len(self.camp_ids) + 1))
        return [
            campaign_record(self, c, cid, order[bounds[c] : bounds[c + 1]], links.get(c, []))
            for c, cid in enumerate(self.camp_ids)
        ]
