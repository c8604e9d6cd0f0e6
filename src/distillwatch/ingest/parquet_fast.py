"""Vectorised normalisation of Parquet record batches (Arrow compute + NumPy, no per-row Python).

Applies when a batch has the common shape: ``request.messages`` is a list of
``{role, content}`` structs with *string* content, and every other contract
field has a type its rules can check column-wise (numbers numeric, flags
boolean, strings strings; integer ids are cast to strings). Any other shape
returns None and the reader uses the row-by-row path for the whole batch.

Rows the columns show to be invalid are not rejected here: their offsets are
returned so that the row-by-row path (:func:`~.normalize.normalize_event`)
produces the exact reason. Accepted rows get the same values as that path
would give them; tests/test_ingest_parquet_fast.py checks the two agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .normalize import FLOAT_BOUNDS, INT_BOUNDS, SYSTEM_ROLES, TOOL_ROLES
from .schema import EVENT_SCHEMA
from .timeparse import MAX_MS, MS_THRESHOLD, parse_time_strings

Arr = Any  # pa.Array; pyarrow has no precise stubs


class _Unsupported(Exception):
    """The batch's shape is not handled column-wise."""


def _fields(arr: Arr | None) -> dict[str, Arr]:
    """A struct column's children with the parent's nulls applied ({} if absent/null-typed)."""
    if arr is None or pa.types.is_null(arr.type):
        return {}
    if not pa.types.is_struct(arr.type):
        raise _Unsupported
    return {arr.type.field(i).name: c for i, c in enumerate(arr.flatten())}


def _plain(arr: Arr) -> Arr:
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _str(arr: Arr | None, n: int, ints: bool = False, empty_null: bool = True) -> Arr:
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.string())
    arr = _plain(arr)
    if ints and pa.types.is_integer(arr.type):
        return arr.cast(pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise _Unsupported
    arr = arr.cast(pa.string())
    if empty_null:
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return arr


def _num(arr: Arr | None, n: int, key: str, integral: bool) -> tuple[Arr, np.ndarray]:
    """(values as int64/float64 with nulls, invalid-row mask) for a bounded numeric field."""
    out_type = pa.int64() if integral else pa.float64()
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, out_type), np.zeros(n, bool)
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        raise _Unsupported
    lo, hi = INT_BOUNDS[key] if integral else FLOAT_BOUNDS[key]
    f = pc.cast(arr, pa.float64(), safe=False).to_numpy(zero_copy_only=False)  # nulls: NaN
    present = arr.is_valid().to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        bad = present & ~((f >= lo) & (f <= hi))
        if integral and pa.types.is_floating(arr.type):
            bad |= present & (np.floor(f) != f)
    if key == "seed" and pa.types.is_integer(arr.type):
        bad = np.zeros(n, bool)  # any int64 seed is in range (float64 view is inexact)
    if integral:
        safe = pc.if_else(pa.array(bad), pa.scalar(None, arr.type), arr)
        return pc.cast(safe, pa.int64(), safe=False), bad
    return pc.cast(arr, pa.float64()), bad


def _bool(arr: Arr | None, n: int) -> Arr:
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.bool_())
    if not pa.types.is_boolean(arr.type):
        raise _Unsupported
    return arr


def _ts(arr: Arr | None, n: int) -> tuple[Arr, np.ndarray]:
    """(epoch ms int64, invalid mask)."""
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.int64()), np.ones(n, bool)
    arr = _plain(arr)
    t = arr.type
    null = ~arr.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(t):
        raw = pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False)
        if t.unit == "s":
            bad = null | (raw < 0) | (raw > MAX_MS // 1000)
            ms = np.where(bad, 0, raw) * 1000
        else:  # floor division, as datetime.microsecond // 1000 does
            ms = np.floor_divide(raw, {"ms": 1, "us": 1000, "ns": 1_000_000}[t.unit])
            bad = null | (ms < 0) | (ms > MAX_MS)
    elif pa.types.is_integer(t):
        raw = pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False)
        secs = raw <= MS_THRESHOLD
        bad = null | (raw < 0) | (secs & (raw > MAX_MS // 1000)) | (raw > MAX_MS)
        ms = np.where(bad, 0, np.where(secs, raw * 1000, raw))
    elif pa.types.is_floating(t):
        f = pc.fill_null(pc.cast(arr, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore", over="ignore"):
            v = np.rint(np.where(f > MS_THRESHOLD, f, f * 1000.0))
            bad = null | ~((v >= 0) & (v <= MAX_MS))  # also NaN / inf
        ms = np.where(bad, 0, v).astype(np.int64)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        ms, ok = parse_time_strings(arr)
        return pa.array(ms, mask=~ok), ~ok
    else:
        raise _Unsupported
    return pa.array(ms.astype(np.int64), mask=bad), bad


def _isin(arr: Arr, values: frozenset[str]) -> np.ndarray:
    hit = pc.is_in(arr, value_set=pa.array(sorted(values), arr.type))
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


def _last_per_row(pos: np.ndarray, par: np.ndarray, n: int, last: bool) -> np.ndarray:
    """For flat positions ``pos`` (ascending) with parents ``par[pos]``: the last (or first) per row, -1 if none."""
    out = np.full(n, -1, np.int64)
    if len(pos):
        p = par[pos]
        edge = np.r_[p[1:] != p[:-1], True] if last else np.r_[True, p[1:] != p[:-1]]
        out[p[edge]] = pos[edge]
    return out


def _messages(req: dict[str, Arr], n: int) -> tuple[dict[str, Arr], np.ndarray]:
    msgs = req.get("messages")
    if msgs is None or not (pa.types.is_list(msgs.type) or pa.types.is_large_list(msgs.type)):
        raise _Unsupported
    flat = pc.list_flatten(msgs)
    parts = _fields(flat)
    if "role" not in parts:
        raise _Unsupported
    role = _str(parts["role"], len(flat), empty_null=False)
    content = _str(parts.get("content"), len(flat), empty_null=False)
    content = pc.fill_null(content, "")
    par = pc.list_parent_indices(msgs).to_numpy(zero_copy_only=False)
    n_msg = pc.fill_null(pc.list_value_length(msgs), 0).to_numpy(zero_copy_only=False)
    bad_msg = ~(flat.is_valid().to_numpy(zero_copy_only=False)) | ~(
        role.is_valid().to_numpy(zero_copy_only=False)
    )
    bad = (n_msg == 0) | (np.bincount(par[bad_msg], minlength=n) > 0)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(par[mask], minlength=n)

    is_user = _isin(role, frozenset(("user",)))
    is_sys = _isin(role, SYSTEM_ROLES)
    user_pos = np.flatnonzero(is_user)
    last_user = _last_per_row(user_pos, par, n, last=True)
    prompt = content.take(pa.array(last_user, mask=last_user < 0))
    # system: request.system, then system/developer messages, joined with "\n"
    rsys = _str(req.get("system"), n, empty_null=False)
    has_rsys = rsys.is_valid().to_numpy(zero_copy_only=False)
    sys_pos = np.flatnonzero(is_sys)
    n_sys = count(is_sys) + has_rsys
    first_sys = _last_per_row(sys_pos, par, n, last=False)
    system = pc.coalesce(rsys, content.take(pa.array(first_sys, mask=first_sys < 0)))
    multi = np.flatnonzero(n_sys > 1)
    if len(multi):  # rare: several system texts to join
        texts = content.take(pa.array(sys_pos)).to_pylist()
        by_row: dict[int, list[str]] = {}
        for p, t in zip(par[sys_pos].tolist(), texts, strict=True):
            by_row.setdefault(p, []).append(t)
        rs = rsys.to_pylist()
        joined = [
            "\n".join(([rs[r]] if rs[r] is not None else []) + by_row.get(r, []))
            for r in multi.tolist()
        ]
        mask = np.zeros(n, bool)
        mask[multi] = True
        system = pc.replace_with_mask(system, pa.array(mask), pa.array(joined, pa.string()))
    cols = {
        "system": system,
        "prompt": prompt,
        "n_messages": n_msg,
        "n_user_turns": count(is_user),
        "n_assistant_turns": count(_isin(role, frozenset(("assistant",)))),
        "n_tool_messages": count(_isin(role, TOOL_ROLES)),
        "prompt_chars": pc.fill_null(pc.utf8_length(prompt), 0),
    }
    return cols, bad


def _as(col: Arr, typ: pa.DataType) -> Arr:
    arr = pa.array(col) if isinstance(col, np.ndarray) else col
    return arr if arr.type == typ else arr.cast(typ)


def fast_normalize_batch(rb: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray] | None:
    """(accepted rows as an EVENT_SCHEMA batch, offsets of rows needing the row path), or None."""
    try:
        return _fast(rb)
    except _Unsupported:
        return None


def _fast(rb: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray]:
    n = rb.num_rows
    top = {name: rb.column(i) for i, name in enumerate(rb.schema.names)}
    req = _fields(top.get("request"))
    params = _fields(req.get("params"))
    resp = _fields(top.get("response"))
    usage = _fields(top.get("usage"))
    ts, bad = _ts(top.get("ts"), n)
    acc = _str(top.get("account_id"), n, ints=True, empty_null=False)
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(acc)), 0)
    bad = bad | pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
    cols, bad_msgs = _messages(req, n)
    bad |= bad_msgs
    for key in ("temperature", "top_p"):
        cols[key], b = _num(params.get(key), n, key, integral=False)
        bad |= b
    for key in ("max_tokens", "n", "top_logprobs", "seed"):
        cols[key], b = _num(params.get(key), n, key, integral=True)
        bad |= b
    tools = params.get("tools")
    if tools is not None and (pa.types.is_list(tools.type) or pa.types.is_large_list(tools.type)):
        tools = pc.list_value_length(tools)
    cols["tools"], b = _num(tools, n, "tools", integral=True)
    bad |= b
    lp = params.get("logprobs")
    if lp is not None and pa.types.is_integer(lp.type):  # legacy completions: logprobs=N
        k, b = _num(lp, n, "top_logprobs", integral=True)
        bad |= b
        cols["logprobs"] = pc.greater(k, 0)
        cols["top_logprobs"] = pc.coalesce(cols["top_logprobs"], k)
    else:
        cols["logprobs"] = _bool(lp, n)
    cols["stream"] = _bool(params.get("stream"), n)
    cols["reasoning_effort"] = _str(params.get("reasoning_effort"), n)
    cols["status"], b = _num(resp.get("status"), n, "status", integral=True)
    bad |= b
    cols["finish_reason"] = _str(resp.get("finish_reason"), n)
    for src, dst in (("text", "response_chars"), ("reasoning", "reasoning_chars")):
        cols[dst] = pc.utf8_length(_str(resp.get(src), n, empty_null=False))
    for key in ("input_tokens", "output_tokens", "reasoning_tokens"):
        cols[key], b = _num(usage.get(key), n, key, integral=True)
        bad |= b
    cols["ts"], cols["account_id"] = ts, acc
    for key in ("id", "api_key_id", "end_user_id"):
        cols[key] = _str(top.get(key), n, ints=True)
    for key in ("ip", "user_agent", "endpoint", "model"):
        cols[key] = _str(top.get(key), n)
    arrays = [_as(cols[f.name], f.type) for f in EVENT_SCHEMA]
    out = pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)
    if bad.any():
        out = out.filter(pa.array(~bad))
    return out, np.flatnonzero(bad)
