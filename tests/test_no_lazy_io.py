"""No hidden I/O: every relationship is loaded by the query that needs it, or the access raises.

MissingGreenlet is what async SQLAlchemy raises when an attribute access tries to do I/O outside
an ``await``. Here that cannot happen: relationships are ``raise_on_sql`` (an unloaded one raises
InvalidRequestError at once, without touching the database), sessions never expire attributes
on commit, and every users/pets route is exercised below.
"""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import lazyload

from marketsvc.store.models import Base, Pet, User
from marketsvc.store.seed import SeedPlan
from marketsvc.web.keys import DATABASE
from tests.pets_api import get_json, make_pet, make_user, selects, sql_log

RAISED = "lazy='raise_on_sql'"


def test_every_relationship_raises_on_implicit_sql() -> None:
    lazy = {
        f"{mapper.class_.__name__}.{rel.key}": rel.lazy
        for mapper in Base.registry.mappers
        for rel in mapper.relationships
    }
    assert {"User.pets", "Pet.user"} <= set(lazy)
    assert {name: how for name, how in lazy.items() if how != "raise_on_sql"} == {}


async def test_sessions_never_expire_what_they_loaded(client, admin) -> None:
    """After a commit, what a session loaded or wrote still reads without I/O: an expired
    attribute would raise here (MissingGreenlet in the session, DetachedInstanceError after)."""
    database = client.app[DATABASE]
    user = await make_user(client, admin, "Ada")
    async with database.change() as session:
        written = User(name="Grace")
        session.add(written)
    assert (written.id, written.name) == (user["id"] + 1, "Grace")
    for open_session in (database.load, database.stream):
        async with open_session() as session:
            loaded = await session.get(User, user["id"])
            await session.commit()
            with sql_log(database.engine) as log:
                assert loaded.name == "Ada"
            assert log == []
        assert loaded.name == "Ada"  # and after the session closed


async def test_an_unloaded_relationship_raises_instead_of_doing_io(client, admin) -> None:
    user = await make_user(client, admin, "Ada", pets=("Rex",))
    engine = client.app[DATABASE].engine
    async with client.app[DATABASE].load() as session:
        found = await session.get(User, user["id"])
        with sql_log(engine) as log, pytest.raises(InvalidRequestError, match=RAISED):
            _ = found.pets
        assert log == []


async def test_an_owner_is_loaded_or_raises_never_fetched_behind_our_back(client, admin) -> None:
    user = await make_user(client, admin, "Ada", pets=("Rex",))
    engine = client.app[DATABASE].engine
    async with client.app[DATABASE].load() as session:
        pet = await session.get(Pet, user["pets"][0]["id"])
        with sql_log(engine) as log, pytest.raises(InvalidRequestError, match=RAISED):
            _ = pet.user
        assert log == []
        owner = await session.get(User, user["id"])  # in the identity map now: no SQL needed
        with sql_log(engine) as log:
            assert pet.user is owner
        assert log == []


async def test_awaitable_attrs_is_the_explicit_lazy_load(client, admin) -> None:
    user = await make_user(client, admin, "Ada", pets=("Rex", "Luna"))
    stmt = select(User).options(lazyload(User.pets)).where(User.id == user["id"])
    async with client.app[DATABASE].load() as session:
        found = (await session.execute(stmt)).scalar_one()
        pets = await found.awaitable_attrs.pets  # the load happens here, awaited
        assert [p.name for p in pets] == ["Rex", "Luna"]
        assert found.pets is pets  # loaded now: plain access does no more I/O


def _route_table(user_id: int, pet_id: int, other_id: int) -> dict[tuple[str, str], tuple]:
    """One real request, and the status it must get, for every users and pets route."""
    u, p = f"/api/v1/users/{user_id}", f"/api/v1/pets/{pet_id}"
    return {
        ("GET", "/api/v1/users"): ("/api/v1/users", None, 200),
        ("POST", "/api/v1/users"): ("/api/v1/users", {"name": "N", "pets": [{"name": "P"}]}, 201),
        ("GET", "/api/v1/users/{id}"): (u, None, 200),
        ("PATCH", "/api/v1/users/{id}"): (u, {"name": "Renamed"}, 200),
        ("GET", "/api/v1/users/{id}/pets"): (f"{u}/pets", None, 200),
        ("POST", "/api/v1/users/{id}/pets"): (f"{u}/pets", {"name": "New"}, 201),
        ("GET", "/api/v1/pets"): ("/api/v1/pets", None, 200),
        ("POST", "/api/v1/pets"): ("/api/v1/pets", {"name": "Q", "user_id": user_id}, 201),
        ("GET", "/api/v1/pets/{id}"): (p, None, 200),
        ("PATCH", "/api/v1/pets/{id}"): (p, {"user_id": other_id}, 200),
        ("DELETE", "/api/v1/pets/{id}"): (p, None, 204),
        ("DELETE", "/api/v1/users/{id}"): (u, None, 204),
    }


async def test_every_users_and_pets_route_answers_without_lazy_io(client, admin) -> None:
    user = await make_user(client, admin, "Ada", pets=("Rex", "Luna"))
    other = await make_user(client, admin, "Grace", pets=("Mochi",))
    pet = await make_pet(client, admin, "Ziggy", user["id"])
    table = _route_table(user["id"], pet["id"], other["id"])
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD"
        and route.resource.canonical.startswith(("/api/v1/users", "/api/v1/pets"))
    }
    assert served == set(table), "a users/pets route is missing from this sweep"
    for (method, _), (path, body, status) in table.items():  # deletes come last
        resp = await client.request(method, path, json=body, headers=admin)
        assert resp.status == status, f"{method} {path}: {await resp.text()}"


@pytest.mark.parametrize(("path", "method"), [("/api/v1/users", "GET"), ("/api/v1/pets", "POST")])
async def test_customers_may_not_touch_users_or_pets(client, as_customer, path, method) -> None:
    resp = await client.request(method, path, json={"name": "x"}, headers=as_customer(1))
    assert resp.status == 403
    anonymous = await client.request(method, path, json={"name": "x"})
    assert anonymous.status == 401


def users_with_pets(users: int) -> SeedPlan:
    return SeedPlan(customers=0, items=0, orders=0, users=users, pets_per_user=4)


async def test_streaming_pets_with_owners_takes_a_bounded_number_of_queries(
    seeded_client, admin
) -> None:
    app, client = await seeded_client(users_with_pets(750), 100)
    with sql_log(app[DATABASE].engine) as log:
        pets = await get_json(client, admin, "/api/v1/pets")
    assert len(pets) == 3000
    assert all(p["user"] is not None for p in pets)
    chunks = math.ceil(len(pets) / 100)
    assert len(selects(log)) <= chunks + 1, selects(log)  # per chunk, never per row (3000)


async def test_streaming_users_with_pets_takes_one_query_per_chunk(seeded_client, admin) -> None:
    app, client = await seeded_client(users_with_pets(750), 100)
    with sql_log(app[DATABASE].engine) as log:
        users = await get_json(client, admin, "/api/v1/users")
    assert [len(u["pets"]) for u in users] == [4] * 750
    chunks = math.ceil(len(users) / 100)
    assert len(selects(log)) <= chunks + 1, selects(log)  # users, then pets IN (...) per chunk


async def test_pets_with_owners_still_stream_while_the_query_is_open(seeded_client, admin) -> None:
    """The owner join does not make the ORM buffer the result: the cursor stays open."""
    app, client = await seeded_client(users_with_pets(2500), 100)
    pool = app[DATABASE].engine.pool
    resp = await client.get("/api/v1/pets", headers=admin)
    first = await resp.content.readany()
    assert first.startswith(b'[{"id":1,')
    assert pool.checkedout() == 1
    assert len(json.loads(first + await resp.read())) == 10_000
    assert pool.checkedout() == 0
