"""Small assertions many API tests share."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient


async def created(
    client: TestClient, headers: dict[str, str], resp: ClientResponse, collection: str
) -> dict[str, Any]:
    """A 201's body, once its ``Location`` is shown to name it and to answer the same body."""
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert resp.headers["Location"] == f"{collection}/{body['id']}"
    again = await client.get(resp.headers["Location"], headers=headers)
    assert await again.json() == body
    return body
