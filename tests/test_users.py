"""Users with their pets over HTTP."""

from __future__ import annotations

import json

import pytest

from marketsvc.web.keys import DATABASE
from tests.api import created
from tests.pets_api import get_json, make_pet, make_user, sql_log


async def test_create_user_with_pets_returns_it_with_location(client, admin) -> None:
    body = {"name": "Ada Lovelace", "pets": [{"name": "Rex"}, {"name": "Mittens"}]}
    resp = await client.post("/api/v1/users", json=body, headers=admin)
    user = await created(client, admin, resp, "/api/v1/users")
    assert user["name"] == "Ada Lovelace"
    assert [p["name"] for p in user["pets"]] == ["Rex", "Mittens"]


async def test_create_user_without_pets_has_an_empty_list(client, admin) -> None:
    resp = await client.post("/api/v1/users", json={"name": "Grace"}, headers=admin)
    assert resp.status == 201
    assert (await resp.json())["pets"] == []


async def test_names_are_trimmed_and_unicode_kept_intact(client, admin) -> None:
    decomposed = "Zoe\u0301 \u00d8ster \U0001f415 \u738b"  # e + combining acute, not NFC-folded
    user = await make_user(client, admin, f"  {decomposed}\t", pets=("  Lu\u0301na ",))
    assert user["name"] == decomposed
    assert user["pets"][0]["name"] == "Lu\u0301na"
    assert (await get_json(client, admin, f"/api/v1/users/{user['id']}")) == user


async def test_a_name_of_100_characters_fits_and_101_does_not(client, admin) -> None:
    longest = "\U0001f408" * 100  # 100 characters, 400 bytes in UTF-8
    user = await make_user(client, admin, longest)
    assert (await get_json(client, admin, f"/api/v1/users/{user['id']}"))["name"] == longest
    resp = await client.post("/api/v1/users", json={"name": longest + "x"}, headers=admin)
    assert resp.status == 422
    assert "body.name" in (await resp.json())["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"name": 7}, "name"),
        ({"name": None}, "name"),
        ({}, "name"),
        ({"name": "a", "id": 5}, "id"),
        ({"name": "a", "nick": "b"}, "nick"),
        ({"name": "a", "pets": [{"name": " "}]}, "pets.0.name"),
        ({"name": "a", "pets": [{"name": "b", "user_id": 1}]}, "pets.0.user_id"),
        ({"name": "a", "pets": "Rex"}, "pets"),
        ({"name": "a", "pets": [{"name": "b"}] * 101}, "pets"),
    ],
)
async def test_invalid_user_is_422_naming_the_field(client, admin, body, field) -> None:
    resp = await client.post("/api/v1/users", json=body, headers=admin)
    assert resp.status == 422
    assert f"body.{field}" in (await resp.json())["errors"]
    assert await get_json(client, admin, "/api/v1/users") == []


async def test_patch_renames_and_keeps_the_pets(client, admin) -> None:
    user = await make_user(client, admin, "Ada", pets=("Rex",))
    resp = await client.patch(f"/api/v1/users/{user['id']}", json={"name": "Ida"}, headers=admin)
    assert resp.status == 200
    assert await resp.json() == user | {"name": "Ida"}


@pytest.mark.parametrize(
    ("body", "field"), [({"name": " "}, "name"), ({"pets": []}, "pets"), ({"id": 9}, "id")]
)
async def test_invalid_patch_is_422_and_changes_nothing(client, admin, body, field) -> None:
    user = await make_user(client, admin, "Ada")
    resp = await client.patch(f"/api/v1/users/{user['id']}", json=body, headers=admin)
    assert resp.status == 422
    assert f"body.{field}" in (await resp.json())["errors"]
    assert await get_json(client, admin, f"/api/v1/users/{user['id']}") == user


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/users/{id}", None),
        ("PATCH", "/api/v1/users/{id}", {"name": "x"}),
        ("DELETE", "/api/v1/users/{id}", None),
        ("GET", "/api/v1/users/{id}/pets", None),
        ("POST", "/api/v1/users/{id}/pets", {"name": "x"}),
    ],
)
@pytest.mark.parametrize("user_id", ["424242", "0", "abc", "99999999999999999999"])
async def test_unknown_user_is_404(client, admin, method, path, body, user_id) -> None:
    resp = await client.request(method, path.format(id=user_id), json=body, headers=admin)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"


async def test_delete_user_leaves_its_pets_ownerless(client, admin) -> None:
    doomed = await make_user(client, admin, "Ada", pets=("Rex", "Mittens"))
    other = await make_user(client, admin, "Grace", pets=("Luna",))
    resp = await client.delete(f"/api/v1/users/{doomed['id']}", headers=admin)
    assert resp.status == 204
    assert await resp.read() == b""
    assert (await client.get(f"/api/v1/users/{doomed['id']}", headers=admin)).status == 404
    owners = {p["name"]: p["user"] for p in await get_json(client, admin, "/api/v1/pets")}
    assert owners == {"Rex": None, "Mittens": None, "Luna": {"id": other["id"], "name": "Grace"}}
    assert await get_json(client, admin, "/api/v1/users") == [other]
    assert (await client.delete(f"/api/v1/users/{doomed['id']}", headers=admin)).status == 404


async def test_delete_user_releases_pets_and_deletes_in_one_transaction(client, admin) -> None:
    user = await make_user(client, admin, "Ada", pets=("Rex",))
    with sql_log(client.app[DATABASE].engine) as log:
        resp = await client.delete(f"/api/v1/users/{user['id']}", headers=admin)
    assert resp.status == 204
    writes = [" ".join(e.split()[:3]) for e in log if not e.upper().startswith(("SELECT", "BEGIN"))]
    assert writes == ["<begin>", "UPDATE pets SET", "DELETE FROM users", "<commit>"]


async def test_add_pet_to_user_answers_201_with_the_pet_and_its_owner(client, admin) -> None:
    user = await make_user(client, admin, "Ada", pets=("Rex",))
    path = f"/api/v1/users/{user['id']}/pets"
    resp = await client.post(path, json={"name": " Luna "}, headers=admin)
    pet = await created(client, admin, resp, "/api/v1/pets")
    assert pet == {"id": pet["id"], "name": "Luna", "user": {"id": user["id"], "name": "Ada"}}
    again = await get_json(client, admin, f"/api/v1/users/{user['id']}")
    assert [p["name"] for p in again["pets"]] == ["Rex", "Luna"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": ""}, "name"), ({}, "name"), ({"name": "a", "user_id": 1}, "user_id")],
)
async def test_invalid_pet_for_user_is_422(client, admin, body, field) -> None:
    user = await make_user(client, admin, "Ada")
    resp = await client.post(f"/api/v1/users/{user['id']}/pets", json=body, headers=admin)
    assert resp.status == 422
    assert f"body.{field}" in (await resp.json())["errors"]


async def test_user_pets_stream_only_that_users_pets_in_id_order(client, admin) -> None:
    ada = await make_user(client, admin, "Ada", pets=("Rex", "Luna"))
    await make_user(client, admin, "Grace", pets=("Mochi",))
    await make_pet(client, admin, "Stray")
    late = await make_pet(client, admin, "Ziggy", ada["id"])
    path = f"/api/v1/users/{ada['id']}/pets"
    resp = await client.get(path, headers=admin)
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    pets = await resp.json()
    assert [p["name"] for p in pets] == ["Rex", "Luna", "Ziggy"]
    assert all(p["user"] == {"id": ada["id"], "name": "Ada"} for p in pets)
    page = await get_json(client, admin, f"{path}?after_id={pets[0]['id']}&limit=1")
    assert page == [pets[1]]
    nd = await client.get(path, headers=admin | {"Accept": "application/x-ndjson"})
    assert [json.loads(line) for line in (await nd.text()).splitlines()][-1] == late


async def test_user_with_no_pets_streams_an_empty_array(client, admin) -> None:
    user = await make_user(client, admin, "Ada")
    assert await get_json(client, admin, f"/api/v1/users/{user['id']}/pets") == []


async def test_users_stream_with_their_pets_and_page_by_id(client, admin) -> None:
    made = [await make_user(client, admin, f"User {n}", pets=("a",) * n) for n in range(4)]
    resp = await client.get("/api/v1/users", headers=admin)
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert await resp.json() == made
    page = await get_json(client, admin, f"/api/v1/users?after_id={made[1]['id']}&limit=2")
    assert page == made[2:4]
    bad = await client.get("/api/v1/users?limit=0", headers=admin)
    assert bad.status == 422
