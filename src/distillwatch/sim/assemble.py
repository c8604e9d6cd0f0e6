"""Turn planned requests of one population into contract-shaped Arrow batches.

Output columns follow ``../shared/spec/events.md`` section 1 exactly: top-level
``id, ts, account_id, api_key_id, end_user_id, ip, user_agent, endpoint,
model`` and nested ``request {messages, system, params}``, ``response {status,
text, reasoning, finish_reason}``, ``usage``. Messages are built as one flat
content array plus list offsets (no per-request Python objects).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.sim import infra, responses
from distillwatch.sim.corpus import Corpus
from distillwatch.sim.population import Population
from distillwatch.sim.styles import STYLES, Ctx
from distillwatch.sim.textgen import Text, draw, join

MODELS = ("frontier-1", "frontier-1-mini", "frontier-2")
EFFORT_TOKENS = {"low": 300.0, "medium": 1200.0, "high": 4000.0}
SYS, HU, HA, TOOL, FINAL = 0, 1, 2, 3, 4


def _choice(
    rng: np.random.Generator,
    opts: tuple[object, ...],
    n: int,
    typ: pa.DataType,
    p: tuple[float, ...] | None = None,
) -> tuple[pa.Array, np.ndarray]:
    idx = rng.choice(len(opts), size=n, p=None if p is None else np.asarray(p) / np.sum(p))
    return pa.array(list(opts), typ).take(pa.array(idx)), idx


def _messages(
    corpus: Corpus,
    rng: np.random.Generator,
    text: Text,
    sys_in_msgs: np.ndarray,
    is_messages: np.ndarray,
) -> pa.ListArray:
    n = len(text.prompt)
    has_sys = sys_in_msgs & ~np.asarray(pc.is_null(text.system))
    m = has_sys.astype(np.int64) + 2 * text.n_hist + text.n_tool + 1
    offsets = np.concatenate([[0], np.cumsum(m)])
    r = np.repeat(np.arange(n), m)
    j = np.arange(int(offsets[-1])) - offsets[r] - has_sys[r]
    kind = np.where(
        j < 0,
        SYS,
        np.where(
            j < 2 * text.n_hist[r],
            np.where(j % 2 == 0, HU, HA),
            np.where(j < 2 * text.n_hist[r] + text.n_tool[r], TOOL, FINAL),
        ),
    )
    cnt = np.bincount(kind, minlength=5)
    parts = [
        text.system.take(pa.array(r[kind == SYS])),
        draw(corpus, text.hist_pool, rng, int(cnt[HU])),
        responses.answers(corpus, rng, rng.integers(30, 400, int(cnt[HA]))),
        join("[tool_result] ", draw(corpus, "eval_code", rng, int(cnt[TOOL]))),
        text.prompt,
    ]
    base = np.concatenate([[0], np.cumsum(cnt)])
    perm = np.empty(len(kind), dtype=np.int64)
    for k in range(5):
        pos = np.flatnonzero(kind == k)
        perm[pos] = base[k] + np.arange(len(pos))
    content = pa.concat_arrays([p.cast(pa.string()) for p in parts]).take(pa.array(perm))
    role_code = np.where((kind == TOOL) & is_messages[r], 1, kind)
    roles = pa.array(["system", "user", "assistant", "tool", "user"]).take(pa.array(role_code))
    msg = pa.StructArray.from_arrays([roles, content], names=["role", "content"])
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), msg)


def materialise(
    pop: Population,
    corpus: Corpus,
    rng: np.random.Generator,
    principal: np.ndarray,
    ts_ms: np.ndarray,
    pos: np.ndarray,
    release_ms: int,
) -> pa.RecordBatch:
    """Build the contract-shaped batch for requests of ``pop`` (rows in given order)."""
    prof, par, n = pop.profile, pop.profile.params, len(principal)
    ctx = Ctx(corpus, rng, n, pos, pop.slot[principal], prof.paraphrase_rate)
    out_tok = np.maximum(1, rng.lognormal(np.log(par.out_median), par.out_sigma, n)).astype(
        np.int64
    )
    if prof.style == "rubric":
        ctx.answers = responses.answers(corpus, rng, out_tok * 2)
    text = STYLES[prof.style](ctx)
    ua = pa.array(pop.ua[principal], pa.string())
    is_messages = np.asarray(pc.starts_with(ua, "Anthropic")) | np.asarray(
        pc.starts_with(ua, "claude-cli")
    )
    max_tok, _ = _choice(rng, par.max_tokens, n, pa.int64())
    cap = np.asarray(max_tok.fill_null(1 << 20)).astype(np.int64)
    finish = np.where(
        out_tok >= cap, "length", np.where(rng.random(n) < par.p_tool_call, "tool_calls", "stop")
    )
    out_tok = np.minimum(out_tok, cap)
    effort, eff_idx = _choice(rng, par.reasoning, n, pa.string(), par.reasoning_p)
    eff_tok = np.array([EFFORT_TOKENS.get(str(e), 0.0) for e in par.reasoning])
    r_tok = (eff_tok[eff_idx] * rng.lognormal(0, 0.5, n)).astype(np.int64)
    status = np.where(rng.random(n) < 0.006, 429, np.where(rng.random(n) < 0.002, 400, 200)).astype(
        np.int32
    )
    ok = status == 200
    out_tok, r_tok = out_tok * ok, r_tok * ok
    tools = (
        rng.integers(par.tools[0], par.tools[1] + 1, n) if par.tools[1] else np.zeros(n, np.int64)
    )
    logprobs = rng.random(n) < par.p_logprobs
    params = pa.StructArray.from_arrays(
        [
            _choice(rng, par.temperature, n, pa.float64())[0],
            pa.nulls(n, pa.float64()),
            max_tok,
            pa.array(np.where(rng.random(n) < par.p_n_multi, rng.integers(2, 9, n), 1)),
            pa.array(logprobs),
            pc.if_else(pa.array(logprobs), pa.scalar(5, pa.int64()), pa.scalar(None, pa.int64())),
            pa.array(rng.random(n) < par.p_stream),
            effort,
            pa.array(tools.astype(np.int64)),
            pc.if_else(
                pa.array(rng.random(n) < par.p_seed),
                pa.scalar(1234, pa.int64()),
                pa.scalar(None, pa.int64()),
            ),
        ],
        names=[
            "temperature",
            "top_p",
            "max_tokens",
            "n",
            "logprobs",
            "top_logprobs",
            "stream",
            "reasoning_effort",
            "tools",
            "seed",
        ],
    )
    messages = _messages(corpus, rng, text, ~is_messages, is_messages)
    system = pc.if_else(pa.array(is_messages), text.system, pa.nulls(n, pa.string()))
    request = pa.StructArray.from_arrays(
        [messages, system, params], names=["messages", "system", "params"]
    )
    resp_text = pc.if_else(
        pa.array(ok), responses.answers(corpus, rng, out_tok), pa.scalar("", pa.string())
    )
    response = pa.StructArray.from_arrays(
        [
            pa.array(status),
            resp_text,
            responses.reasoning(corpus, rng, r_tok),
            pa.array(np.where(ok, finish, "error")),
        ],
        names=["status", "text", "reasoning", "finish_reason"],
    )
    clen = np.concatenate(
        [[0], np.cumsum(np.asarray(pc.utf8_length(messages.values.field("content"))))]
    )
    off = np.asarray(messages.offsets)
    # chars/4 plus elided file contents that tool results carry in real agent contexts
    in_tok = ((clen[off[1:]] - clen[off[:-1]]) // 4 + 20 + 2000 * text.n_tool).astype(np.int64)
    usage = pa.StructArray.from_arrays(
        [pa.array(in_tok), pa.array(out_tok), pa.array(r_tok)],
        names=["input_tokens", "output_tokens", "reasoning_tokens"],
    )
    new_share = np.clip((ts_ms - release_ms) / (20.0 * 86_400_000), 0, 1)
    if prof.model_switch:
        new_share = (ts_ms >= release_ms + 43_200_000).astype(np.float64)
    model_idx = np.where(rng.random(n) < new_share, 2, (rng.random(n) < 0.25).astype(np.int64))
    ts = join(
        pc.strftime(pa.array(ts_ms).cast(pa.timestamp("ms", tz="UTC")), format="%Y-%m-%dT%H:%M:%S"),
        "Z",
    )
    ips = infra.format_ipv4(
        infra.request_ips(rng, prof.ip_mode, pop.ip_base[principal], pop.shared_nets)
    )
    acct = pa.array(pop.account_id[principal], pa.string())
    eu = (
        pa.array(pop.end_user_id[principal], pa.string())
        if pop.end_user_id is not None
        else pa.nulls(n, pa.string())
    )
    api_key = join("key_", acct)
    return pa.RecordBatch.from_arrays(
        [
            ts,
            acct,
            api_key,
            eu,
            ips,
            ua,
            pa.array(np.where(is_messages, "messages", "chat.completions")),
            pa.array(MODELS, pa.string()).take(pa.array(model_idx)),
            request,
            response,
            usage,
        ],
        names=[
            "ts",
            "account_id",
            "api_key_id",
            "end_user_id",
            "ip",
            "user_agent",
            "endpoint",
            "model",
            "request",
            "response",
            "usage",
        ],
    )
