"""Evidence keys: what two accounts must share to be linked, as 64-bit blocking keys.

Every link kind is a *conjunction* of two facts (shared IP prefix **and** the
same prompt template, same sign-up burst **and** same client signature, ...),
except a shared payment fingerprint, which is strong on its own. Blocking on a
conjunctive key means any two accounts under one key already have evidence of
two kinds, so a benchmark question that many unrelated eval harnesses send, or
a huge public /24, cannot glue unrelated accounts together by itself.

Facts per request row: ``prefix`` (/24 or /48 of the IP), ``client``
(user-agent x parameter signature), ``template`` (slot-normalised template),
``near`` (LSH band 0 of the template MinHash), ``system`` (system prompt),
``sync`` (template x short time bucket: SynchroTrap/CopyCatch synchrony),
``params`` (parameter signature: max_tokens, temperature, n, logprobs,
reasoning effort, tools), ``tooling`` (system prompt x parameter signature).
Facts per account (from the accounts table): ``pay`` (payment fingerprint),
``email`` (non-public e-mail domain), ``signup`` (tier x created-at bucket).

End users of a reseller are nodes of their own (the reseller never is: its
customers must not be linked through it). Their IP, client and system prompt
are the reseller's, shared by all its customers, so they link only on content
within the same reseller: ``reseller`` x ``template`` and ``reseller`` x
``sync`` (:data:`END_USER_KINDS`), and join known campaigns on ``reseller``
x ``tooling``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import polars as pl

from distillwatch.features.fingerprint import fmix64
from distillwatch.linking.order import argsort_hashed, run_starts

PUBLIC_EMAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "proton.me", "protonmail.com", "icloud.com", "me.com",
        "mac.com", "aol.com", "gmx.com", "gmx.de", "web.de", "mail.com", "mail.ru",
        "yandex.ru", "yandex.com", "qq.com", "163.com", "126.com", "sina.com", "naver.com",
        "zoho.com", "tutanota.com", "fastmail.com",
    }
)  # fmt: skip

# link kind -> (fact a, fact b or None, base weight)
LINKS: dict[str, tuple[str, str | None, float]] = {
    "payment": ("pay", None, 3.0),
    "signup+prefix": ("signup", "prefix", 1.0),
    "signup+client": ("signup", "client", 1.0),
    "email+prefix": ("email", "prefix", 1.0),
    "prefix+template": ("prefix", "template", 1.0),
    "prefix+near": ("prefix", "near", 0.8),
    "prefix+client": ("prefix", "client", 0.6),
    "client+template": ("client", "template", 1.0),
    "system+template": ("system", "template", 0.7),
    "sync+client": ("sync", "client", 1.0),
    "sync+system": ("sync", "system", 0.8),
    "reseller+template": ("reseller", "template", 0.7),
    "reseller+sync": ("reseller", "sync", 1.0),
    # tooling: join evidence only (ATTACH_ONLY)
    "system+params": ("system", "params", 0.6),
    "reseller+tooling": ("reseller", "tooling", 0.6),
}
END_USER_KINDS = ("reseller+template", "reseller+sync", "reseller+tooling")
# Tooling kinds: the exact system prompt x parameter configuration a request
# was sent with. Many unrelated accounts share an app's or SDK's defaults, so
# such a key never links two accounts in the graph (graph.build_edges leaves
# these kinds out); it is evidence only for *joining* a known malicious
# campaign, weighed by the share of its holders that are members
# (attach.campaign_share_weights): a configuration used almost only by a
# farm's members is the farm's pipeline. However many tooling keys match, they
# count as one cue when joining (the best one: attach.CampaignAttacher.attach),
# so they need another key, the harvest profile or co-activation to join.
# Misses: farms that send a popular prompt with default parameters (the share
# stays low: no weight).
ATTACH_ONLY = ("system+params", "reseller+tooling")
KIND_NAMES: tuple[str, ...] = tuple(LINKS)
KIND_CODE = {k: i for i, k in enumerate(KIND_NAMES)}
BASE_WEIGHT = np.array([LINKS[k][2] for k in KIND_NAMES])
ROW_KINDS = tuple(k for k in KIND_NAMES if LINKS[k][1] is not None and k not in END_USER_KINDS)
ATTACH_ONLY_CODES = np.array([KIND_CODE[k] for k in ATTACH_ONLY], dtype=np.int8)
# per kind code, whether it is join-only: ``IS_ATTACH_ONLY[kind]`` is a gather,
# where ``np.isin(kind, ATTACH_ONLY_CODES)`` sorted millions of rows
IS_ATTACH_ONLY = np.zeros(len(KIND_NAMES), dtype=bool)
IS_ATTACH_ONLY[ATTACH_ONLY_CODES] = True

T = TypeVar("T")
Part = Any  # an evidence part: a pending frame or a dict of column arrays
ROW_COLS = ("key", "kind", "node")


def kind_rows(part: Part, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Key, kind and node of the rows of ``part`` whose kind ``mask`` (a
    Boolean per kind code) selects."""
    cols = {c: np.asarray(part[c]) for c in ROW_COLS}
    sel = mask[cols["kind"]]
    return {c: v[sel] for c, v in cols.items()}


class PartRows(Generic[T]):
    """``make(kind_rows(part, mask))`` of each evidence part, remembered while
    the part is the same object: parts are never modified in place (the merged
    table's columns, pending frames and raw chunks are replaced or appended),
    so a call filters only the parts that arrived since the last one. Only the
    current parts' results are kept; a part is known by itself (a frame) or by
    its key array (a dict, which cannot be weakly referenced)."""

    def __init__(self, mask: np.ndarray, make: Callable[[dict[str, np.ndarray]], T]) -> None:
        self.mask = mask
        self.make = make
        self.seen: dict[int, tuple[weakref.ref[Any], T]] = {}

    def of(self, parts: Sequence[Part]) -> list[T]:
        out, live = [], {}
        for part in parts:
            anchor = part if isinstance(part, pl.DataFrame) else part["key"]
            hit = self.seen.get(id(anchor))
            if hit is not None and hit[0]() is anchor:
                got = hit[1]
            else:
                got = self.make(kind_rows(part, self.mask))
            live[id(anchor)] = (weakref.ref(anchor), got)
            out.append(got)
        self.seen = live
        return out


FACT_LABEL = {
    "pay": "payment fingerprint",
    "email": "e-mail domain",
    "signup": "sign-up burst",
    "prefix": "IP prefix",
    "client": "client signature (user agent + parameters)",
    "template": "prompt template",
    "near": "near-duplicate template band",
    "system": "system prompt",
    "sync": "template in the same time bucket",
    "reseller": "reseller account",
    "params": "parameter configuration",
    "tooling": "system prompt + parameter configuration",
}
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def mix(a: np.ndarray, b: np.ndarray, salt: int | np.ndarray) -> np.ndarray:
    """Order-dependent 64-bit combination of two key arrays (0 when either is 0)."""
    a = a.astype(np.uint64, copy=False)
    b = b.astype(np.uint64, copy=False)
    s = np.asarray(salt).astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        h = fmix64(a ^ fmix64(b * _GOLD + s))
    h[(a == 0) | (b == 0)] = 0
    return h


def str_keys(values: pl.Series, seed: int) -> np.ndarray:
    """Stable-within-process 64-bit keys of a string column (null/empty -> 0)."""
    s = values.cast(pl.String)
    h = s.hash(seed=seed).to_numpy().astype(np.uint64)
    h[(s.is_null() | (s.str.len_chars() == 0)).fill_null(True).to_numpy()] = 0
    return h


@dataclass
class AccountFacts:
    """Account-level facts, one entry per account of the accounts table."""

    index: dict[str, int]
    pay: np.ndarray
    email: np.ndarray
    signup: np.ndarray
    reseller: np.ndarray
    labels: dict[int, str]  # key -> readable value (payment fingerprint, domain)

    @classmethod
    def build(cls, accounts: pl.DataFrame | None, signup_bucket_ms: int) -> AccountFacts:
        if accounts is None or accounts.height == 0:
            z = np.zeros(0, np.uint64)
            return cls({}, z, z, z, np.zeros(0, bool), {})
        a = accounts.unique("account_id", keep="last", maintain_order=True)
        dom = a["email_domain"].cast(pl.String).str.to_lowercase()
        dom = dom.set(dom.is_in(list(PUBLIC_EMAIL)).fill_null(False), None)
        bucket = (a["created_at"].dt.epoch("ms") // signup_bucket_ms).cast(pl.String)
        signup = str_keys(a["tier"].cast(pl.String) + "@" + bucket, 23)
        pay = str_keys(a["payment_fingerprint"], 29)
        email = str_keys(dom, 31)
        labels: dict[int, str] = {}
        for keys, vals in ((pay, a["payment_fingerprint"]), (email, dom)):
            for k, v in zip(keys.tolist(), vals.to_list(), strict=True):
                if k:
                    labels[k] = str(v)
        return cls(
            index={k: i for i, k in enumerate(a["account_id"].to_list())},
            pay=pay,
            email=email,
            signup=signup,
            reseller=a["reseller"].fill_null(False).to_numpy().astype(bool),
            labels=labels,
        )


def u64(s: pl.Series) -> np.ndarray:
    """A key column as uint64 (nulls -> 0) without a round trip through a query plan."""
    if s.null_count():
        s = s.fill_null(0)
    return np.asarray(s.to_numpy()).astype(np.uint64, copy=False)


def row_facts(feat: pl.DataFrame, sync_ms: int) -> dict[str, np.ndarray]:
    """Request-level facts of a feature frame, as uint64 arrays (0 = missing)."""
    template = u64(feat["template_key"])
    ts = np.asarray(feat["ts"].to_numpy()).astype("datetime64[ms]").view(np.int64)
    system, params = u64(feat["sys_key"]), u64(feat["param_sig"])
    return {
        "prefix": u64(feat["ip_prefix"]),
        "client": mix(u64(feat["ua_key"]), u64(feat["param_sig"]), 101),
        "template": template,
        "near": u64(feat["lsh_0"]),
        "system": system,
        "params": params,
        "tooling": mix(system, params, 107),
        "sync": mix(template, (ts // sync_ms + 1).astype(np.uint64), 103),
    }


EVIDENCE_COLS = ("key", "kind", "node", "a", "b")


def evidence_arrays(
    facts: dict[str, np.ndarray], nodes: np.ndarray, kinds: tuple[str, ...] = ROW_KINDS
) -> dict[str, np.ndarray]:
    """(key, kind, node, a, b) arrays of the conjunctive link kinds, one per fact pair per row."""
    n = len(nodes)
    a = np.concatenate([facts[LINKS[k][0]] for k in kinds])
    b = np.concatenate([facts[str(LINKS[k][1])] for k in kinds])
    kind = np.repeat(np.array([KIND_CODE[k] for k in kinds], dtype=np.int8), n)
    key = mix(a, b, kind)
    keep = key != 0
    node = np.tile(nodes.astype(np.int32), len(kinds))
    return {"key": key[keep], "kind": kind[keep], "node": node[keep], "a": a[keep], "b": b[keep]}


def compact(parts: list[dict[str, np.ndarray]], base: pl.DataFrame | None = None) -> pl.DataFrame:
    """Distinct (key, kind, node) rows of raw evidence arrays (plus ``base``), with counts
    (columns in EVIDENCE_COLS order, then ``n``; rows in the order of their first one)."""
    cols: dict[str, list[np.ndarray]] = {c: [] for c in (*EVIDENCE_COLS, "n")}
    if base is not None and base.height:
        for c in cols:
            cols[c].append(base[c].to_numpy())
    for p in parts:
        for c in EVIDENCE_COLS:
            cols[c].append(p[c])
        cols["n"].append(p["n"] if "n" in p else np.ones(len(p["key"]), np.uint32))
    if not cols["key"]:
        return empty_evidence()
    raw = {c: np.concatenate(v).astype(EVIDENCE_DTYPES[c], copy=False) for c, v in cols.items()}
    del cols
    # One 64-bit group key instead of three columns: ``key`` already folds in
    # the kind and the fact pair, the node is mixed in here. Two (key, node)
    # pairs share a group key with probability ~rows^2 / 2^65 (1e-6 at 10M
    # rows). Grouped by a sort of packed codes (linking/order.py), each
    # group's first row in input order stands for it (a Polars group_by on
    # the same key took ~3x the time).
    gk = raw["key"] ^ (raw["node"].astype(np.uint64) * np.uint64(_NODE_MIX))
    order = argsort_hashed(gk)
    first = run_starts(gk[order])
    del gk
    total = np.zeros(len(order), np.uint32)  # each group's count, at its first row
    total[order[first]] = np.add.reduceat(raw.pop("n")[order].astype(np.uint64), first)
    keep = np.zeros(len(order), bool)
    keep[order[first]] = True
    del order, first
    # first rows in input order: sequential compresses instead of gathers
    out = {c: raw.pop(c)[keep] for c in EVIDENCE_COLS}
    out["n"] = total[keep]
    return pl.DataFrame(out, schema=EVIDENCE_SCHEMA)


_NODE_MIX = 0x9E3779B97F4A7C15


EVIDENCE_SCHEMA = {
    "key": pl.UInt64,
    "kind": pl.Int8,
    "node": pl.Int32,
    "a": pl.UInt64,
    "b": pl.UInt64,
    "n": pl.UInt32,
}
EVIDENCE_DTYPES: dict[str, type[np.generic]] = {
    "key": np.uint64,
    "kind": np.int8,
    "node": np.int32,
    "a": np.uint64,
    "b": np.uint64,
    "n": np.uint32,
}


def empty_evidence() -> pl.DataFrame:
    return pl.DataFrame(schema=EVIDENCE_SCHEMA)
