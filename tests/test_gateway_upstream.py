"""The gateway's lean upstream transport (httpx API over asyncio + httptools).

Everything the gateway relies on from httpx's default transport: keep-alive,
streamed (chunked, SSE) responses, streamed request bodies, close-delimited
bodies, a server dropping an idle connection, pool limits, timeouts and errors
as httpx exceptions.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from distillwatch.gateway.local import ServerThread, free_port
from distillwatch.gateway.mockup import create_mock_upstream
from distillwatch.gateway.upstream import UpstreamTransport

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(create_mock_upstream()) as srv:
        yield srv


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_keep_alive_reuses_one_connection(upstream: ServerThread) -> None:
    async def go() -> tuple[list[str], int]:
        t = UpstreamTransport()
        async with httpx.AsyncClient(transport=t) as c:
            out = []
            for i in range(20):
                body = {**BODY, "messages": [{"role": "user", "content": f"q{i}"}]}
                r = await c.post(upstream.url + "/v1/chat/completions", json=body)
                assert r.status_code == 200
                out.append(r.json()["choices"][0]["message"]["content"])
            r = await c.get(upstream.url + "/v1/models")
            assert r.json()["data"][0]["id"] == "mock-1"
            return out, t.connections_made

    out, made = run(go())
    assert out == [f"echo: q{i}" for i in range(20)]
    assert made == 1


def test_streamed_response_arrives_in_pieces(upstream: ServerThread) -> None:
    async def go() -> tuple[list[bytes], httpx.Headers]:
        async with httpx.AsyncClient(transport=UpstreamTransport()) as c:
            req = c.build_request(
                "POST", upstream.url + "/v1/chat/completions", json={**BODY, "stream": True}
            )
            r = await c.send(req, stream=True)
            try:
                chunks = [ch async for ch in r.aiter_raw()]
            finally:
                await r.aclose()
            return chunks, r.headers

    chunks, headers = run(go())
    assert headers["content-type"].startswith("text/event-stream")
    text = b"".join(chunks)
    assert text.endswith(b"data: [DONE]\n\n")
    assert text.count(b"data: ") >= 4


def test_streamed_request_body_and_same_headers_as_httpx(upstream: ServerThread) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"model": "m", '
        yield b'"messages": [{"role": "user", "content": "chunked"}]}'

    async def go(transport: httpx.AsyncBaseTransport | None) -> tuple[str, dict[str, str]]:
        async with httpx.AsyncClient(transport=transport) as c:
            r = await c.post(
                upstream.url + "/v1/chat/completions",
                content=body(),
                headers={"content-type": "application/json", "x-extra": "1"},
            )
            seen = upstream.server.config.app.state.seen[-1]
            return r.json()["choices"][0]["message"]["content"], seen["headers"]

    text, lean = run(go(UpstreamTransport()))
    assert text == "echo: chunked"
    _, default = run(go(None))
    assert lean == default  # the same request on the wire (headers included)


def test_server_dropping_idle_connections(upstream: ServerThread) -> None:
    with ServerThread(create_mock_upstream(), timeout_keep_alive=0.05) as srv:

        async def go() -> int:
            t = UpstreamTransport()
            async with httpx.AsyncClient(transport=t) as c:
                for _ in range(3):
                    r = await c.post(srv.url + "/v1/chat/completions", json=BODY)
                    assert r.status_code == 200
                    await asyncio.sleep(0.3)  # the server closes the idle connection
            return t.connections_made

        assert run(go()) == 3


async def _raw_server(reply: bytes, close: bool = True) -> tuple[asyncio.Server, int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readuntil(b"\r\n\r\n")
        w.write(reply)
        await w.drain()
        if close:
            w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def test_close_delimited_body() -> None:
    async def go() -> tuple[int, bytes, str]:
        srv, port = await _raw_server(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nhello, world"
        )
        async with srv, httpx.AsyncClient(transport=UpstreamTransport()) as c:
            r = await c.get(f"http://127.0.0.1:{port}/x")
            return r.status_code, r.content, r.reason_phrase

    assert run(go()) == (200, b"hello, world", "OK")


def test_garbage_response_is_a_protocol_error() -> None:
    async def go() -> None:
        srv, port = await _raw_server(b"NOT HTTP AT ALL\r\n\r\n")
        async with srv, httpx.AsyncClient(transport=UpstreamTransport()) as c:
            await c.get(f"http://127.0.0.1:{port}/x")

    with pytest.raises(httpx.RemoteProtocolError):
        run(go())


def test_server_hanging_up_without_an_answer_is_a_protocol_error() -> None:
    async def go() -> None:
        srv, port = await _raw_server(b"")  # reads the request, closes without a byte
        async with srv, httpx.AsyncClient(transport=UpstreamTransport()) as c:
            await c.get(f"http://127.0.0.1:{port}/x")

    with pytest.raises(httpx.RemoteProtocolError):  # the gateway answers 502, not 504
        run(go())


def test_connect_error_and_read_timeout() -> None:
    async def refused() -> None:
        async with httpx.AsyncClient(transport=UpstreamTransport()) as c:
            await c.get(f"http://127.0.0.1:{free_port()}/v1/models")

    with pytest.raises(httpx.ConnectError):
        run(refused())
    with ServerThread(create_mock_upstream(delay_s=2.0)) as slow:

        async def too_slow() -> None:
            async with httpx.AsyncClient(transport=UpstreamTransport(), timeout=0.2) as c:
                await c.post(slow.url + "/v1/chat/completions", json=BODY)

        with pytest.raises(httpx.ReadTimeout):
            run(too_slow())


def test_pool_limit_queues_requests(upstream: ServerThread) -> None:
    async def go() -> tuple[list[int], int, int]:
        t = UpstreamTransport(httpx.Limits(max_connections=2, max_keepalive_connections=2))
        async with httpx.AsyncClient(transport=t) as c:
            rs = await asyncio.gather(
                *(c.post(upstream.url + "/v1/chat/completions", json=BODY) for _ in range(12))
            )
            return [r.status_code for r in rs], t.connections_made, t._open

    codes, made, still_open = run(go())
    assert codes == [200] * 12
    assert made <= 2
    assert still_open <= 2


def test_unread_body_closed_early_does_not_poison_the_pool(upstream: ServerThread) -> None:
    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=UpstreamTransport()) as c:
            req = c.build_request(
                "POST", upstream.url + "/v1/chat/completions", json={**BODY, "stream": True}
            )
            r = await c.send(req, stream=True)
            await r.aclose()  # not read: the connection is dropped, not reused
            out = []
            for _ in range(3):
                r2 = await c.post(upstream.url + "/v1/chat/completions", json=BODY)
                out.append(r2.status_code)
            return out

    assert run(go()) == [200, 200, 200]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_upstream_with_certificate_check(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    srv = ServerThread(create_mock_upstream(), ssl_keyfile=str(key), ssl_certfile=str(cert))
    with srv:
        url = f"https://127.0.0.1:{srv.port}/v1/chat/completions"

        async def go(verify: ssl.SSLContext | bool) -> str:
            t = UpstreamTransport(verify=verify)
            async with httpx.AsyncClient(transport=t) as c:
                r = await c.post(url, json=BODY)
                assert (await c.post(url, json=BODY)).status_code == 200
                assert t.connections_made == 1  # kept alive over TLS too
                return str(r.json()["choices"][0]["message"]["content"])

        assert run(go(ssl.create_default_context(cafile=str(cert)))) == "echo: hello there"
        with pytest.raises(httpx.ConnectError):
            run(go(True))  # the system's CAs do not know this certificate
