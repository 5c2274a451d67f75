"""The delivery client (services.webhook_http) against real servers on local ports: aiohttp's
for well-formed answers, raw sockets for the answers a receiver may get wrong, TLS with a
certificate made here. No database."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import itertools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import uvloop
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from marketsvc.services.webhook_http import BadResponse, CannotConnect, WebhookHttp
from marketsvc.services.webhook_targets import TargetRefused

LIMIT = 64 * 1024


def client(**kwargs: object) -> WebhookHttp:
    options: dict[str, object] = {
        "allow_private": True,
        "user_agent": "marketsvc-test/1",
        "max_response_bytes": LIMIT,
    }
    return WebhookHttp(**(options | kwargs))  # type: ignore[arg-type]


async def statuses(url: str, times: int) -> list[int]:
    """POST ``{}`` to ``url`` ``times`` times, one after the other, with one client."""
    http = client()
    try:
        return [await http.post(url, b"{}", {}) for _ in range(times)]
    finally:
        await http.close()


class Recorder:
    """An aiohttp receiver: records each request and the client port it came from."""

    def __init__(self, answer: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        self.answer = answer
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        assert request.transport is not None
        port = request.transport.get_extra_info("peername")[1]
        self.requests.append((dict(request.headers), body, port))
        return await self.answer(request)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, handler_cancellation=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        return int(self.runner.addresses[0][1])

    @property
    def connections(self) -> int:
        return len({port for _, _, port in self.requests})


@pytest.fixture
async def servers() -> AsyncIterator[list[Recorder | asyncio.Server]]:
    started: list[Recorder | asyncio.Server] = []
    yield started
    for server in started:
        if isinstance(server, Recorder):
            if server.runner is not None:
                await server.runner.cleanup()
        else:
            server.close()


async def recorder(
    servers: list[Recorder | asyncio.Server],
    answer: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[Recorder, int]:
    rec = Recorder(answer)
    servers.append(rec)
    return rec, await rec.start()


Handler = Callable[[asyncio.StreamWriter, int], Awaitable[None]]


async def raw_server(
    servers: list[Recorder | asyncio.Server],
    on_request: Handler,
    on_connect: Callable[[], None] | None = None,
) -> int:
    """A server that reads each request's head and body and lets ``on_request`` answer it,
    told which request of its connection it is (0, 1...)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if on_connect is not None:
            on_connect()
        try:
            for n in itertools.count():
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                await on_request(writer, n)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    servers.append(server)
    return int(server.sockets[0].getsockname()[1])


async def no_content(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def test_posts_the_body_and_headers_and_keeps_the_connection(servers) -> None:
    rec, port = await recorder(servers, no_content)
    http = client()
    try:
        for n in range(3):
            status = await http.post(
                f"http://127.0.0.1:{port}/hook?x=1", b'{"n": %d}' % n, {"webhook-id": f"m{n}"}
            )
            assert status == 204
    finally:
        await http.close()
    assert [body for _, body, _ in rec.requests] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    headers = rec.requests[0][0]
    assert headers["Host"] == f"127.0.0.1:{port}"
    assert headers["User-Agent"] == "marketsvc-test/1"
    assert headers["webhook-id"] == "m0"
    assert headers["Content-Length"] == "8"
    assert rec.connections == 1  # one after the other: one kept connection


async def test_concurrent_posts_each_get_their_own_answer(servers) -> None:
    async def echo_status(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.01)
        return web.Response(status=int(request.headers["want"]), text="x" * 100)

    rec, port = await recorder(servers, echo_status)
    http = client()
    try:
        wanted = [200 + n % 7 for n in range(40)]
        got = await asyncio.gather(
            *(http.post(f"http://127.0.0.1:{port}/", b"{}", {"want": str(w)}) for w in wanted)
        )
        assert got == wanted
        first_round = rec.connections
        again = await asyncio.gather(
            *(http.post(f"http://127.0.0.1:{port}/", b"{}", {"want": "200"}) for _ in range(20))
        )
        assert again == [200] * 20
        assert rec.connections == first_round  # the second round reused kept connections
    finally:
        await http.close()


async def test_a_redirect_is_an_answer_not_followed(servers) -> None:
    other, other_port = await recorder(servers, no_content)

    async def redirect(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{other_port}/elsewhere")

    _, port = await recorder(servers, redirect)
    assert await statuses(f"http://127.0.0.1:{port}/hook", 1) == [307]
    assert other.requests == []


async def test_a_large_answer_is_read_up_to_the_limit_and_its_connection_dropped(
    servers,
) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        if request.headers.get("size") == "small":
            return web.Response(status=200, text="ok")
        return web.Response(status=500, body=b"x" * (4 * LIMIT))

    rec, port = await recorder(servers, big)
    http = client()
    try:
        assert await http.post(f"http://127.0.0.1:{port}/", b"{}", {}) == 500
        assert await http.post(f"http://127.0.0.1:{port}/", b"{}", {"size": "small"}) == 200
        assert await http.post(f"http://127.0.0.1:{port}/", b"{}", {"size": "small"}) == 200
    finally:
        await http.close()
    assert rec.connections == 2  # the big answer's connection was closed, not drained


async def test_chunked_interim_and_close_delimited_answers(servers) -> None:
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nuntil the end",
    ]

    async def answer(writer: asyncio.StreamWriter, _n: int) -> None:
        writer.write(answers.pop(0))
        await writer.drain()
        if not answers:
            writer.close()

    port = await raw_server(servers, answer)
    assert await statuses(f"http://127.0.0.1:{port}/", 3) == [201, 200, 202]


async def test_a_kept_connection_the_receiver_closed_is_replaced(servers) -> None:
    """The receiver closes each connection after answering, without saying so: the next POST
    finds the kept connection dead before any answer and is sent again on a new one."""
    seen = 0

    async def answer_then_close(writer: asyncio.StreamWriter, _n: int) -> None:
        nonlocal seen
        seen += 1
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    port = await raw_server(servers, answer_then_close)
    http = client()
    try:
        assert await http.post(f"http://127.0.0.1:{port}/", b"{}", {}) == 204
        await asyncio.sleep(0.2)  # closed while kept
        assert await http.post(f"http://127.0.0.1:{port}/", b"{}", {}) == 204
    finally:
        await http.close()
    assert seen == 2


async def test_answers_that_are_not_http_fail(servers) -> None:
    async def garbage(writer: asyncio.StreamWriter, _n: int) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async def hang_up(writer: asyncio.StreamWriter, _n: int) -> None:
        writer.close()

    http = client()
    try:
        port = await raw_server(servers, garbage)
        with pytest.raises(BadResponse, match="invalid HTTP answer"):
            await http.post(f"http://127.0.0.1:{port}/", b"{}", {})
        port = await raw_server(servers, hang_up)
        with pytest.raises(BadResponse, match="closed the connection"):
            await http.post(f"http://127.0.0.1:{port}/", b"{}", {})
    finally:
        await http.close()


async def test_a_timed_out_post_leaves_no_connection_open(servers) -> None:
    lost = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers: reads until the client hangs up
        lost.set()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    servers.append(server)
    port = server.sockets[0].getsockname()[1]
    http = client()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await http.post(f"http://127.0.0.1:{port}/", b"{}", {})
        await asyncio.wait_for(lost.wait(), 5)
    finally:
        await http.close()


@pytest.mark.parametrize(
    ("allow_private", "url", "error", "match"),
    [
        (False, "http://localhost:{port}/", TargetRefused, r"127\.0\.0\.1 is a loopback address"),
        (False, "http://10.1.2.3/", TargetRefused, "10.1.2.3 is a private address"),
        (True, "http://127.0.0.1:{port}/", CannotConnect, r"127\.0\.0\.1: \[Errno 111\]"),
        (True, "http://no-such-host.invalid/", CannotConnect, "does not resolve"),
    ],
)
async def test_refused_and_unreachable_targets(
    unused_tcp_port: int, allow_private: bool, url: str, error: type, match: str
) -> None:
    http = client(allow_private=allow_private)
    try:
        with pytest.raises(error, match=match):
            await http.post(url.format(port=unused_tcp_port), b"{}", {})
    finally:
        await http.close()


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "marketsvc test receiver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_is_verified_against_the_trust_store(servers, tmp_path: Path) -> None:
    cert_file, key_file = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    rec, port = await recorder(servers, no_content)
    await rec.runner.cleanup()  # type: ignore[union-attr]
    port = await rec.start(ssl_context=server_tls)

    trusting = ssl.create_default_context(cafile=str(cert_file))
    http = client(ssl_context=trusting)
    try:
        assert await http.post(f"https://localhost:{port}/hook", b"{}", {}) == 204
        assert await http.post(f"https://localhost:{port}/hook", b"{}", {}) == 204
    finally:
        await http.close()
    assert rec.connections == 1

    default = client()  # the system's trust store: a self-signed receiver is refused
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await default.post(f"https://localhost:{port}/hook", b"{}", {})
    finally:
        await default.close()
    assert len(rec.requests) == 2


async def test_a_post_on_a_kept_connection_closed_unanswered_is_sent_again(servers) -> None:
    """The receiver drops a kept connection just as the next POST goes out (its keep-alive
    ran out): nothing came back on it, so the POST goes again on a new connection."""
    requests = 0

    async def answer_the_first_only(writer: asyncio.StreamWriter, n: int) -> None:
        nonlocal requests
        requests += 1
        if n > 0:
            writer.close()
            return
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    # each connection answers its first request and closes at its second, unanswered
    port = await raw_server(servers, answer_the_first_only)
    assert await statuses(f"http://127.0.0.1:{port}/", 2) == [204, 204]
    assert requests == 3  # the second POST twice: on the kept connection, then on a new one


async def test_a_connection_that_answered_more_than_asked_is_not_kept(servers) -> None:
    connections = 0

    async def two_answers(writer: asyncio.StreamWriter, _n: int) -> None:
        writer.write(
            b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 500 Stray\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()

    def count() -> None:
        nonlocal connections
        connections += 1

    port = await raw_server(servers, two_answers, on_connect=count)
    assert await statuses(f"http://127.0.0.1:{port}/", 2) == [204, 204]
    assert connections == 2


def test_under_uvloop_as_gunicorns_workers_run_it() -> None:
    """The workers run uvloop (aiohttp's GunicornUVLoopWebWorker), whose transports are not
    asyncio's classes; the tests above run on asyncio's loop."""

    async def scenario() -> list[int]:
        rec = Recorder(no_content)
        port = await rec.start()
        try:
            return await statuses(f"http://127.0.0.1:{port}/", 3)
        finally:
            assert rec.runner is not None
            await rec.runner.cleanup()

    assert uvloop.run(scenario()) == [204, 204, 204]
