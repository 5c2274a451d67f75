"""Every list pages with ``limit`` and an opaque cursor (``Link: <...>; rel="next"``), in id
order, through inserts and deletes between pages; a changed or borrowed cursor is a 400."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.links import MAX_PAGES, next_link
from tests.ordering import place
from tests.pets_api import make_pet, make_user

LISTS = [
    "/api/v1/customers",
    "/api/v1/orders",
    "/api/v1/customers/{customer}/orders",
    "/api/v1/users",
    "/api/v1/pets",
    "/api/v1/users/{user}/pets",
]


async def pages(client, headers, path: str) -> list[list[int]]:
    found, url = [], path
    for _ in range(MAX_PAGES):
        resp = await client.get(url, headers=headers)
        assert resp.status == 200, await resp.text()
        found.append([row["id"] for row in await resp.json()])
        url = next_link(resp)
        if url is None:
            return found
    raise AssertionError("the cursor does not advance")


@pytest.fixture
async def world(client, admin, new_customer, new_item) -> dict[str, int]:
    customers = [await new_customer() for _ in range(5)]
    item = await new_item(stock=100)
    for _ in range(5):
        await place(client, admin, customers[0]["id"], (item["id"], 1))
    user = await make_user(client, admin, "Ada", pets=("A", "B", "C", "D", "E"))
    for name in ("Bo", "Cy", "Di", "Ed"):
        await make_user(client, admin, name)
    return {"customer": customers[0]["id"], "user": user["id"]}


@pytest.mark.parametrize("template", LISTS)
async def test_pages_of_two_add_up_to_the_whole_list(client, admin, world, template) -> None:
    path = template.format(**world)
    everything = [row["id"] for row in await (await client.get(path, headers=admin)).json()]
    assert len(everything) == 5
    found = await pages(client, admin, path + "?limit=2")
    assert found == [everything[:2], everything[2:4], everything[4:]]


async def test_a_cursor_survives_inserts_and_deletes(client, admin, world) -> None:
    path = f"/api/v1/users/{world['user']}/pets"
    first = await client.get(path + "?limit=2", headers=admin)
    seen = [pet["id"] for pet in await first.json()]
    everything = [pet["id"] for pet in await (await client.get(path, headers=admin)).json()]
    gone = everything[3]
    assert (await client.delete(f"/api/v1/pets/{gone}", headers=admin)).status == 204
    new = await make_pet(client, admin, "F", user_id=world["user"])
    rest = await pages(client, admin, next_link(first))
    after = [pet_id for page in rest for pet_id in page]
    assert seen + after == [i for i in everything if i != gone] + [new["id"]]


async def test_a_changed_or_borrowed_cursor_is_400(client, admin, world) -> None:
    link = next_link(await client.get("/api/v1/pets?limit=2", headers=admin))
    cursor = parse_qs(urlsplit(link).query)["cursor"][0]
    changed = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    for url in (
        f"/api/v1/pets?limit=2&cursor={changed}",
        f"/api/v1/users?limit=2&cursor={cursor}",
        f"/api/v1/users/{world['user']}/pets?limit=2&cursor={cursor}",
    ):
        resp = await client.get(url, headers=admin)
        assert resp.status == 400, url
        assert list((await resp.json())["errors"]) == ["query.cursor"]
    orders = next_link(await client.get("/api/v1/orders?limit=2&status=pending", headers=admin))
    other = parse_qs(urlsplit(orders).query)["cursor"][0]
    borrowed = await client.get(f"/api/v1/orders?status=cancelled&cursor={other}", headers=admin)
    assert borrowed.status == 400
    both = await client.get(f"/api/v1/pets?after_id=1&cursor={cursor}", headers=admin)
    assert both.status == 422
    assert list((await both.json())["errors"]) == ["query.after_id"]
