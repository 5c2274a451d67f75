"""Pets with their owners over HTTP: created, handed over, released, deleted."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text

from marketsvc.db_accessor.users import find_owner
from marketsvc.store.engine import Database
from marketsvc.store.models import Pet
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.keys import DATABASE
from tests.api import created
from tests.pets_api import get_json, make_pet, make_user


async def test_create_pet_with_an_owner(client, admin) -> None:
    user = await make_user(client, admin, "Ada")
    resp = await client.post(
        "/api/v1/pets", json={"name": "Rex", "user_id": user["id"]}, headers=admin
    )
    pet = await created(client, admin, resp, "/api/v1/pets")
    assert pet == {"id": pet["id"], "name": "Rex", "user": {"id": user["id"], "name": "Ada"}}


@pytest.mark.parametrize("body", [{"name": "Rex"}, {"name": "Rex", "user_id": None}])
async def test_create_pet_without_an_owner(client, admin, body) -> None:
    resp = await client.post("/api/v1/pets", json=body, headers=admin)
    assert resp.status == 201
    assert (await resp.json())["user"] is None


async def test_create_pet_for_an_unknown_user_is_422_naming_user_id(client, admin) -> None:
    resp = await client.post("/api/v1/pets", json={"name": "Rex", "user_id": 4242}, headers=admin)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert "body.user_id" in (await resp.json())["errors"]
    assert await get_json(client, admin, "/api/v1/pets") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": " \t "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"user_id": None}, "name"),
        ({"name": "Rex", "user_id": "1"}, "user_id"),
        ({"name": "Rex", "user_id": 0}, "user_id"),
        ({"name": "Rex", "user_id": True}, "user_id"),
        ({"name": "Rex", "user_id": 1.5}, "user_id"),
        ({"name": "Rex", "user_id": 2**63}, "user_id"),
        ({"name": "Rex", "owner": 1}, "owner"),
        ({"name": "Rex", "user": {"id": 1}}, "user"),
    ],
)
async def test_invalid_pet_is_422_naming_the_field(client, admin, body, field) -> None:
    resp = await client.post("/api/v1/pets", json=body, headers=admin)
    assert resp.status == 422
    assert f"body.{field}" in (await resp.json())["errors"]


async def test_pet_names_keep_unicode_intact(client, admin) -> None:
    name = "Mo\u0301chi \U0001f431\u200d\U0001f464 \u72ac"  # combining mark and a ZWJ sequence
    pet = await make_pet(client, admin, f" {name} ")
    assert pet["name"] == name
    assert (await get_json(client, admin, f"/api/v1/pets/{pet['id']}"))["name"] == name


async def test_patch_hands_the_pet_to_another_user(client, admin) -> None:
    ada = await make_user(client, admin, "Ada", pets=("Rex",))
    grace = await make_user(client, admin, "Grace")
    pet_id = ada["pets"][0]["id"]
    resp = await client.patch(
        f"/api/v1/pets/{pet_id}", json={"user_id": grace["id"]}, headers=admin
    )
    assert resp.status == 200
    assert await resp.json() == {
        "id": pet_id,
        "name": "Rex",
        "user": {"id": grace["id"], "name": "Grace"},
    }
    assert (await get_json(client, admin, f"/api/v1/users/{ada['id']}"))["pets"] == []
    grace_now = await get_json(client, admin, f"/api/v1/users/{grace['id']}")
    assert grace_now["pets"] == [{"id": pet_id, "name": "Rex"}]


async def test_patch_with_null_user_releases_the_pet(client, admin) -> None:
    ada = await make_user(client, admin, "Ada", pets=("Rex",))
    pet_id = ada["pets"][0]["id"]
    resp = await client.patch(f"/api/v1/pets/{pet_id}", json={"user_id": None}, headers=admin)
    assert resp.status == 200
    assert (await resp.json())["user"] is None
    assert (await get_json(client, admin, f"/api/v1/pets/{pet_id}"))["user"] is None
    assert (await get_json(client, admin, f"/api/v1/users/{ada['id']}"))["pets"] == []


async def test_patch_gives_an_ownerless_pet_an_owner_and_a_new_name(client, admin) -> None:
    pet = await make_pet(client, admin, "Stray")
    ada = await make_user(client, admin, "Ada")
    change = {"name": "Biscuit", "user_id": ada["id"]}
    resp = await client.patch(f"/api/v1/pets/{pet['id']}", json=change, headers=admin)
    assert await resp.json() == {
        "id": pet["id"],
        "name": "Biscuit",
        "user": {"id": ada["id"], "name": "Ada"},
    }


async def test_patch_without_user_id_keeps_the_owner(client, admin) -> None:
    ada = await make_user(client, admin, "Ada", pets=("Rex",))
    pet_id = ada["pets"][0]["id"]
    resp = await client.patch(f"/api/v1/pets/{pet_id}", json={"name": "Max"}, headers=admin)
    assert await resp.json() == {
        "id": pet_id,
        "name": "Max",
        "user": {"id": ada["id"], "name": "Ada"},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": 4242}, "user_id"),
        ({"user_id": -1}, "user_id"),
        ({"user_id": "2"}, "user_id"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"id": 7}, "id"),
    ],
)
async def test_invalid_patch_is_422_and_changes_nothing(client, admin, body, field) -> None:
    ada = await make_user(client, admin, "Ada", pets=("Rex",))
    pet_id = ada["pets"][0]["id"]
    before = await get_json(client, admin, f"/api/v1/pets/{pet_id}")
    resp = await client.patch(f"/api/v1/pets/{pet_id}", json=body, headers=admin)
    assert resp.status == 422
    assert f"body.{field}" in (await resp.json())["errors"]
    assert await get_json(client, admin, f"/api/v1/pets/{pet_id}") == before


async def test_delete_pet_answers_204_and_its_owner_no_longer_lists_it(client, admin) -> None:
    ada = await make_user(client, admin, "Ada", pets=("Rex", "Luna"))
    rex, luna = ada["pets"]
    resp = await client.delete(f"/api/v1/pets/{rex['id']}", headers=admin)
    assert resp.status == 204
    assert await resp.read() == b""
    assert (await client.get(f"/api/v1/pets/{rex['id']}", headers=admin)).status == 404
    assert (await get_json(client, admin, f"/api/v1/users/{ada['id']}"))["pets"] == [luna]
    assert (await client.delete(f"/api/v1/pets/{rex['id']}", headers=admin)).status == 404


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)]
)
@pytest.mark.parametrize("pet_id", ["424242", "0", "-1", "1e3", "9223372036854775808"])
async def test_unknown_pet_is_404(client, admin, method, body, pet_id) -> None:
    resp = await client.request(method, f"/api/v1/pets/{pet_id}", json=body, headers=admin)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"


async def test_pets_stream_with_their_owners_in_id_order(client, admin) -> None:
    ada = await make_user(client, admin, "Ada", pets=("Rex",))
    stray = await make_pet(client, admin, "Stray")
    luna = await make_pet(client, admin, "Luna", ada["id"])
    rex = {"id": ada["pets"][0]["id"], "name": "Rex", "user": {"id": ada["id"], "name": "Ada"}}
    resp = await client.get("/api/v1/pets", headers=admin)
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert await resp.json() == [rex, stray, luna]
    page = await get_json(client, admin, f"/api/v1/pets?after_id={rex['id']}&limit=1")
    assert page == [stray]
    nd = await client.get("/api/v1/pets", headers=admin | {"Accept": "application/x-ndjson"})
    assert nd.content_type == "application/x-ndjson"
    assert [json.loads(line) for line in (await nd.text()).splitlines()] == [rex, stray, luna]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "after_id=x", "colour=red"])
async def test_malformed_paging_is_422(client, admin, query) -> None:
    assert (await client.get(f"/api/v1/pets?{query}", headers=admin)).status == 422


async def test_seed_creates_users_with_pets(client, admin, settings) -> None:
    plan = SeedPlan(customers=0, items=0, orders=0, users=5, pets_per_user=3)
    counts = await seed(settings, plan, progress=False)
    assert (counts["users"], counts["pets"]) == (5, 15)
    users = await get_json(client, admin, "/api/v1/users")
    assert [len(u["pets"]) for u in users] == [3] * 5
    pets = await get_json(client, admin, "/api/v1/pets")
    owners = {u["id"]: {"id": u["id"], "name": u["name"]} for u in users}
    assert len(pets) == 15
    assert all(p["user"] == owners[p["user"]["id"]] for p in pets)


class WriterQueue(asyncio.Lock):
    """The SQLite writer queue's lock, with an event set when a writer finds it taken."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def acquire(self) -> bool:
        if self.locked():
            self.waiting.set()
        return await super().acquire()


async def delete_is_waiting(database: Database) -> None:
    """Returns once the DELETE waits for the hand-over: in the writer queue (SQLite) or on the
    user's row lock (PostgreSQL, seen in pg_stat_activity)."""
    if isinstance(database._writers, WriterQueue):
        await database._writers.waiting.wait()
        return
    while True:
        async with database.read() as conn:
            if await conn.scalar(LOCK_WAITERS):
                return
        await asyncio.sleep(0.01)


LOCK_WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM users%'"
)


async def test_deleting_the_user_a_pet_is_being_handed_to_never_breaks_the_key(
    client, admin
) -> None:
    """The receiving user is locked until the hand-over commits; then its deletion frees the pet.

    Without the lock, PostgreSQL would let the DELETE commit in between and the hand-over's
    UPDATE would fail on the foreign key (a 500); SQLite serialises the two writers anyway.
    """
    grace = await make_user(client, admin, "Grace")
    pet = await make_pet(client, admin, "Rex")
    database = client.app[DATABASE]
    if database.is_sqlite:
        database._writers = WriterQueue()  # the same queue, telling when a writer joins it
    async with database.change() as session:
        owner = await find_owner(session, grace["id"])
        deleting = asyncio.create_task(client.delete(f"/api/v1/users/{grace['id']}", headers=admin))
        async with asyncio.timeout(30):
            await delete_is_waiting(database)
        assert not deleting.done()
        (await session.get(Pet, pet["id"])).user_id = owner.id
    assert (await deleting).status == 204
    assert (await get_json(client, admin, f"/api/v1/pets/{pet['id']}"))["user"] is None
