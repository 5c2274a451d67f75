"""Each response shape is declared once: the dumpers generated from the schemas equal marshmallow's
own ``Schema().dump()`` on every row of a seeded database, and follow a schema when it changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from marshmallow import Schema, fields, post_dump
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from marketsvc.app import create_app
from marketsvc.db_accessor import customers, orders, pets, seller_orders, sellers, users
from marketsvc.db_accessor.balances import seller_balance
from marketsvc.db_accessor.core import execute
from marketsvc.db_accessor.item_listing import ItemListing, listing_statement
from marketsvc.db_accessor.payment_inbox import InboxEntry
from marketsvc.schemas.common import Id, Money, UtcDateTime, format_timestamp
from marketsvc.schemas.customers import (
    AddressSchema,
    CustomerOut,
    dump_customer,
    dump_customer_row,
)
from marketsvc.schemas.dumping import dumper, row_columns, row_dumper
from marketsvc.schemas.items import ItemOut, dump_item, dump_item_row
from marketsvc.schemas.ops import HealthOut, Probe, ReadinessOut, dump_readiness
from marketsvc.schemas.orders import (
    LineRequest,
    OrderOut,
    TotalOut,
    TotalsOut,
    dump_order,
    dump_total,
    dump_totals,
)
from marketsvc.schemas.payments import PaymentEventOut, dump_payment_event
from marketsvc.schemas.seller_orders import (
    BalanceOut,
    SellerOrderOut,
    dump_balance,
    dump_seller_order,
)
from marketsvc.schemas.sellers import SellerOut, dump_seller
from marketsvc.schemas.users import PetOut, UserOut, dump_pet, dump_user
from marketsvc.schemas.webhook_subscriptions import SubscriptionOut, SubscriptionWithSecret
from marketsvc.schemas.webhooks import DeliveryOut, ReplayOut
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import Address, Customer, Item, Pet, User
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.openapi import documented_routes

PLAN = SeedPlan(customers=25, items=8, orders=30, users=4, pets_per_user=2, random_seed=5)
# every response schema a route declares, and the test below that proves its dumper
COVERED = {
    ItemOut,
    CustomerOut,
    OrderOut,
    TotalOut,
    TotalsOut,
    UserOut,
    PetOut,
    HealthOut,
    ReadinessOut,
    PaymentEventOut,
    SellerOut,
    SellerOrderOut,
    BalanceOut,
}
# dumped by marshmallow itself (admin routes of webhooks, seldom called): nothing to prove
MARSHMALLOW_DUMPED = {SubscriptionOut, SubscriptionWithSecret, DeliveryOut, ReplayOut}


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The seeded rows, plus what seeding never makes: an ownerless pet, a user without pets and
    an order placed now (a timestamp with microseconds)."""
    await seed(settings, PLAN, progress=False)
    database = Database(settings)
    async with database.change() as session:
        await pets.create_pet(session, {"name": "Stray", "user_id": None})
        await users.create_user(session, {"name": "Nobody", "pets": []})
    async with database.change_rows() as conn:
        await orders.place_order(conn, 1, [LineRequest(1, 2, 0), LineRequest(2, 5, 1)])
    yield database
    await database.dispose()


def test_every_response_schema_has_its_dumper_proven() -> None:
    declared = {
        type(spec.response)
        for *_, spec in documented_routes(create_app(Settings()))
        if isinstance(spec.response, Schema)  # the event feed's oneOf of envelopes is a raw JSON
    }  # Schema; the data inside each envelope is dumped by the dumpers proven here
    assert declared == COVERED | MARSHMALLOW_DUMPED


async def test_items(db: Database) -> None:
    async with db.load() as session:
        rows = (await session.scalars(select(Item))).all()
    assert len(rows) == PLAN.items
    for item in rows:
        assert dump_item(item) == ItemOut().dump(item)
    async with db.read() as conn:  # as the catalogue lists them: the columns, then the score
        listed = (await execute(conn, listing_statement(conn.dialect.name, ItemListing()))).all()
    by_id = sorted(rows, key=lambda item: item.id)
    assert [dump_item_row(row) for row in listed] == [ItemOut().dump(item) for item in by_id]


async def test_sellers_seeded_migrated_and_new(db: Database) -> None:
    """Seeded (bulk), the default one (the migration's SQL timestamp) and one the app adds."""
    async with db.change() as session:
        await sellers.create_seller(session, {"name": "Zoë", "commission_bps": 1})
    async with db.stream() as session:
        rows = [s async for chunk in sellers.stream_sellers(session) for s in chunk]
    assert len(rows) == 1 + PLAN.sellers + 1
    for seller in rows:
        assert dump_seller(seller) == SellerOut().dump(seller)
        assert dump_seller(seller)["created_at"].endswith("Z")


async def test_customers_as_rows_and_as_entities(db: Database) -> None:
    async with db.load() as session:
        stmt = select(Customer).options(joinedload(Customer.address))
        entities = {c.id: c for c in (await session.scalars(stmt)).all()}
    async with db.stream() as session:
        streamed = [row async for chunk in customers.stream_customers(session) for row in chunk]
    assert len(streamed) == len(entities) == PLAN.customers
    assert any(c.address.flat_number is None for c in entities.values())
    assert any(c.address.flat_number is not None for c in entities.values())
    for row in streamed:  # plain tuples, in CUSTOMER_COLUMNS' order (the id first)
        customer_id = row[0]
        expected = CustomerOut().dump(entities[customer_id])
        assert dump_customer_row(row) == expected
        assert dump_customer(entities[customer_id]) == expected
        async with db.read() as conn:
            assert (
                dump_customer_row(await customers.get_customer_row(conn, customer_id)) == expected
            )


async def test_orders_streamed_read_and_placed(db: Database) -> None:
    async with db.stream() as session:
        entities = [o async for chunk in orders.stream_orders(session) for o in chunk]
    assert len(entities) == PLAN.orders + 1
    for order in entities:
        expected = OrderOut().dump(order)
        assert dump_order(order) == expected
        async with db.read() as conn:
            view = await orders.get_order(conn, order.id)
        assert dump_order(view) == OrderOut().dump(view) == expected
    async with db.change_rows() as conn:
        placed = await orders.place_order(conn, 2, [LineRequest(3, 1, 0), LineRequest(4, 3, 1)])
    assert dump_order(placed) == OrderOut().dump(placed)
    assert placed.placed_at.microsecond or dump_order(placed)["placed_at"].endswith("Z")


async def test_totals_one_and_many(db: Database) -> None:
    ids = list(range(1, PLAN.orders + 2))
    async with db.stream() as session:
        by_id = {
            o.id: dump_order(o) async for chunk in orders.stream_orders(session) for o in chunk
        }
    async with db.read() as conn:
        many = await orders.order_totals(conn, [*ids, 10_000])
        for order_id in ids:
            one = await orders.order_total(conn, order_id)
            assert dump_total(one) == TotalOut().dump(one)
            assert dump_total(one)["total"] == by_id[order_id]["total"]  # SQL sum = Python sum
    assert dump_totals(many) == TotalsOut().dump(many)
    assert dump_totals(many)["missing"] == [10_000]


async def test_seller_orders_streamed_and_read_and_balances(db: Database) -> None:
    async with db.stream() as session:
        parts = [p async for chunk in seller_orders.stream_seller_orders(session) for p in chunk]
    assert len(parts) > PLAN.orders  # most seeded orders have more than one seller
    sellers = set()
    for part in parts:
        expected = SellerOrderOut().dump(part)
        assert dump_seller_order(part) == expected
        async with db.read() as conn:
            view = await seller_orders.get_seller_order(conn, part.id)
        assert dump_seller_order(view) == SellerOrderOut().dump(view) == expected
        sellers.add(part.seller_id)
    async with db.read() as conn:
        for seller_id in sellers:
            balance = await seller_balance(conn, seller_id)
            assert dump_balance(balance) == BalanceOut().dump(balance)


async def test_users_and_pets(db: Database) -> None:
    async with db.load() as session:
        all_users = (await session.scalars(select(User).options(selectinload(User.pets)))).all()
        all_pets = (await session.scalars(select(Pet).options(joinedload(Pet.user)))).all()
    assert any(not u.pets for u in all_users)
    assert any(p.user is None for p in all_pets)
    for user in all_users:
        assert dump_user(user) == UserOut().dump(user)
    for pet in all_pets:
        assert dump_pet(pet) == PetOut().dump(pet)


def test_probes() -> None:
    for schema, probe in ((HealthOut, Probe("ok")), (ReadinessOut, Probe("ready", "0001"))):
        assert dumper(schema)(probe) == schema().dump(probe)
    assert dump_readiness(Probe("ready", "0001")) == {"status": "ready", "schema": "0001"}


class ItemOutPlus(ItemOut):
    in_stock = fields.Integer(attribute="stock", dump_only=True)


class ItemOutLess(ItemOut):
    class Meta:
        exclude = ("description",)


async def test_a_field_added_or_removed_in_a_schema_is_added_or_removed_in_the_dump(
    db: Database,
) -> None:
    async with db.load() as session:
        item = await session.get(Item, 1)
    assert dumper(ItemOutPlus)(item) == ItemOut().dump(item) | {"in_stock": item.stock}
    assert dumper(ItemOutLess)(item) == {
        k: v for k, v in dump_item(item).items() if k != "description"
    }


class AddressPlus(AddressSchema):
    address_id = Id(attribute="id")


class CustomerPlus(CustomerOut):
    address = fields.Nested(AddressPlus)


class CustomerLess(CustomerOut):
    class Meta:
        exclude = ("email",)


@pytest.mark.parametrize("schema", [CustomerPlus, CustomerLess])
async def test_a_flat_row_follows_its_schema(db: Database, schema: type[Schema]) -> None:
    """The query's columns come from the schema too: the new field is selected and dumped."""
    stmt = select(*row_columns(schema, Customer, address=Address)).join(Customer.address)
    async with db.load() as session:
        entity = await session.get(Customer, 3, options=[joinedload(Customer.address)])
        row = (await session.execute(stmt.where(Customer.id == 3))).one()
    assert row_dumper(schema)(row) == schema().dump(entity)
    dumped: dict[str, Any] = row_dumper(schema)(row)
    assert ("address_id" in dumped["address"]) is (schema is CustomerPlus)
    assert ("email" in dumped) is (schema is not CustomerLess)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC), "2026-03-01T12:30:05Z"),
        (datetime(2026, 3, 1, 12, 30, 5, 120, tzinfo=UTC), "2026-03-01T12:30:05.000120Z"),
        (datetime(2026, 3, 1, 12, 30, 5, 5), "2026-03-01T12:30:05.000005Z"),  # naive is UTC
        (datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), "2026-02-28T22:30:00Z"),
    ],
)
def test_timestamps_are_rfc3339_utc_with_z(value: datetime, wire: str) -> None:
    assert format_timestamp(value) == wire


class Leaf(Schema):
    n = fields.Integer()
    price = Money(allow_none=True)


class Branch(Schema):
    leaves = fields.List(fields.Nested(Leaf))  # a list first: its object is bound elsewhere
    prices = fields.List(Money())
    first = fields.Pluck(Leaf, "n", attribute="leaves", many=True, dump_only=True)  # not an object
    when = UtcDateTime(allow_none=True)


class Hooked(Schema):
    n = fields.Integer()

    @post_dump
    def tag(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return data | {"hooked": True}


class Tree(Schema):
    branch = fields.Nested(Branch)
    maybe = fields.Nested(Branch, allow_none=True)
    hooked = fields.Nested(Hooked)
    hooked_many = fields.List(fields.Nested(Hooked), attribute="hooks")
    shout = fields.Function(lambda tree: tree.name.upper())
    deep = fields.Integer(attribute="branch.leaves.0.n")  # a dotted path that finds nothing
    deep_when = UtcDateTime(attribute="branch.when", dump_only=True)  # one that does
    as_text = fields.Integer(as_string=True, attribute="count", dump_only=True)
    ratio = fields.Float(attribute="count", dump_only=True)
    kind = fields.Constant("tree")
    seen = fields.Boolean()
    tags = fields.List(fields.String())
    extra = fields.Dict()


def tree(n: int) -> SimpleNamespace:
    leaves = [SimpleNamespace(n=i, price=None if i % 2 else i * 101) for i in range(n)]
    when = datetime(2026, 1, 2, 3, 4, 5, n, tzinfo=UTC) if n else None
    branch = SimpleNamespace(leaves=leaves, prices=[1, 250, n], when=when)
    return SimpleNamespace(
        branch=branch,
        maybe=branch if n % 2 else None,
        hooked=SimpleNamespace(n=n),
        hooks=[SimpleNamespace(n=i) for i in range(n)],
        name=f"oak {n}",
        count=n,
        seen=bool(n % 3),
        tags=["a", str(n)],
        extra={"k": n},
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_the_compiler_matches_marshmallow_on_every_kind_of_field(n: int) -> None:
    """Nested, lists, Pluck, hooks, functions, dotted paths, nulls: fast or not, always equal."""
    assert dumper(Tree)(tree(n)) == Tree().dump(tree(n))
    assert dumper(Hooked)(SimpleNamespace(n=n)) == {"n": n, "hooked": True}


def test_payment_events() -> None:
    received = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    for entry in (
        InboxEntry("msg_1", "payment.succeeded", 7, "pay_1", received, "applied"),
        InboxEntry(
            "msg_2",
            "payment.failed",
            8,
            "pay_2",
            received.replace(microsecond=0),
            "unknown_order",
            duplicate=True,
        ),
    ):
        assert dump_payment_event(entry) == PaymentEventOut().dump(entry)


def test_format_cents_is_the_exact_decimal_with_two_places() -> None:
    """``format_cents`` looks the cents up in ``_CENTS``: every one of them, signs, and amounts
    past any float's precision, against ``Decimal``."""
    from decimal import Decimal

    from marketsvc.schemas.common import _CENTS, format_cents

    assert len(_CENTS) == 100
    amounts = [*range(-250, 250), 104374, -104374, 10**22 + 7, -(10**22) - 70]
    for cents in amounts:
        assert format_cents(cents) == f"{Decimal(cents).scaleb(-2):.2f}", cents
