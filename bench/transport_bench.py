"""Client CPU per request of httpx transports against the mock upstream.

The gateway forwards every request through an httpx transport; this measures
what each candidate costs the calling process, against the mock upstream
running in its own process (16 concurrent callers, 3000 POSTs each way,
``time.process_time()`` per request)::

    python bench/transport_bench.py

Candidates: httpx's default (httpcore), the gateway's
:class:`~distillwatch.gateway.upstream.UpstreamTransport`, and
``httpx_aiohttp.AiohttpTransport`` when ``pip install httpx-aiohttp`` is
there. Session 5, quiet box, non-streamed / streamed: 0.65 / 0.87,
0.115 / 0.135 and 0.187 / 0.185 ms a request. CPU is not the whole story:
with AiohttpTransport (failures re-mapped) as the gateway's transport,
``bench/gateway_bench.py --rate 500`` gave an added p99 of 20-24 ms in three
runs (our transport: 1.8-3.3 ms) and a ceiling of ~3000 req/s (4200-4700).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from distillwatch.gateway.local import free_port
from distillwatch.gateway.upstream import UpstreamTransport

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 64}
Make = Callable[[httpx.Limits], httpx.AsyncBaseTransport]


def start_upstream(port: int) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn; from distillwatch.gateway.mockup import create_mock_upstream; "
        f"uvicorn.run(create_mock_upstream(), port={port}, log_level='error')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the mock upstream did not start")


async def run(
    url: str, make: Make, stream: bool, n: int = 3000, conc: int = 16
) -> tuple[float, float]:
    """(client CPU ms per request, requests per second)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(transport=make(limits), timeout=10) as c:
        body = {**BODY, "stream": stream}

        async def one() -> None:
            async with c.stream("POST", url, json=body) as r:
                async for _ in r.aiter_raw():
                    pass

        for _ in range(200):  # warm up
            await one()
        todo = iter(range(n))

        async def caller() -> None:
            for _ in todo:
                await one()

        t, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller() for _ in range(conc)))
        return (time.process_time() - c0) / n * 1e3, n / (time.perf_counter() - t)


def candidates() -> dict[str, Make]:
    out: dict[str, Make] = {
        "httpx default (httpcore)": lambda lim: httpx.AsyncHTTPTransport(limits=lim),
        "gateway UpstreamTransport": lambda lim: UpstreamTransport(lim),
    }
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        return out
    out["httpx_aiohttp AiohttpTransport"] = lambda lim: AiohttpTransport(limits=lim)
    return out


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    proc = start_upstream(port)
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    try:
        print("| transport | stream | client CPU ms/request | requests/s |\n|---|---|---|---|")
        for stream in (False, True):
            for name, make in candidates().items():
                cpu, rps = runner(run(url, make, stream))
                print(f"| {name} | {stream} | {cpu:.3f} | {rps:.0f} |", flush=True)
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
