"""Problem details (RFC 9457): one title per type, whatever raised it; no library's words in
``detail``; each ``errors`` key says where the input came from."""

from __future__ import annotations

import pytest

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.web.openapi import build_document

# Written out here, not read from the code: a title that changes must break this test.
TITLES = {
    "urn:marketsvc:problem:bad-request": "Bad request",
    "urn:marketsvc:problem:unauthorized": "Unauthorized",
    "urn:marketsvc:problem:forbidden": "Forbidden",
    "urn:marketsvc:problem:not-found": "Not found",
    "urn:marketsvc:problem:method-not-allowed": "Method not allowed",
    "urn:marketsvc:problem:not-acceptable": "Not acceptable",
    "urn:marketsvc:problem:conflict": "Conflict",
    "urn:marketsvc:problem:gone": "Gone",
    "urn:marketsvc:problem:precondition-failed": "Precondition failed",
    "urn:marketsvc:problem:content-too-large": "Content too large",
    "urn:marketsvc:problem:unsupported-media-type": "Unsupported media type",
    "urn:marketsvc:problem:expectation-failed": "Expectation failed",
    "urn:marketsvc:problem:unprocessable-content": "Unprocessable content",
    "urn:marketsvc:problem:internal-server-error": "Internal server error",
    "urn:marketsvc:problem:service-unavailable": "Service unavailable",
}


async def test_every_kind_of_failure_of_one_status_has_one_type_and_title(
    client, admin, new_customer
) -> None:
    customer = await new_customer()
    json_headers = admin | {"Content-Type": "application/json"}
    requests = [
        ("GET", "/nowhere", {}, None),  # aiohttp's 404
        ("GET", "/api/v1/items/99999", {}, None),  # a domain NotFound
        ("GET", "/api/v1/items/abc", {}, None),  # a path id that names nothing
        ("POST", "/api/v1/items", json_headers, b'{"name": '),  # malformed JSON
        ("GET", "/api/v1/items?limit=2&cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAA", {}, None),  # cursor
        ("PUT", "/api/v1/items", admin, None),  # 405
        ("POST", "/api/v1/items", admin | {"Content-Type": "text/plain"}, b"x"),  # 415
        ("GET", "/api/v1/items?limit=0", {}, None),  # 422 from the query schema
        ("POST", "/api/v1/items", json_headers, b"{}"),  # 422 from the body schema
        ("POST", "/api/v1/orders", json_headers, b'{"customer_id": 99999, "lines": []}'),
        ("POST", "/api/v1/items", admin | {"Idempotency-Key": ""}, b"{}"),  # 422, a header
        ("GET", "/api/v1/customers", {}, None),  # 401
        ("GET", "/api/v1/customers", {"Authorization": "Bearer x.y.z"}, None),  # 401, bad token
        ("POST", "/api/v1/customers", json_headers, b"{}"),  # 422
    ]
    titles: dict[str, set[str]] = {}
    for method, path, headers, body in requests:
        resp = await client.request(method, path, headers=headers, data=body)
        assert resp.content_type == "application/problem+json", (method, path)
        problem = await resp.json()
        titles.setdefault(problem["type"], set()).add(problem["title"])
    again = await client.post(
        "/api/v1/customers",
        json={"name": "x", "email": customer["email"], "address": customer["address"]},
        headers=admin,
    )
    problem = await again.json()
    titles.setdefault(problem["type"], set()).add(problem["title"])
    assert {t: sorted(s) for t, s in titles.items()} == {t: [TITLES[t]] for t in titles}, (
        "one title per type, the one in the table"
    )
    assert len(titles) >= 7


def test_the_documented_examples_carry_the_served_titles() -> None:
    document = build_document(create_app(Settings()))
    examples = [
        response["content"]["application/problem+json"]["example"]
        for response in document["components"]["responses"].values()
    ]
    assert examples
    for example in examples:
        assert example["title"] == TITLES[example["type"]]


@pytest.mark.parametrize(
    "token",
    ["x.y.z", "not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.x", "eyJhbGciOiJub25lIn0.e30."],
)
async def test_a_broken_token_is_refused_without_the_librarys_words(client, token) -> None:
    resp = await client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    assert (await resp.json())["detail"] == "the token is not valid"


async def test_error_keys_name_the_body_the_query_or_the_header(client, admin) -> None:
    body = await client.post(
        "/api/v1/orders", json={"customer_id": 1, "lines": [{"item_id": 1}]}, headers=admin
    )
    assert list((await body.json())["errors"]) == ["body.lines.0.quantity"]
    whole = await client.post("/api/v1/items", json=[1], headers=admin)
    assert list((await whole.json())["errors"]) == ["body"]
    query = await client.get("/api/v1/items?limit=0&in_stock=maybe")
    assert sorted((await query.json())["errors"]) == ["query.in_stock", "query.limit"]
    header = await client.post(
        "/api/v1/items",
        json={"name": "x", "price": "1.00", "stock": 1},
        headers=admin | {"Idempotency-Key": "a\tb"},
    )
    assert list((await header.json())["errors"]) == ["header.Idempotency-Key"]
