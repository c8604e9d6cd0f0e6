"""Server-sent events: split a byte stream into events, record what the client got.

:class:`SSESplitter` cuts upstream chunks at blank lines without copying the
bytes that are passed through; :class:`StreamRecorder` accumulates the answer
text, reasoning, finish reason and usage of an OpenAI or Anthropic stream for
the contract event written after the stream ends.
"""

from __future__ import annotations

from typing import Any

import orjson


class SSESplitter:
    """Feed bytes, get complete events (each the raw block without the blank line)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = (self._buf + chunk).replace(b"\r\n", b"\n")
        *events, self._buf = data.split(b"\n\n")
        return [e for e in events if e.strip()]

    def rest(self) -> list[bytes]:
        out = [self._buf] if self._buf.strip() else []
        self._buf = b""
        return out


def parse_event(block: bytes) -> tuple[bytes | None, Any]:
    """(event name or None, parsed JSON data or None if not JSON / ``[DONE]``)."""
    name = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            data.append(line[5:].strip())
    if not data:
        return name, None
    raw = b"\n".join(data)
    if raw == b"[DONE]":
        return name, None
    try:
        return name, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return name, None


def render_event(name: bytes | None, data: Any) -> bytes:
    head = b"event: " + name + b"\n" if name else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


class StreamRecorder:
    """What a stream delivered, as contract ``response``/``usage`` fields."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.finish: str | None = None
        self.usage: dict[str, int] = {}

    def observe(self, d: Any) -> None:
        if not isinstance(d, dict):
            return
        if self.api == "anthropic":
            t = d.get("type")
            if t == "content_block_delta":
                delta = d.get("delta") or {}
                if delta.get("type") == "text_delta":
                    self.text.append(str(delta.get("text", "")))
                elif delta.get("type") == "thinking_delta":
                    self.reasoning.append(str(delta.get("thinking", "")))
            elif t == "message_start":
                u = (d.get("message") or {}).get("usage") or {}
                if isinstance(u.get("input_tokens"), int):
                    self.usage["input_tokens"] = u["input_tokens"]
            elif t == "message_delta":
                self.finish = (d.get("delta") or {}).get("stop_reason") or self.finish
                u = d.get("usage") or {}
                if isinstance(u.get("output_tokens"), int):
                    self.usage["output_tokens"] = u["output_tokens"]
            return
        for ch in d.get("choices") or []:
            delta = ch.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.text.append(delta["content"])
            r = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(r, str):
                self.reasoning.append(r)
            self.finish = ch.get("finish_reason") or self.finish
        u = d.get("usage")
        if isinstance(u, dict):
            for src, dst in (
                ("prompt_tokens", "input_tokens"),
                ("completion_tokens", "output_tokens"),
            ):
                if isinstance(u.get(src), int):
                    self.usage[dst] = u[src]

    def fields(self) -> dict[str, Any]:
        resp: dict[str, Any] = {"text": "".join(self.text), "finish_reason": self.finish}
        if self.reasoning:
            resp["reasoning"] = "".join(self.reasoning)
        return {"response": resp, "usage": dict(self.usage)}
