"""The HTTP client of webhook deliveries: one POST, its status code, nothing else.

Why not aiohttp's ``ClientSession``: a delivery POSTs a small body and keeps only the status,
and the session's generality (cookies, redirects, proxies, decompression, tracing, multipart)
cost ~4x the CPU of this client per POST: 223 against 55 us on the project's 2-core machine,
20 at once to a local receiver (scripts/bench: placement with a subscription). On that machine
the POSTs were the largest part of what a subscription adds to each placement.

What is here is framing and connections; the response is parsed by ``httptools`` (llhttp, the
parser of Node.js and uvicorn): status line, headers, Content-Length, chunked and
close-delimited bodies, interim 1xx answers. Each POST:

- connects to an address of the host that ``webhook_targets.allowed_addresses`` lets through
  (unless private targets are allowed): the address checked is the address connected to;
- ``https`` with the system's trust store and the host's name for SNI and verification;
- sends ``Host``, ``User-Agent``, ``Content-Length`` and the caller's headers;
- follows no redirect (a 3xx is an answer like any other);
- reads at most ``max_response_bytes`` of the answer's body and drops it (past that, the
  connection is closed instead of drained);
- keeps the connection for the next POST to the same host when the answer allowed it; an idle
  one is dropped after ``IDLE_S``. A POST on a kept connection that the receiver had closed in
  the meantime (nothing came back) is sent again once on a new connection: receivers drop
  duplicates by ``webhook-id``.

The caller bounds the whole POST (``asyncio.timeout``); a POST cut short closes its
connection.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import httptools
from yarl import URL

from marketsvc.services.webhook_targets import allowed_addresses

IDLE_S = 15.0  # a kept connection unused this long is closed rather than reused
IDLE_PER_HOST = 50  # connections kept per host (a sender POSTs at most 50 at once)


class CannotConnect(OSError):
    """No connection to any address of the host."""


class BadResponse(OSError):
    """The receiver's answer is not HTTP, or it closed the connection without one."""


@dataclass(frozen=True)
class _Target:
    key: tuple[str, str, int]  # (scheme, host, port): connections are kept per key
    host: str
    port: int
    tls: bool
    head: bytes  # the request line and Host header


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.raw_host or parsed.port is None:
        raise ValueError(f"not an http(s) URL: {url!r}")
    head = f"POST {parsed.raw_path_qs} HTTP/1.1\r\nHost: {parsed.raw_authority}\r\n"
    return _Target(
        (parsed.scheme, parsed.raw_host, parsed.port),
        parsed.raw_host,
        parsed.port,
        parsed.scheme == "https",
        head.encode("ascii"),
    )


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[int] | None = None
        self.status = 0
        self.body_bytes = 0
        self.answered = False  # a byte of the current answer has arrived
        self.reusable = False
        self.closed = False  # connection_lost came
        self.idle_since = 0.0

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP and TLS transports are not asyncio.Transport subclasses: no isinstance
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.answer is None or self.answer.done():  # nothing asked: the stream is unusable
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._settle(BadResponse(f"invalid HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.status >= 200:  # the headers came: a close-delimited or cut-short body
            self._settle(self.status)
        else:
            self._settle(BadResponse(f"the receiver closed the connection{_cause(exc)}"))

    # httptools' side

    def on_message_begin(self) -> None:
        if self.answer is None or self.answer.done():  # more than the one answer: unusable
            self.close()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.max_body:  # not drained: this connection ends here
            self._settle(self.status)
            self.close()

    def on_message_complete(self) -> None:
        if self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.status = 0
            return
        self.reusable = self.parser.should_keep_alive() and self.open
        self._settle(self.status)

    # the client's side

    async def exchange(self, head: bytes, body: bytes) -> int:
        """Send one request, wait for its answer's status (the body read or given up)."""
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.status, self.body_bytes, self.answered, self.reusable = 0, 0, False, False
        self.transport.writelines((head, body))
        return await self.answer

    def _settle(self, outcome: int | Exception) -> None:
        answer = self.answer
        if answer is None or answer.done():
            return
        if isinstance(outcome, Exception):
            answer.set_exception(outcome)
        else:
            answer.set_result(outcome)

    @property
    def open(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


def _cause(exc: Exception | None) -> str:
    return "" if exc is None else f": {exc}"


class WebhookHttp:
    """POSTs to webhook receivers, keeping connections per host between them."""

    def __init__(
        self,
        *,
        allow_private: bool,
        user_agent: str,
        max_response_bytes: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.user_agent = f"User-Agent: {user_agent}\r\n".encode("ascii")
        self.max_response_bytes = max_response_bytes
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url``: the answer's status code. Raises ``TargetRefused``,
        ``CannotConnect``, ``BadResponse`` (or another ``OSError``, ``ssl.SSLError``...)."""
        target = _target(url)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = b"%s%sContent-Length: %d\r\n%s\r\n" % (
            target.head,
            self.user_agent,
            len(body),
            lines.encode("latin-1"),
        )
        conn = self._take_idle(target.key)
        if conn is not None:
            try:
                return await self._exchange(target, conn, head, body)
            except BadResponse:
                if conn.answered:  # the receiver did answer, badly: that is the outcome
                    raise
                # closed while kept, before any answer: once more on a new connection
        return await self._exchange(target, await self._connect(target), head, body)

    async def _exchange(self, target: _Target, conn: _Connection, head: bytes, body: bytes) -> int:
        kept = False
        try:
            status = await conn.exchange(head, body)
            kept = conn.reusable
            return status
        finally:  # a failed, cancelled or timed-out exchange leaves nothing open behind it
            if kept:
                self._keep(target.key, conn)
            else:
                conn.close()

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.open and now - conn.idle_since < IDLE_S:
                return conn
            conn.close()
        return None

    def _keep(self, key: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= IDLE_PER_HOST:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, target: _Target) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise CannotConnect(f"{target.host} does not resolve: {exc}") from exc
        addresses = [(family, str(address[0])) for family, _, _, _, address in infos]
        if not self.allow_private:
            allowed = set(allowed_addresses(target.host, [a for _, a in addresses]))
            addresses = [(family, a) for family, a in addresses if a in allowed]
        tls = self._tls() if target.tls else None
        errors = []
        for family, address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(self.max_response_bytes),
                    address,
                    target.port,
                    family=family,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
                return conn
            except OSError as exc:  # ssl.SSLError included
                errors.append(exc)
        for error in errors:  # an address answered, with TLS that did not verify: that says most
            if isinstance(error, ssl.SSLError):
                raise error
        raise CannotConnect(
            "; ".join(f"{a}: {e}" for (_, a), e in zip(addresses, errors, strict=True))
        )

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
