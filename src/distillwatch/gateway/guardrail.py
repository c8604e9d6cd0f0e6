"""LiteLLM's Generic Guardrail API (``POST /beta/litellm_basic_guardrail_api``).

LiteLLM posts ``{input_type: "request"|"response", litellm_call_id,
structured_messages, texts, tools, images, request_data: {user_api_key_hash,
user_api_key_org_id, user_api_key_team_id, user_api_key_user_id,
user_api_key_end_user_id, ...}, additional_provider_specific_params}`` and
expects ``{action: "NONE"|"BLOCKED"|"GUARDRAIL_INTERVENED", blocked_reason,
texts}``.

The account is the first of org id, team id, user id, key hash present in
``request_data`` (LiteLLM's own notion of the paying principal). A ``request``
call is scored exactly like a proxied request (folded into the account state);
a ``response`` call is not folded again and answers from the account's last
online action and its verdict. ``challenge``/``block`` -> ``BLOCKED``;
``degrade`` -> ``GUARDRAIL_INTERVENED`` (texts unchanged: LiteLLM records the
intervention; reasoning stripping needs the inline proxy); otherwise ``NONE``.
Shadow mode always answers ``NONE``. The caller authenticates with a key from
the gateway's key table.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from distillwatch.scoring.config import ACTIONS

ACCOUNT_FIELDS = (
    "user_api_key_org_id",
    "user_api_key_team_id",
    "user_api_key_user_id",
    "user_api_key_hash",
)


def _json(obj: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status, media_type="application/json")


def _messages(body: dict[str, Any]) -> list[Any]:
    msgs = body.get("structured_messages")
    if isinstance(msgs, list) and msgs:
        return msgs
    texts = body.get("texts") or []
    return [{"role": "user", "content": t} for t in texts if isinstance(t, str)]


async def guardrail_endpoint(request: Request) -> Response:
    """Decide one LiteLLM guardrail call."""
    gw = request.app.state.gw
    auth = request.headers.get("authorization", "")
    key = (
        auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
    )
    if await gw.keys.account(key) is None:
        return _json(
            {"error": {"message": "missing or unknown API key", "type": "invalid_request_error"}},
            401,
        )
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as e:
        return _json(
            {"error": {"message": f"not valid JSON: {e}", "type": "invalid_request_error"}}, 400
        )
    if not isinstance(body, dict):
        return _json(
            {"error": {"message": "expected a JSON object", "type": "invalid_request_error"}}, 400
        )
    rd = body.get("request_data") or {}
    account = next((str(rd[f]) for f in ACCOUNT_FIELDS if rd.get(f)), None)
    if account is None:
        return _json({"action": "NONE", "blocked_reason": None, "texts": body.get("texts")})
    end_user = rd.get("user_api_key_end_user_id")
    end_user = str(end_user) if end_user else None
    did = gw.new_id()
    if body.get("input_type") == "response":
        online = gw.last_online.get(account, 0)
    else:
        event = {
            "id": did,
            "ts": time.time(),
            "account_id": account,
            "api_key_id": rd.get("user_api_key_hash"),
            "end_user_id": end_user,
            "endpoint": "guardrail",
            "model": body.get("model") if isinstance(body.get("model"), str) else None,
            "request": {
                "messages": _messages(body),
                "params": {"tools": len(body.get("tools") or [])},
            },
        }
        res = await gw.batcher.submit(event)
        if res.action is None and gw.cfg.on_state_error == "closed":
            return _json(
                {"action": "BLOCKED", "blocked_reason": "risk state unavailable", "texts": None}
            )
        online = res.action or 0
        gw.last_online[account] = online
        gw.log.append(event)
    decided = gw.verdicts.decide(account, gw.verdicts.action(account, end_user), online)
    act = ACTIONS[0] if gw.cfg.shadow else ACTIONS[decided]
    if act in ("challenge", "block"):
        reason = (
            "account blocked under the distillation policy"
            if act == "block"
            else "verification required before more service (distillation policy)"
        )
        out: dict[str, Any] = {"action": "BLOCKED", "blocked_reason": reason, "texts": None}
    elif act == "degrade":
        out = {"action": "GUARDRAIL_INTERVENED", "blocked_reason": None, "texts": body.get("texts")}
    else:
        out = {"action": "NONE", "blocked_reason": None, "texts": body.get("texts")}
    resp = _json(out)
    resp.headers["x-distillwatch-decision"] = f"{did}; action={ACTIONS[decided]}"
    return resp
