"""OpenAI and Anthropic wire shapes: errors, contract events, degrade countermeasures.

``api`` is ``"openai"`` or ``"anthropic"`` throughout. Degrade removes what a
distiller harvests beyond the answer: reasoning (OpenAI-style
``reasoning_content`` / ``reasoning`` fields and their stream deltas; Anthropic
``thinking`` / ``redacted_thinking`` blocks and their stream events) and
``logprobs``; the forwarded request loses ``logprobs``, ``top_logprobs`` and
``logit_bias``, gets ``n = 1`` and a capped ``max_tokens``.
"""

from __future__ import annotations

from typing import Any

import orjson

ENDPOINTS = {
    "/v1/chat/completions": "chat.completions",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}
PARAM_KEYS = ("temperature", "top_p", "n", "logprobs", "top_logprobs", "stream", "seed")
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    413: "invalid_request_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
}
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    413: "request_too_large",
    502: "api_error",
    503: "api_error",
    504: "api_error",
}
REASONING_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")
THINKING_BLOCKS = frozenset(("thinking", "redacted_thinking"))


def error_body(
    api: str, status: int, message: str, etype: str | None = None, code: str | None = None
) -> bytes:
    """An error in the caller's API shape."""
    if api == "anthropic":
        t = etype or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": t, "message": message}})
    t = etype or OPENAI_ERROR_TYPES.get(status, "api_error")
    return orjson.dumps(
        {"error": {"message": message, "type": t, "param": None, "code": code or t}}
    )


def _responses_messages(body: dict[str, Any]) -> list[Any]:
    inp = body.get("input")
    msgs: list[Any] = []
    if isinstance(body.get("instructions"), str):
        msgs.append({"role": "system", "content": body["instructions"]})
    if isinstance(inp, str):
        msgs.append({"role": "user", "content": inp})
    elif isinstance(inp, list):
        for item in inp:
            if isinstance(item, dict) and "role" in item:
                c = item.get("content")
                if isinstance(c, list):
                    c = [
                        {"type": "text", "text": p.get("text", "")}
                        if isinstance(p, dict) and p.get("type") in ("input_text", "output_text")
                        else p
                        for p in c
                    ]
                msgs.append({"role": item["role"], "content": c})
    return msgs


def request_event(
    body: dict[str, Any],
    path: str,
    account_id: str,
    key_id: str,
    ts: float,
    rid: str,
    ip: str | None,
    ua: str | None,
) -> dict[str, Any]:
    """The contract event of a request (response fields are added after the call)."""
    api_end = ENDPOINTS.get(path, path)
    messages: Any = _responses_messages(body) if api_end == "responses" else body.get("messages")
    params: dict[str, Any] = {k: body[k] for k in PARAM_KEYS if k in body}
    mt = body.get("max_tokens", body.get("max_completion_tokens", body.get("max_output_tokens")))
    if mt is not None:
        params["max_tokens"] = mt
    if isinstance(body.get("reasoning_effort"), str):
        params["reasoning_effort"] = body["reasoning_effort"]
    elif isinstance(body.get("reasoning"), dict) and isinstance(
        body["reasoning"].get("effort"), str
    ):
        params["reasoning_effort"] = body["reasoning"]["effort"]
    elif isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled":
        params["reasoning_effort"] = "high"
    if isinstance(body.get("tools"), list):
        params["tools"] = len(body["tools"])
    meta = body.get("metadata")
    end_user = body.get("user")
    if isinstance(meta, dict) and meta.get("user_id") is not None:
        end_user = meta["user_id"]
    req: dict[str, Any] = {"messages": messages, "params": params}
    if body.get("system") is not None:
        req["system"] = body["system"]
    return {
        "id": rid,
        "ts": ts,
        "account_id": account_id,
        "api_key_id": key_id,
        "end_user_id": end_user if isinstance(end_user, str) and end_user else None,
        "ip": ip,
        "user_agent": ua,
        "endpoint": api_end,
        "model": body.get("model") if isinstance(body.get("model"), str) else None,
        "request": req,
    }


def degrade_request(body: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """The forwarded body of a degraded request."""
    out = {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs", "logit_bias")}
    if "n" in out:
        out["n"] = 1
    for k in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(out.get(k), int) and out[k] > max_tokens:
            out[k] = max_tokens
    if isinstance(out.get("thinking"), dict) and isinstance(
        out["thinking"].get("budget_tokens"), int
    ):
        mt = out.get("max_tokens")
        if isinstance(mt, int) and out["thinking"]["budget_tokens"] >= mt:
            out.pop(
                "thinking"
            )  # Anthropic rejects budget >= max_tokens; thinking is stripped anyway
    return out


def degrade_response(api: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Strip reasoning and logprobs from a non-streaming response (in place; returned)."""
    if api == "anthropic":
        if isinstance(obj.get("content"), list):
            obj["content"] = [
                b
                for b in obj["content"]
                if not (isinstance(b, dict) and b.get("type") in THINKING_BLOCKS)
            ]
        return obj
    for ch in obj.get("choices") or []:
        if not isinstance(ch, dict):
            continue
        ch.pop("logprobs", None)
        for part in ("message", "delta"):
            m = ch.get(part)
            if isinstance(m, dict):
                for f in REASONING_FIELDS:
                    m.pop(f, None)
    if isinstance(obj.get("output"), list):  # responses API
        obj["output"] = [
            o for o in obj["output"] if not (isinstance(o, dict) and o.get("type") == "reasoning")
        ]
    return obj


class StreamDegrader:
    """Filters one SSE stream event at a time.

    Anthropic content blocks are addressed by index, so the blocks kept after
    dropping thinking blocks are renumbered 0, 1, ... as clients expect.
    """

    def __init__(self, api: str) -> None:
        self.api = api
        self.dropped: set[int] = set()
        self.remap: dict[int, int] = {}

    def event(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The event to send on, or None to drop it."""
        if self.api == "anthropic":
            return self._anthropic(data)
        t = data.get("type")
        if isinstance(t, str) and t.startswith("response.reasoning"):
            return None
        if t in ("response.output_item.added", "response.output_item.done") and (
            (data.get("item") or {}).get("type") == "reasoning"
        ):
            return None
        return degrade_response("openai", data)

    def _anthropic(self, data: dict[str, Any]) -> dict[str, Any] | None:
        t = data.get("type")
        if t not in ("content_block_start", "content_block_delta", "content_block_stop"):
            return data
        idx = data.get("index", -1)
        if t == "content_block_start":
            if (data.get("content_block") or {}).get("type") in THINKING_BLOCKS:
                self.dropped.add(idx)
                return None
            self.remap[idx] = len(self.remap)
        if idx in self.dropped:
            return None
        data["index"] = self.remap.get(idx, idx)
        return data


def response_fields(api: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Contract ``response``/``usage`` fields of a complete response object."""
    text, reasoning, finish = [], [], None
    usage: dict[str, Any] = {}
    if api == "anthropic":
        for b in obj.get("content") or []:
            if isinstance(b, dict):
                if b.get("type") == "text":
                    text.append(str(b.get("text", "")))
                elif b.get("type") == "thinking":
                    reasoning.append(str(b.get("thinking", "")))
        finish = obj.get("stop_reason")
        u = obj.get("usage") or {}
        usage = {"input_tokens": u.get("input_tokens"), "output_tokens": u.get("output_tokens")}
    else:
        for ch in obj.get("choices") or []:
            m = ch.get("message") or {}
            if isinstance(m.get("content"), str):
                text.append(m["content"])
            r = m.get("reasoning_content") or m.get("reasoning")
            if isinstance(r, str):
                reasoning.append(r)
            finish = finish or ch.get("finish_reason")
        u = obj.get("usage") or {}
        det = u.get("completion_tokens_details") or {}
        usage = {
            "input_tokens": u.get("prompt_tokens", u.get("input_tokens")),
            "output_tokens": u.get("completion_tokens", u.get("output_tokens")),
            "reasoning_tokens": det.get("reasoning_tokens"),
        }
    resp: dict[str, Any] = {"text": "".join(text), "finish_reason": finish}
    if reasoning:
        resp["reasoning"] = "".join(reasoning)
    return {"response": resp, "usage": {k: v for k, v in usage.items() if isinstance(v, int)}}
