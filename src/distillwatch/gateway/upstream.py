"""A lean HTTP/1.1 transport for httpx: asyncio protocol + httptools parser.

The gateway forwards every request upstream through ``httpx``. Its default
transport (httpcore over anyio, h11's pure-Python parser, an anyio lock,
cancel scopes and a readability poll per request) cost more CPU per request
than the online decision itself (bench/gateway_bench.py; py-spy of the
gateway process). :class:`UpstreamTransport` is an
:class:`httpx.AsyncBaseTransport`, so the gateway keeps httpx's request and
response objects, but the wire work is one :class:`asyncio.Protocol` per
connection with httptools' C parser (the one uvicorn serves with):

* keep-alive pool per (scheme, host, port), most recently used first; a
  connection the server closed is dropped when the close arrives (no poll);
  ``max_connections`` open at once (callers wait, ``pool`` timeout),
  ``max_keepalive_connections`` kept idle, each for ``keepalive_expiry``;
* request: head and body in one write (``Content-Length`` bodies) or chunked
  for streamed bodies; response: status, headers and body chunks as they
  arrive (the body is streamed: flow control pauses the socket when the
  reader lags), message end from ``Content-Length``, chunked encoding or
  connection close;
* timeouts from the request's ``timeout`` extension (connect, read, write,
  pool) as httpx exceptions (``ConnectTimeout``, ``ReadTimeout``, ...), like
  every other failure (``ConnectError``, ``ReadError``,
  ``RemoteProtocolError``);
* a request on a reused connection that the server closed before sending a
  single response byte (a keep-alive race) is retried once on a new one.

HTTP/1.1 only (what the upstream APIs and vLLM serve); ``https`` upstreams use
httpx's SSL context (``verify`` as httpx takes it).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import httptools
import httpx

# Read-side flow control: stop reading from the socket while this many body
# bytes wait for the reader, resume below half of it.
HIGH_WATER = 1 << 20


class _Conn(asyncio.Protocol):
    """One upstream connection: writes requests, parses responses."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.used = False  # carried a request before (a keep-alive reuse)
        self._reset()
        self._write_ok: asyncio.Future[None] | None = None

    def _reset(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.reusable = False
        self.got_bytes = False
        self.error: Exception | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.head_request = False
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(httpx.RemoteProtocolError(f"invalid upstream response: {e}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.complete and self._close_delimited():
            self.complete = True  # body delimited by the close (no length, not chunked)
        elif not self.complete:
            msg = "upstream closed the connection" + ("" if exc is None else f": {exc}")
            self._fail(httpx.RemoteProtocolError(msg) if exc is None else httpx.ReadError(msg))
        self._wake()
        w = self._write_ok
        if w is not None and not w.done():
            w.set_exception(httpx.WriteError("upstream closed the connection"))

    def pause_writing(self) -> None:
        if self._write_ok is None or self._write_ok.done():
            self._write_ok = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        w = self._write_ok
        if w is not None and not w.done():
            w.set_result(None)

    # -- httptools callbacks -------------------------------------------------------------
    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # interim response (never asked for): skip it
            self.status, self.reason, self.headers = 0, b"", []
            return
        self.headers_done = True
        if self.head_request:
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered >= HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status:
            self.complete = True
            # read now: llhttp resets its flags for the next message after this
            self.reusable = self.parser.should_keep_alive()
            self._wake()

    # -- helpers -------------------------------------------------------------------------
    def _close_delimited(self) -> bool:
        for name, value in self.headers:
            n = name.lower()
            if n == b"content-length" or (
                n == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return False
        return True

    def _fail(self, exc: Exception) -> None:
        if self.error is None and not self.complete:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, timeout: float | None, request: httpx.Request) -> None:
        """Until something new arrives (headers, a body chunk, the end or an error)."""
        loop = asyncio.get_running_loop()
        self.waiter = w = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, w)
        try:
            await w
        except TimeoutError:
            err = httpx.ReadTimeout("upstream read timed out", request=request)
            self._fail(err)
            self.close()
            raise err from None
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    async def drain(self, timeout: float | None) -> None:
        w = self._write_ok
        if w is None or w.done():
            if w is not None:
                w.result()
            return
        try:
            await asyncio.wait_for(asyncio.shield(w), timeout)
        except TimeoutError:
            self.close()
            raise httpx.WriteTimeout("upstream write timed out") from None

    def keep_alive(self) -> bool:
        return (
            self.complete
            and not self.closed
            and self.error is None
            and not self.head_request
            and self.reusable
        )

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


def _expire(w: asyncio.Future[None]) -> None:
    if not w.done():
        w.set_exception(TimeoutError())


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; hands the connection back when done."""

    def __init__(
        self, pool: UpstreamTransport, conn: _Conn, read_timeout: float | None, req: httpx.Request
    ) -> None:
        self.pool = pool
        self.conn = conn
        self.read_timeout = read_timeout
        self.request = req
        self.released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        c = self.conn
        while True:
            if c.chunks:
                data = b"".join(c.chunks) if len(c.chunks) > 1 else c.chunks[0]
                c.chunks.clear()
                c.buffered = 0
                if c.paused and c.transport is not None:
                    c.paused = False
                    c.transport.resume_reading()
                yield data
                continue
            if c.error is not None:
                self._release()
                raise c.error
            if c.complete:
                self._release()
                return
            await c.wait(self.read_timeout, self.request)

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        if not self.released:
            self.released = True
            self.pool._release(self.conn)


class UpstreamTransport(httpx.AsyncBaseTransport):
    """httpx transport: keep-alive HTTP/1.1 connections on asyncio + httptools."""

    def __init__(
        self,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        keepalive_expiry: float | None = None,
    ) -> None:
        limits = limits or httpx.Limits()
        self.max_connections = limits.max_connections
        self.max_keepalive = limits.max_keepalive_connections
        exp = limits.keepalive_expiry if keepalive_expiry is None else keepalive_expiry
        self.keepalive_expiry = 5.0 if exp is None else exp
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._n_idle = 0
        self._open = 0
        self._waiters: deque[tuple[tuple[str, str, int], asyncio.Future[_Conn | None]]] = deque()
        self.connections_made = 0  # for tests and benchmarks

    # -- pool ----------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            # httpx's own context: the same CA bundle (certifi) and SSL_CERT_FILE /
            # SSL_CERT_DIR handling as httpx's default transport
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        return self._ssl

    def _take_idle(self, key: tuple[str, str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            c = idle.pop()
            self._n_idle -= 1
            if not c.closed and now - c.idle_since < self.keepalive_expiry:
                return c
            c.close()
            self._open -= 1
        return None

    async def _slot(self, key: tuple[str, str, int], timeout: float | None) -> _Conn | None:
        """Room under max_connections: None (open a connection) or a released
        keep-alive connection to ``key`` handed over by :meth:`_release`."""
        if self.max_connections is None or self._open < self.max_connections:
            self._open += 1
            return None
        if self._n_idle:  # an idle connection to another host makes room
            for idle in self._idle.values():
                if idle:
                    idle.pop(0).close()
                    self._n_idle -= 1
                    return None  # its slot is ours (open count unchanged)
        fut: asyncio.Future[_Conn | None] = asyncio.get_running_loop().create_future()
        self._waiters.append((key, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise httpx.PoolTimeout("no upstream connection free in time") from None
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed over as we were cancelled
                got = fut.result()
                if got is None:
                    self._free_slot()
                else:
                    self._release(got)
            raise

    def _free_slot(self) -> None:
        """A connection closed: its slot goes to the first waiter, if any."""
        while self._waiters:
            _, w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return
        self._open -= 1

    def _release(self, c: _Conn) -> None:
        if c.keep_alive() and not c.chunks:
            c._reset()
            c.used = True
            for i, (key, w) in enumerate(self._waiters):
                if key == c.key and not w.done():  # a request to the same host waits
                    del self._waiters[i]
                    w.set_result(c)
                    return
            if not self._waiters and self._n_idle < self.max_keepalive_or_inf():
                c.idle_since = time.monotonic()
                self._idle.setdefault(c.key, []).append(c)
                self._n_idle += 1
                return
        c.close()
        self._free_slot()

    def max_keepalive_or_inf(self) -> float:
        return float("inf") if self.max_keepalive is None else self.max_keepalive

    async def _connect(self, key: tuple[str, str, int], timeout: float | None) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        kw: dict[str, Any] = {}
        if scheme == "https":
            kw = {"ssl": self._ssl_context(), "server_hostname": host}
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(key), host, port, **kw), timeout
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as e:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {e}") from e
        self.connections_made += 1
        return conn

    # -- one request ---------------------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        to = request.extensions.get("timeout") or {}
        head = _head(request)
        body = request.content if _has_content(request) else None
        for attempt in range(2):
            conn = self._take_idle(key) or await self._slot(key, to.get("pool"))
            if conn is None:
                try:
                    conn = await self._connect(key, to.get("connect"))
                except BaseException:
                    self._free_slot()
                    raise
            try:
                return await self._exchange(conn, request, head, body, to)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                self._release(conn)
                if attempt == 0 and conn.used and not conn.got_bytes and body is not None:
                    continue  # the server dropped an idle connection as we used it
                raise
            except BaseException:
                self._release(conn)
                raise
        raise AssertionError("unreachable")

    async def _exchange(
        self,
        conn: _Conn,
        request: httpx.Request,
        head: bytes,
        body: bytes | None,
        to: dict[str, float | None],
    ) -> httpx.Response:
        assert conn.transport is not None
        if conn.closed:
            raise httpx.RemoteProtocolError("upstream closed the connection")
        conn.head_request = request.method == "HEAD"
        if body is not None:
            conn.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                conn.transport.write(body)
        else:  # a streamed body: chunked unless the caller gave its length
            chunked = "content-length" not in request.headers
            conn.transport.write(head)
            async for chunk in request.stream:  # type: ignore[union-attr]
                if chunk:
                    conn.transport.write(
                        b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
                    )
                    await conn.drain(to.get("write"))
            if chunked:
                conn.transport.write(b"0\r\n\r\n")
        await conn.drain(to.get("write"))
        read = to.get("read")
        while not conn.headers_done:
            if conn.error is not None:
                raise conn.error
            await conn.wait(read, request)
        stream = _Body(self, conn, read, request)
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=stream,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason},
            request=request,
        )

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for c in idle:
                c.close()
            idle.clear()
        self._open -= self._n_idle
        self._n_idle = 0


def _has_content(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018
    except httpx.RequestNotRead:
        return False
    return True


def _head(request: httpx.Request) -> bytes:
    """Request line and headers as sent on the wire."""
    url = request.url
    lines = [b"%b %b HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
    for name, value in request.headers.raw:
        lines.append(b"%b: %b\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


__all__ = ["UpstreamTransport"]
