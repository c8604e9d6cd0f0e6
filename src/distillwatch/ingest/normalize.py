"""One contract event (a parsed dict) to one row of EVENT_SCHEMA, or a reject reason.

:func:`normalize_event` returns ``(row, None)`` or ``(None, reason)``; the row is
a tuple in :data:`EVENT_SCHEMA` column order, and :class:`EventBatchBuilder`
turns many rows into one record batch (one ``pa.array`` per column per batch).

Rules (see events.md section 1; decisions the contract leaves open are marked *):

* ``ts``: see :mod:`.timeparse`. ``account_id``: a non-blank string; *an
  integer is accepted and turned into its decimal string (billing systems often
  export numeric ids); anything else is rejected. *Optional ``id``,
  ``api_key_id``, ``end_user_id`` accept integers the same way; all optional
  strings (also ``ip``, ``user_agent``, ``endpoint``, ``model``) must otherwise
  be strings, and an empty string is read as absent.
* ``request.messages``: a non-empty list of objects with a string ``role``;
  ``content`` a string, a list of part objects each with a string ``type``
  (``text`` parts need a string ``text``), or null (assistant tool calls).
* ``system``: ``request.system`` (*a string or, Anthropic style, a list of text
  parts) then the text of ``system``/*``developer`` messages, joined with "\\n".
* ``prompt``: the text parts of the last user turn, joined with "\\n". *A user
  message made only of ``tool_result`` parts is a tool message, not a turn.
* ``n_tool_messages``: messages with role ``tool``/``function``, or with any
  ``tool_result``/``function_call_output`` part.
* Params: numbers must be numbers (*integral floats are accepted for integer
  fields, numeric strings are not) within sane bounds, below; *``logprobs`` as
  an integer (legacy completions) means ``logprobs=true, top_logprobs=N``;
  ``tools`` is a count or the list of tool definitions.
* ``response_chars``/``reasoning_chars``: lengths of ``response.text`` and
  ``response.reasoning``. Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .schema import EVENT_SCHEMA
from .timeparse import TimeError, parse_time_ms, type_name

Row = tuple[Any, ...]

#: Inclusive bounds for numeric fields; values outside are rejected as absurd.
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "max_tokens": (0, 10_000_000),
    "n": (1, 128),
    "top_logprobs": (0, 100),
    "tools": (0, 100_000),
    "seed": (-(2**63), 2**63 - 1),
    "status": (100, 599),
    "input_tokens": (0, 100_000_000),
    "output_tokens": (0, 100_000_000),
    "reasoning_tokens": (0, 100_000_000),
}
FLOAT_BOUNDS: dict[str, tuple[float, float]] = {"temperature": (0.0, 10.0), "top_p": (0.0, 1.0)}

SYSTEM_ROLES = frozenset(("system", "developer"))
TOOL_ROLES = frozenset(("tool", "function"))
TOOL_RESULT_PARTS = frozenset(("tool_result", "function_call_output"))


class Reject(Exception):
    """Raised inside normalisation; ``str()`` is the reject reason."""


def _int(v: Any, path: str, key: str) -> int:
    if type(v) is not int:
        if type(v) is float and v.is_integer():
            v = int(v)
        else:
            raise Reject(f"{path}: expected integer, got {type_name(v)}")
    lo, hi = INT_BOUNDS[key]
    if v < lo or v > hi:
        raise Reject(f"{path}: {v} out of range [{lo}, {hi}]")
    return int(v)


def _float(v: Any, path: str, key: str) -> float:
    if type(v) is not float and type(v) is not int:
        raise Reject(f"{path}: expected number, got {type_name(v)}")
    lo, hi = FLOAT_BOUNDS[key]
    if not (lo <= v <= hi):  # also false for NaN
        raise Reject(f"{path}: {v} out of range [{lo}, {hi}]")
    return float(v)


def _str(v: Any, path: str, ints: bool = False) -> str | None:
    if type(v) is str:
        return v or None
    if v is None:
        return None
    if ints and type(v) is int:
        return str(v)
    raise Reject(f"{path}: expected string, got {type_name(v)}")


def _obj(v: Any, path: str) -> dict[str, Any]:
    if v is None:
        return {}
    if type(v) is not dict:
        raise Reject(f"{path}: expected object, got {type_name(v)}")
    return v


def _parts_text(parts: list[Any], path: str) -> tuple[str, int, int]:
    """Validate content parts; return (joined text, number of tool-result parts, number of parts)."""
    texts: list[str] = []
    n_tool = 0
    for j, p in enumerate(parts):
        if type(p) is not dict:
            raise Reject(f"{path}[{j}]: expected object, got {type_name(p)}")
        ptype = p.get("type")
        if ptype == "text":
            t = p.get("text")
            if type(t) is not str:
                raise Reject(f"{path}[{j}].text: expected string, got {type_name(t)}")
            texts.append(t)
        elif type(ptype) is not str:
            raise Reject(f"{path}[{j}].type: expected string, got {type_name(ptype)}")
        elif ptype in TOOL_RESULT_PARTS:
            n_tool += 1
    return "\n".join(texts), n_tool, len(parts)


def _messages(msgs: Any) -> tuple[list[str], str | None, int, int, int, int]:
    """(system texts, prompt, n_messages, n_user_turns, n_assistant_turns, n_tool_messages)."""
    if type(msgs) is not list:
        if msgs is None:
            raise Reject("request.messages: missing")
        raise Reject(f"request.messages: expected list, got {type_name(msgs)}")
    if not msgs:
        raise Reject("request.messages: empty list")
    system: list[str] = []
    prompt: str | None = None
    n_user = n_asst = n_tool = 0
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            raise Reject(f"request.messages[{i}]: expected object, got {type_name(m)}")
        role = m.get("role")
        if type(role) is not str:
            raise Reject(f"request.messages[{i}].role: expected string, got {type_name(role)}")
        content = m.get("content")
        tool_parts = n_parts = 0
        if type(content) is str:
            text = content
        elif content is None:
            text = ""
        elif type(content) is list:
            text, tool_parts, n_parts = _parts_text(content, f"request.messages[{i}].content")
        else:
            raise Reject(
                f"request.messages[{i}].content: expected string or list, got {type_name(content)}"
            )
        if role == "user":
            if tool_parts == 0 or tool_parts < n_parts:
                n_user += 1
                prompt = text
        elif role == "assistant":
            n_asst += 1
        elif role in SYSTEM_ROLES:
            system.append(text)
        if tool_parts or role in TOOL_ROLES:
            n_tool += 1
    return system, prompt, len(msgs), n_user, n_asst, n_tool


def _normalize(ev: dict[str, Any]) -> Row:
    if "ts" not in ev or ev["ts"] is None:
        raise Reject("ts: missing")
    try:
        ts = parse_time_ms(ev["ts"])
    except TimeError as e:
        raise Reject(f"ts: {e}") from None
    acc = ev.get("account_id")
    if acc is None:
        raise Reject("account_id: missing")
    acc = _str(acc, "account_id", ints=True)
    if acc is None or not acc.strip():
        raise Reject("account_id: empty string")
    req = ev.get("request")
    if req is None:
        raise Reject("request.messages: missing")
    req = _obj(req, "request")
    system, prompt, n_msg, n_user, n_asst, n_tool = _messages(req.get("messages"))
    rsys = req.get("system")
    if rsys is not None:
        if type(rsys) is str:
            system.insert(0, rsys)
        elif type(rsys) is list:
            system.insert(0, _parts_text(rsys, "request.system")[0])
        else:
            raise Reject(f"request.system: expected string or list, got {type_name(rsys)}")

    p = _obj(req.get("params"), "request.params")
    g = p.get
    temperature = top_p = None
    max_tokens = n = top_logprobs = tools = seed = None
    logprobs = stream = reasoning_effort = None
    if p:
        if (v := g("temperature")) is not None:
            temperature = _float(v, "request.params.temperature", "temperature")
        if (v := g("top_p")) is not None:
            top_p = _float(v, "request.params.top_p", "top_p")
        if (v := g("max_tokens")) is not None:
            max_tokens = _int(v, "request.params.max_tokens", "max_tokens")
        if (v := g("n")) is not None:
            n = _int(v, "request.params.n", "n")
        if (v := g("top_logprobs")) is not None:
            top_logprobs = _int(v, "request.params.top_logprobs", "top_logprobs")
        if (v := g("logprobs")) is not None:
            if type(v) is bool:
                logprobs = v
            else:  # legacy completions: logprobs=N asks for the top N
                k = _int(v, "request.params.logprobs", "top_logprobs")
                logprobs = k > 0
                if top_logprobs is None:
                    top_logprobs = k
        if (v := g("stream")) is not None:
            if type(v) is not bool:
                raise Reject(f"request.params.stream: expected bool, got {type_name(v)}")
            stream = v
        reasoning_effort = _str(g("reasoning_effort"), "request.params.reasoning_effort")
        if (v := g("tools")) is not None:
            tools = _int(len(v) if type(v) is list else v, "request.params.tools", "tools")
        if (v := g("seed")) is not None:
            seed = _int(v, "request.params.seed", "seed")

    r = _obj(ev.get("response"), "response")
    status = finish = None
    resp_chars = reas_chars = None
    if r:
        if (v := r.get("status")) is not None:
            status = _int(v, "response.status", "status")
        finish = _str(r.get("finish_reason"), "response.finish_reason")
        if (v := r.get("text")) is not None:
            if type(v) is not str:
                raise Reject(f"response.text: expected string, got {type_name(v)}")
            resp_chars = len(v)
        if (v := r.get("reasoning")) is not None:
            if type(v) is not str:
                raise Reject(f"response.reasoning: expected string, got {type_name(v)}")
            reas_chars = len(v)
    u = _obj(ev.get("usage"), "usage")
    in_tok = out_tok = reas_tok = None
    if u:
        if (v := u.get("input_tokens")) is not None:
            in_tok = _int(v, "usage.input_tokens", "input_tokens")
        if (v := u.get("output_tokens")) is not None:
            out_tok = _int(v, "usage.output_tokens", "output_tokens")
        if (v := u.get("reasoning_tokens")) is not None:
            reas_tok = _int(v, "usage.reasoning_tokens", "reasoning_tokens")

    get = ev.get
    return (
        ts,
        acc,
        _str(get("id"), "id", ints=True),
        _str(get("api_key_id"), "api_key_id", ints=True),
        _str(get("end_user_id"), "end_user_id", ints=True),
        _str(get("ip"), "ip"),
        _str(get("user_agent"), "user_agent"),
        _str(get("endpoint"), "endpoint"),
        _str(get("model"), "model"),
        "\n".join(system) if system else None,
        prompt,
        n_msg,
        n_user,
        n_asst,
        n_tool,
        len(prompt) if prompt is not None else 0,
        temperature,
        top_p,
        max_tokens,
        n,
        logprobs,
        top_logprobs,
        stream,
        reasoning_effort,
        tools,
        seed,
        status,
        finish,
        resp_chars,
        reas_chars,
        in_tok,
        out_tok,
        reas_tok,
    )


def normalize_event(ev: Any) -> tuple[Row | None, str | None]:
    """Normalise one parsed event: ``(row, None)`` if it meets the contract, else ``(None, reason)``."""
    if type(ev) is not dict:
        return None, f"not a JSON object (got {type_name(ev)})"
    try:
        return _normalize(ev), None
    except Reject as e:
        return None, str(e)
    except RecursionError:
        return None, "event nested too deeply"


def rows_to_batch(rows: list[Row]) -> pa.RecordBatch:
    """Build one EVENT_SCHEMA record batch from normalised rows (one ``pa.array`` per column)."""
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=EVENT_SCHEMA)
    cols = list(zip(*rows, strict=True))
    arrays = [pa.array(c, type=f.type) for c, f in zip(cols, EVENT_SCHEMA, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)


class EventBatchBuilder:
    """Accumulates normalised rows; :meth:`flush` returns them as one record batch."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, ev: Any) -> str | None:
        """Normalise and keep ``ev``; return the reject reason instead if it fails."""
        row, reason = normalize_event(ev)
        if row is None:
            return reason
        self.rows.append(row)
        return None

    def __len__(self) -> int:
        return len(self.rows)

    def flush(self) -> pa.RecordBatch:
        """The kept rows as a record batch; the builder is emptied."""
        batch = rows_to_batch(self.rows)
        self.rows = []
        return batch
