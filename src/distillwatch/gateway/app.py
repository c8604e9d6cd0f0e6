"""The inline gateway: an ASGI reverse proxy that scores and acts on every request.

``create_app(cfg)`` builds the Starlette app. Per request: identify the key's
account, read and size-check the body, score it online (:mod:`.decide`), take
the stricter of that and the published verdict, then allow / review (forward),
challenge / block (403 in the caller's shape) or degrade (forward with
countermeasures). Streams are relayed chunk by chunk. Every scored request is
written as a contract event once its response is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from distillwatch.features.classifiers import TextClassifiers
from distillwatch.scoring.config import ACTIONS, Settings

from . import shapes
from .config import GatewayConfig
from .decide import Batcher, Decider, make_state
from .eventlog import EventLog
from .guardrail import guardrail_endpoint
from .identity import KeyStore
from .sse import SSESplitter, StreamRecorder, parse_event, render_event
from .upstream import UpstreamTransport
from .verdicts import VerdictStore

HEADER = "x-distillwatch-decision"
DROP_RESPONSE_HEADERS = frozenset(
    (
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "date",
        "server",
    )
)
FORWARD_REQUEST_HEADERS = (
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "openai-beta",
)
CHALLENGE, DEGRADE = ACTIONS.index("challenge"), ACTIONS.index("degrade")


class Gateway:
    """Shared objects of one gateway process (built once, reused by every request)."""

    def __init__(
        self,
        cfg: GatewayConfig,
        clf: TextClassifiers | None = None,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cfg = cfg
        self.verdicts = VerdictStore(cfg.verdicts)
        self.log = EventLog(cfg.events_out, cfg.events_rotate_bytes)
        self.decider = Decider(
            settings or Settings.load(cfg.detection),
            clf or TextClassifiers.load(),
            make_state(cfg.state, cfg.redis_prefix),
        )
        self.batcher = Batcher(self.decider)
        self.keys = KeyStore(cfg)
        self.last_online: dict[str, int] = {}
        # httpx's API over a lean HTTP/1.1 transport (see .upstream: httpcore's
        # cost more CPU per request than scoring); tests may pass another one
        self.transport = transport or UpstreamTransport(
            httpx.Limits(max_connections=2000, max_keepalive_connections=500)
        )
        self.client = httpx.AsyncClient(
            transport=self.transport,
            timeout=httpx.Timeout(cfg.upstream_timeout_s, connect=10.0),
        )
        # what client.build_request adds to every request, worked out once: the
        # forwarding path builds its requests itself and sends them straight
        # to the transport (no redirects, auth or cookie jar: a proxy must not
        # follow an upstream's redirects nor replay one caller's cookies for another)
        self._base_headers = dict(self.client.headers.items())
        self._timeout = self.client.timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}
        self._seq = 0
        self._prefix = "dw_" + os.urandom(4).hex()

    async def upstream(
        self, method: str, url: str, headers: dict[str, str], content: bytes
    ) -> httpx.Response:
        """Send one request upstream; the response body is left to stream."""
        u = self._urls.get(url)
        if u is None:
            if len(self._urls) > 4096:
                self._urls.clear()
            u = self._urls[url] = httpx.URL(url)
        req = httpx.Request(
            method,
            u,
            headers={**self._base_headers, **headers},
            content=content,
            extensions={"timeout": self._timeout},
        )
        return await self.transport.handle_async_request(req)

    def new_id(self) -> str:
        self._seq += 1
        return f"{self._prefix}{self._seq:010d}"

    async def close(self) -> None:
        await self.client.aclose()
        self.batcher.close()
        self.decider.state.close()
        await self.keys.close()
        self.log.close()


def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _error(
    api: str,
    status: int,
    msg: str,
    decision: str | None,
    etype: str | None = None,
    code: str | None = None,
) -> Response:
    headers = {HEADER: decision} if decision else {}
    return Response(
        shapes.error_body(api, status, msg, etype, code), status, headers, "application/json"
    )


def _upstream_headers(gw: Gateway, request: Request, api: str) -> dict[str, str]:
    h = {k: v for k in FORWARD_REQUEST_HEADERS if (v := request.headers.get(k)) is not None}
    h["accept-encoding"] = "identity"
    key = gw.cfg.upstream_api_key
    if key:
        h["x-api-key" if api == "anthropic" else "authorization"] = (
            key if api == "anthropic" else f"Bearer {key}"
        )
    return h


def _response_headers(up: httpx.Response, decision: str) -> dict[str, str]:
    h = {k: v for k, v in up.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS}
    h[HEADER] = decision
    return h


async def _models(request: Request) -> Response:
    gw: Gateway = request.app.state.gw
    key = _key(request)
    account = await gw.keys.account(key)
    did = gw.new_id()
    if account is None:
        return _error("openai", 401, "missing or unknown API key", f"{did}; action=block")
    try:
        up = await gw.client.get(
            gw.cfg.upstream_openai + "/v1/models", headers=_upstream_headers(gw, request, "openai")
        )
    except httpx.TransportError as e:
        return _upstream_failed("openai", e, f"{did}; action=allow")
    return Response(up.content, up.status_code, _response_headers(up, f"{did}; action=allow"))


def _upstream_failed(api: str, e: httpx.TransportError, decision: str) -> Response:
    """The upstream could not be reached or did not answer in time: 504 for a
    timeout, 502 for anything else, in the caller's API shape (the SDKs retry
    both). Nothing of the upstream's address leaks into the message."""
    timeout = isinstance(e, httpx.TimeoutException)
    status = 504 if timeout else 502
    what = "did not answer in time" if timeout else f"could not be reached ({type(e).__name__})"
    return _error(api, status, f"upstream model API {what}; retry later", decision)


async def _proxy(request: Request, api: str) -> Response:
    gw: Gateway = request.app.state.gw
    cfg = gw.cfg
    did = gw.new_id()
    key = _key(request)
    account = await gw.keys.account(key)
    if account is None:
        return _error(api, 401, "missing or unknown API key", f"{did}; action=block")
    clen = request.headers.get("content-length")
    if clen is not None and clen.isdigit() and int(clen) > cfg.max_body_bytes:
        return _error(
            api, 413, f"request body over {cfg.max_body_bytes} bytes", f"{did}; action=allow"
        )
    body_bytes = await request.body()
    if len(body_bytes) > cfg.max_body_bytes:
        return _error(
            api, 413, f"request body over {cfg.max_body_bytes} bytes", f"{did}; action=allow"
        )
    try:
        body = orjson.loads(body_bytes)
    except orjson.JSONDecodeError as e:
        return _error(api, 400, f"request body is not valid JSON: {e}", f"{did}; action=allow")
    if not isinstance(body, dict):
        return _error(api, 400, "request body must be a JSON object", f"{did}; action=allow")
    path = _path(request)
    client_ip = request.client.host if request.client else None
    event = shapes.request_event(
        body,
        path,
        account,
        _key_id(key),
        time.time(),
        did,
        client_ip,
        request.headers.get("user-agent"),
    )
    online = await gw.batcher.submit(event)
    verdict = gw.verdicts.action(account, event["end_user_id"])
    if online.action is None:  # shared state unreachable
        if cfg.on_state_error == "closed":
            event["response"] = {"status": 503}
            gw.log.append(event)
            return _error(
                api,
                503,
                "risk state unavailable; retry later",
                f"{did}; action=block; state=unavailable",
            )
        online_action = 0
    else:
        online_action = online.action
        gw.last_online[account] = online_action
    decided = gw.verdicts.decide(account, verdict, online_action)
    act = 0 if cfg.shadow else decided
    decision = f"{did}; action={ACTIONS[decided]}" + ("; mode=shadow" if cfg.shadow else "")
    event["decision"] = {
        "action": ACTIONS[decided],
        "risk": online.risk,
        "verdict": ACTIONS[verdict],
        "applied": ACTIONS[act],
    }
    if act >= CHALLENGE and act != DEGRADE:
        blocked = act > DEGRADE
        event["response"] = {"status": 403}
        gw.log.append(event)
        if blocked:
            return _error(
                api,
                403,
                "this account is blocked from this API (distillation policy)",
                decision,
                "permission_error",
                "blocked",
            )
        return _error(
            api,
            403,
            "verification required: complete identity verification for this account before sending more requests",
            decision,
            "verification_required",
            "verification_required",
        )
    degrade = act == DEGRADE
    fwd = shapes.degrade_request(body, cfg.degrade_max_tokens) if degrade else body
    content = orjson.dumps(fwd) if degrade else body_bytes
    base = cfg.upstream_anthropic if api == "anthropic" else cfg.upstream_openai
    try:
        up = await gw.upstream("POST", base + path, _upstream_headers(gw, request, api), content)
    except httpx.TransportError as e:
        failed = _upstream_failed(api, e, decision)
        event["response"] = {"status": failed.status_code}
        gw.log.append(event)
        return failed
    if body.get("stream") is True and up.status_code == 200:
        return StreamingResponse(
            _relay(gw, up, api, degrade, event), up.status_code, _response_headers(up, decision)
        )
    try:
        raw = await up.aread()
    finally:
        await up.aclose()
    event["response"] = {"status": up.status_code}
    if up.status_code == 200 and up.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(orjson.JSONDecodeError):
            obj = orjson.loads(raw)
            if isinstance(obj, dict):
                if degrade:
                    raw = orjson.dumps(shapes.degrade_response(api, obj))
                fields = shapes.response_fields(api, obj)
                event["response"].update(fields["response"])
                event["usage"] = fields["usage"]
    gw.log.append(event)
    return Response(raw, up.status_code, _response_headers(up, decision))


@functools.lru_cache(maxsize=1 << 16)
def _key_id(key: str | None) -> str:
    """A stable, non-secret id of an API key (the key itself never reaches the log).

    Cached: only keys that resolved to an account get here."""
    return "key_" + hashlib.blake2b((key or "").encode(), digest_size=6).hexdigest()


def _path(request: Request) -> str:
    """``request.url.path`` without building the whole URL (host header parse,
    urlsplit, geturl) when the path has nothing for it to escape."""
    p: str = request.scope["path"]
    if "?" in p or "#" in p or "\\" in p:
        return request.url.path
    return p


async def _relay(
    gw: Gateway, up: httpx.Response, api: str, degrade: bool, event: dict[str, Any]
) -> AsyncIterator[bytes]:
    """Relay an SSE stream chunk by chunk; degrade rewrites it event by event."""
    split = SSESplitter()
    rec = StreamRecorder(api)
    filt = shapes.StreamDegrader(api)
    try:
        async for chunk in up.aiter_raw():
            blocks = split.feed(chunk)
            if not degrade:
                yield chunk
                for b in blocks:
                    rec.observe(parse_event(b)[1])
                continue
            out = []
            for b in blocks:
                name, data = parse_event(b)
                if data is None:
                    out.append(b + b"\n\n")
                    continue
                kept = filt.event(data)
                if kept is not None:
                    rec.observe(kept)
                    out.append(render_event(name, kept))
            if out:
                yield b"".join(out)
        for b in split.rest():
            rec.observe(parse_event(b)[1])
            if degrade:
                yield b + b"\n\n"
    finally:
        await up.aclose()
        fields = rec.fields()
        event["response"] = {"status": up.status_code, **fields["response"]}
        event["usage"] = fields["usage"]
        gw.log.append(event)


def create_app(
    cfg: GatewayConfig,
    clf: TextClassifiers | None = None,
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The gateway app; objects are built now, the flush task at start-up."""
    gw = Gateway(cfg, clf, settings, transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def flusher() -> None:
            while True:
                await asyncio.sleep(0.5)
                gw.log.flush()

        task = asyncio.create_task(flusher())
        # Everything built so far (modules, classifier, config) lives as long as
        # the process: out of the cyclic GC's reach, a full collection no longer
        # walks ~130k objects (a 75-115 ms pause on the reference box, that is
        # the p99 of every request queued behind it). Garbage is collected first.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            task.cancel()
            await gw.close()

    async def chat(request: Request) -> Response:
        return await _proxy(request, "openai")

    async def messages(request: Request) -> Response:
        return await _proxy(request, "anthropic")

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/responses", chat, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/models", _models, methods=["GET"]),
            Route("/beta/litellm_basic_guardrail_api", guardrail_endpoint, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.gw = gw
    return app
