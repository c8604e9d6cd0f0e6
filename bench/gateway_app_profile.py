"""The gateway app's CPU per request in-process, without sockets (for profiling).

    python bench/gateway_app_profile.py [--requests 3000] [--texts recurring|distinct]
                                        [--inline] [--profile [--sort tottime]]

Builds the gateway app exactly as ``distillwatch gateway`` does, with a canned
upstream answer (``httpx.MockTransport``), and calls it as ASGI for each
request: Starlette routing, the handler, the event, the Decider (on its worker
thread, or ``--inline`` on this one so cProfile sees it), the upstream
request/response objects and the event log. Reports process CPU time per
request (much steadier than latency on a shared machine: the comparisons in
the gw-speed commits used it) and the Decider's share; ``--profile`` prints a
cProfile table. GC is frozen after warm-up, as the served app does at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
import gateway_bench as gb

from distillwatch.gateway import GatewayConfig, create_app

ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "m1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "echo: hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--texts", choices=("recurring", "distinct"), default="recurring")
    ap.add_argument("--inline", action="store_true", help="score on this thread (for cProfile)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--sort", default="tottime")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp())
    cfg = GatewayConfig.from_dict(
        {
            "listen": "127.0.0.1:1",
            "upstreams": {"openai": "http://127.0.0.1:9"},
            "keys": {f"sk-{i}": f"acct_{i}" for i in range(200)},
            "events_out": str(tmp / "events"),
        }
    )
    canned = httpx.MockTransport(
        lambda _: httpx.Response(200, headers={"content-type": "application/json"}, content=ANSWER)
    )
    app = create_app(cfg, clf=gb.classifier()[0], transport=canned)
    gw = app.state.gw
    if args.inline:

        async def submit(ev: dict[str, Any]) -> Any:
            return gw.decider.decide_batch([ev])[0]

        gw.batcher.submit = submit

    async def one(i: int) -> None:
        b = gb.body(i)
        if args.texts == "distinct":
            b["messages"][1]["content"] = (
                f"Explain step by step how to solve the {gb._word(i)} problem about graphs."
            )
        raw = orjson.dumps(b)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8787"),
                (b"content-type", b"application/json"),
                (b"authorization", f"Bearer sk-{i % 200}".encode()),
                (b"content-length", str(len(raw)).encode()),
                (b"user-agent", b"python-httpx/0.28"),
            ],
            "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8787),
            "state": {},
        }
        sent: list[dict[str, Any]] = []
        given = False

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.sleep(3600)
            raise AssertionError

        async def send(m: dict[str, Any]) -> None:
            sent.append(m)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent

    async def run() -> None:
        for i in range(200):
            await one(i)
        gc.collect()
        gc.freeze()
        tm = gw.decider.timings
        d0 = tm.normalize + tm.features + tm.fold + tm.score
        prof = cProfile.Profile() if args.profile else None
        c0, w0 = time.process_time(), time.perf_counter()
        if prof is not None:
            prof.enable()
        for i in range(200, 200 + args.requests):
            await one(i)
        if prof is not None:
            prof.disable()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        dec = tm.normalize + tm.features + tm.fold + tm.score - d0
        n = args.requests
        print(
            f"{n} requests ({args.texts} texts): CPU {1000 * cpu / n:.3f} ms a request, "
            f"wall {1000 * wall / n:.3f} ms; Decider (wall) {1000 * dec / n:.3f} ms a request"
        )
        if prof is not None:
            pstats.Stats(prof).sort_stats(args.sort).print_stats(40)
        gw.log.close()
        gw.batcher.close()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


if __name__ == "__main__":
    main()
