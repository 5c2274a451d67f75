"""Whatever a client sends, the answer is the contract's problem+json, never a 500."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from aiohttp import web

from marketsvc.app import create_app
from marketsvc.web.routing import Access, endpoint

ID_PATHS = ["/api/v1/items/{}", "/api/v1/customers/{}"]
WRITES = [
    ("POST", "/api/v1/items"),
    ("PATCH", "/api/v1/items/1"),
    ("POST", "/api/v1/customers"),
    ("PATCH", "/api/v1/customers/1"),
]


def assert_problem(resp, body: dict, status: int) -> None:
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()


@pytest.mark.parametrize("path", ID_PATHS)
@pytest.mark.parametrize(
    "bad_id",
    [
        "abc",
        "0",
        "-1",
        "1.5",
        "9223372036854775808",
        "99999999999999999999999999",
        "%20",
        "\u00b2",  # isdigit() but not int(): was a 500 (found probing for the fuzzer)
        "\u0661",  # Arabic-Indic one: isdigit() and int() == 1, yet not an id
    ],
)
async def test_ids_that_are_not_positive_64_bit_integers_are_404(
    client, admin, path, bad_id
) -> None:
    resp = await client.get(path.format(bad_id), headers=admin)
    assert_problem(resp, await resp.json(), 404)


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_malformed_json_is_400(client, admin, method, path) -> None:
    headers = admin | {"Content-Type": "application/json"}
    resp = await client.request(method, path, data=b'{"name": ', headers=headers)
    assert_problem(resp, await resp.json(), 400)


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_body_that_is_not_json_is_415(client, admin, method, path, content_type) -> None:
    headers = admin | ({"Content-Type": content_type} if content_type else {})
    resp = await client.request(method, path, data=b"name=x", headers=headers)
    assert_problem(resp, await resp.json(), 415)


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("body", [b"[]", b"null", b"42", b'"x"', b"{}"])
async def test_json_that_is_not_the_right_object_is_422(client, admin, method, path, body) -> None:
    headers = admin | {"Content-Type": "application/json"}
    resp = await client.request(method, path, data=body, headers=headers)
    if body == b"{}" and method == "PATCH":  # a valid patch that changes nothing...
        assert_problem(resp, await resp.json(), 404)  # ...of a resource the empty database lacks
        return
    assert_problem(resp, await resp.json(), 422)


async def test_body_over_the_limit_is_413(aiohttp_client, settings, admin) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(settings, max_body_bytes=1024)))
    body = {"name": "x" * 5000, "price": "1.00", "stock": 1}
    resp = await client.post("/api/v1/items", json=body, headers=admin)
    assert_problem(resp, await resp.json(), 413)


async def test_unknown_route_is_404_problem(client) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert_problem(resp, await resp.json(), 404)


async def test_wrong_method_is_405_problem_with_allow(client) -> None:
    resp = await client.delete("/api/v1/items")
    assert_problem(resp, await resp.json(), 405)
    assert "GET" in resp.headers["Allow"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "after_id=-1",
        "after_id=x",
        "limit=1&limit=2",
        "colour=red",
        "limit=\u00b2",  # was a 500 (found probing for the fuzzer)
        "after_id=\u0661",
    ],
)
async def test_bad_paging_is_422(client, query) -> None:
    resp = await client.get(f"/api/v1/items?{query}")
    assert_problem(resp, await resp.json(), 422)


async def test_request_id_is_echoed_or_made(client) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/api/v1/items/999")
    assert len(made.headers["X-Request-ID"]) == 32
    streamed = await client.get("/api/v1/items", headers={"X-Request-ID": "s-1"})
    assert streamed.headers["X-Request-ID"] == "s-1"


async def test_unexpected_error_is_500_without_traceback_and_logged(
    aiohttp_client, settings, caplog
) -> None:
    @endpoint(summary="fails", access=Access.PUBLIC, tag="test")
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = create_app(settings)
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="marketsvc.errors"):
        resp = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    body = await resp.json()
    assert_problem(resp, body, 500)
    assert "secret internals" not in await resp.text()
    assert "Traceback" not in await resp.text()
    assert "req-500" in body["detail"]
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


async def test_made_request_ids_are_distinct(client) -> None:
    ids = {(await client.get("/healthz")).headers["X-Request-ID"] for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
