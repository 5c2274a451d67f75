"""Lists follow the client's Accept header (RFC 9110): q-values honoured, Vary sent, 406 when
nothing acceptable can be produced."""

from __future__ import annotations

import pytest

from marketsvc.web.negotiation import choose

JSON, NDJSON = "application/json", "application/x-ndjson"
OFFERED = (JSON, NDJSON)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (NDJSON, NDJSON),
        (f"{NDJSON};q=0, {JSON}", JSON),
        (f"{NDJSON};q=0.5, {JSON};q=0.4", NDJSON),
        (f"{JSON};q=0.9, */*;q=1", NDJSON),  # the specific range decides JSON's quality
        (f"application/*;q=0.2, {NDJSON}", NDJSON),
        (f"*/*;q=0.1, {JSON};q=0", NDJSON),
        ("APPLICATION/X-NDJSON", NDJSON),
        (f"{JSON}; charset=utf-8", JSON),
        ("text/html", None),
        (f"{JSON};q=0, {NDJSON};q=0", None),
        ("*/*;q=0", None),
        ("text/*, image/png", None),
        (f"{JSON};q=abc", None),  # a malformed range is ignored, not read as q=1
        ("garbage", None),
        (f"garbage, {NDJSON}", NDJSON),
    ],
)
def test_choose(accept: str | None, chosen: str | None) -> None:
    assert choose(accept, OFFERED) == chosen


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, JSON),
        ("*/*", JSON),
        (f"{NDJSON};q=0, {JSON}", JSON),
        (f"{JSON};q=0.1, {NDJSON}", NDJSON),
    ],
)
async def test_a_list_answers_in_the_type_the_client_prefers(
    client, admin, new_customer, accept: str | None, content_type: str
) -> None:
    await new_customer()
    headers = admin | ({"Accept": accept} if accept is not None else {})
    resp = await client.get("/api/v1/customers", headers=headers)
    assert resp.status == 200
    assert resp.content_type == content_type
    assert resp.headers["Vary"] == "Accept"
    body = await resp.text()
    assert body.startswith("[") if content_type == JSON else body.endswith("}\n")


async def test_a_list_nobody_accepts_is_406_problem_json(client, admin) -> None:
    resp = await client.get("/api/v1/customers", headers=admin | {"Accept": "text/html"})
    assert resp.status == 406
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["status"] == 406
    assert "text/html" in problem["detail"]
