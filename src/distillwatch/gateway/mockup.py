"""A small OpenAI/Anthropic-shaped upstream for tests, demos and the benchmark.

It answers ``/v1/chat/completions``, ``/v1/responses`` (echo), ``/v1/messages``
and ``/v1/models`` like the real APIs, including SSE streams, reasoning
(``reasoning_content`` deltas, Anthropic ``thinking`` blocks), logprobs, ``n``
choices and tool calls, and returns a provider-shaped 429 for the model
``rate-limited``. Every request body it receives is kept in ``app.state.seen``
(last 1000) so tests can check what the gateway forwarded. ``delay_s`` adds
fixed latency per response (the benchmark's stand-in for a model).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

REASONING = "Let me think step by step about this."


def _last_user_text(messages: list[Any]) -> str:
    for m in reversed(messages or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status, media_type="application/json")


def _sse(events: list[tuple[str | None, Any]]) -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        for name, data in events:
            head = f"event: {name}\n".encode() if name else b""
            payload = data if isinstance(data, bytes) else orjson.dumps(data)
            yield head + b"data: " + payload + b"\n\n"
            await asyncio.sleep(0)

    return StreamingResponse(gen(), media_type="text/event-stream")


def _openai(body: dict[str, Any]) -> Response:
    answer = "echo: " + _last_user_text(body.get("messages", []))
    model = body.get("model", "mock")
    n = int(body.get("n") or 1)
    tools = body.get("tools") or []
    if body.get("stream"):
        base = {
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
        }
        ev: list[tuple[str | None, Any]] = []
        for piece in (REASONING[:12], REASONING[12:]):
            ev.append(
                (
                    None,
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "reasoning_content": piece},
                                "finish_reason": None,
                            }
                        ],
                    },
                )
            )
        for piece in (answer[:6], answer[6:]):
            d: dict[str, Any] = {"content": piece}
            lp = (
                {"content": [{"token": piece, "logprob": -0.1, "top_logprobs": []}]}
                if body.get("logprobs")
                else None
            )
            ev.append(
                (
                    None,
                    {
                        **base,
                        "choices": [
                            {"index": 0, "delta": d, "logprobs": lp, "finish_reason": None}
                        ],
                    },
                )
            )
        ev.append(
            (
                None,
                {
                    **base,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                },
            )
        )
        ev.append((None, b"[DONE]"))
        return _sse(ev)
    choices = []
    for i in range(n):
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": answer,
            "reasoning_content": REASONING,
        }
        finish = "stop"
        if tools:
            fn = tools[0].get("function", {}).get("name", "tool")
            msg["content"] = None
            msg["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": fn, "arguments": '{"x": 1}'},
                }
            ]
            finish = "tool_calls"
        ch: dict[str, Any] = {"index": i, "message": msg, "finish_reason": finish}
        if body.get("logprobs"):
            ch["logprobs"] = {
                "content": [{"token": "echo", "logprob": -0.1, "bytes": None, "top_logprobs": []}]
            }
        choices.append(ch)
    return _json(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": 5,
                "completion_tokens": 7,
                "total_tokens": 12,
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
        }
    )


def _anthropic(body: dict[str, Any]) -> Response:
    answer = "echo: " + _last_user_text(body.get("messages", []))
    model = body.get("model", "mock")
    tools = body.get("tools") or []
    usage = {"input_tokens": 5, "output_tokens": 7}
    if body.get("stream"):
        ev: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_mock",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 5, "output_tokens": 1},
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": REASONING},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "signature_delta", "signature": "sig"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "text_delta", "text": answer[:6]},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "text_delta", "text": answer[6:]},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 1}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 7},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return _sse(ev)
    content: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": REASONING, "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": answer},
    ]
    stop = "end_turn"
    if tools:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": tools[0].get("name", "tool"),
                "input": {"x": 1},
            }
        )
        stop = "tool_use"
    return _json(
        {
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
    )


def create_mock_upstream(delay_s: float = 0.0) -> Starlette:
    """The mock upstream app."""
    seen: deque[dict[str, Any]] = deque(maxlen=1000)

    async def handle(request: Request) -> Response:
        body = orjson.loads(await request.body())
        seen.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        if delay_s:
            await asyncio.sleep(delay_s)
        path = request.url.path
        if body.get("model") == "rate-limited":
            if path == "/v1/messages":
                return _json(
                    {
                        "type": "error",
                        "error": {"type": "rate_limit_error", "message": "slow down"},
                    },
                    429,
                )
            return _json(
                {
                    "error": {
                        "message": "slow down",
                        "type": "rate_limit_error",
                        "code": "rate_limited",
                    }
                },
                429,
            )
        if path == "/v1/messages":
            return _anthropic(body)
        if path == "/v1/responses":
            return _json(
                {
                    "id": "resp_mock",
                    "object": "response",
                    "status": "completed",
                    "model": body.get("model"),
                    "output": [
                        {"type": "reasoning", "id": "rs_1", "summary": []},
                        {
                            "type": "message",
                            "id": "m_1",
                            "role": "assistant",
                            "status": "completed",
                            "content": [{"type": "output_text", "text": "echo", "annotations": []}],
                        },
                    ],
                }
            )
        return _openai(body)

    async def models(request: Request) -> Response:
        return _json(
            {
                "object": "list",
                "data": [{"id": "mock-1", "object": "model", "created": 1, "owned_by": "mock"}],
            }
        )

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", handle, methods=["POST"]),
            Route("/v1/responses", handle, methods=["POST"]),
            Route("/v1/messages", handle, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )
    app.state.seen = seen
    return app
