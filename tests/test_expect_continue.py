"""``Expect: 100-continue``: a body over MARKETSVC_MAX_BODY_BYTES is refused before it is sent."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

MAX = 1024 * 1024  # Settings' default, which the fixture keeps


async def _exchange(client: TestClient, head: str, body: bytes | None = None) -> bytes:
    """Send ``head``; read what the server answers before any body; then send ``body``."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if body is not None and first.startswith(b"HTTP/1.1 100"):
            writer.write(body)
            await writer.drain()
            first += await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return first
    finally:
        writer.close()


def _post(length: int, token: str, expect: str = "100-continue") -> str:
    return (
        "POST /api/v1/items HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: {token}\r\nContent-Length: {length}\r\nExpect: {expect}\r\n\r\n"
    )


async def test_an_announced_body_over_the_limit_is_413_without_100_continue(client, admin) -> None:
    answer = await _exchange(client, _post(MAX + 1, admin["Authorization"]))
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"100 Continue" not in answer
    assert b"application/problem+json" in answer


async def test_a_body_within_the_limit_gets_100_continue_then_its_answer(client, admin) -> None:
    body = b'{"name": "Teapot", "description": "", "price": "12.50", "stock": 4}'
    answer = await _exchange(client, _post(len(body), admin["Authorization"]), body)
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201"), answer


@pytest.mark.parametrize("expect", ["something-else", "100-continue-please"])
async def test_an_unknown_expectation_is_417_problem_json(client, admin, expect: str) -> None:
    answer = await _exchange(client, _post(2, admin["Authorization"], expect))
    assert answer.startswith(b"HTTP/1.1 417"), answer
    assert b"application/problem+json" in answer
