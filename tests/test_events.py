"""Every listed change records its event in its own transaction; the feed shows them in order,
as CloudEvents whose ``data`` matches the document (the contract check validates each page)."""

from __future__ import annotations

import logging

import pytest

from tests.events_feed import feed, parsed_by_the_sdk, short_types
from tests.ordering import order_body


async def test_every_change_records_one_event(client, admin, as_customer, new_customer, new_item):
    customer, item, spare = await new_customer(), await new_item(stock=2), await new_item(stock=9)
    body = order_body(customer["id"], (item["id"], 2), (spare["id"], 1))
    first = await (await client.post("/api/v1/orders", json=body, headers=admin)).json()
    resp = await client.patch(
        f"/api/v1/orders/{first['id']}", json={"status": "paid"}, headers=admin
    )
    assert resp.status == 200
    [part] = first["seller_orders"]
    for move in ({"status": "accepted"}, {"status": "shipped", "carrier": "DHL",
                 "tracking_number": "T1"}, {"status": "delivered"}):  # fmt: skip
        resp = await client.patch(f"/api/v1/seller-orders/{part['id']}", json=move, headers=admin)
        assert resp.status == 200
    await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 1}, headers=admin)
    body = order_body(customer["id"], (item["id"], 1))
    second = await (await client.post("/api/v1/orders", json=body, headers=admin)).json()
    cancel = await client.patch(
        f"/api/v1/orders/{second['id']}",
        json={"status": "cancelled"},
        headers=as_customer(customer["id"]),
    )
    assert cancel.status == 200
    patch = {"price": "12.50", "description": "new"}
    await client.patch(f"/api/v1/items/{spare['id']}", json=patch, headers=admin)
    patch = {"address": {"city": "York"}}
    await client.patch(f"/api/v1/customers/{customer['id']}", json=patch, headers=admin)

    events = await feed(client, admin)

    assert short_types(events) == [
        "customer.created",
        "item.created",
        "item.created",
        "order.placed",
        "item.out_of_stock",
        "order.paid",
        "seller_order.awaiting_acceptance",
        "seller_order.accepted",
        "seller_order.shipped",
        "order.shipped",
        "seller_order.delivered",
        "order.delivered",
        "item.updated",
        "item.back_in_stock",
        "order.placed",
        "item.out_of_stock",
        "order.cancelled",
        "item.back_in_stock",
        "item.updated",
        "customer.updated",
    ]
    by_subject: dict[str, list[int]] = {}
    for event in events:
        by_subject.setdefault(event["subject"], []).append(event["resourceversion"])
        assert parsed_by_the_sdk(event).get_id() == event["id"]
        assert event["source"] == "/marketsvc"
        assert event["specversion"] == "1.0"
    assert all(seq == list(range(1, len(seq) + 1)) for seq in by_subject.values()), by_subject
    assert len({e["id"] for e in events}) == len(events)
    placed, paid, cancelled = events[3], events[5], events[16]
    assert placed["data"] == first | {"status": "pending"}
    assert placed["subject"] == f"orders/{first['id']}"
    assert paid["data"]["status"] == "paid"
    assert cancelled["data"]["cancelled_by"] == {"role": "customer", "subject": str(customer["id"])}
    assert cancelled["data"]["stock_restored"] is True
    assert events[18]["data"]["previous"] == {"price": "10.00", "description": ""}
    assert events[18]["data"]["price"] == "12.50"
    assert events[12]["data"]["previous"] == {"stock": 0}
    assert events[12]["data"]["stock"] == 1
    assert events[19]["data"]["address"]["city"] == "York"
    shipped = events[8]
    assert shipped["subject"] == f"seller-orders/{part['id']}"
    assert shipped["data"]["tracking_number"] == "T1"


async def test_refusals_record_nothing(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=1)
    before = await feed(client, admin)
    short = await client.post(
        "/api/v1/orders", json=order_body(customer["id"], (item["id"], 5)), headers=admin
    )
    keyed = await client.post(
        "/api/v1/orders",
        json=order_body(customer["id"], (item["id"], 5)),
        headers=admin | {"Idempotency-Key": "short-1"},
    )
    taken = await client.post(
        "/api/v1/customers",
        json={"name": "X", "email": customer["email"], "address": customer["address"]},
        headers=admin,
    )
    unchanged = await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 1}, headers=admin)
    assert (short.status, keyed.status, taken.status, unchanged.status) == (409, 409, 409, 200)
    assert await feed(client, admin) == before


async def test_a_keyed_placement_records_its_event_once(client, admin, new_customer, new_item):
    customer, item = await new_customer(), await new_item(stock=5)
    body = order_body(customer["id"], (item["id"], 1))
    for _ in range(3):
        resp = await client.post(
            "/api/v1/orders", json=body, headers=admin | {"Idempotency-Key": "k-1"}
        )
        assert resp.status == 201
    placed = await feed(client, admin, type="com.marketsvc.order.placed.v1")
    assert len(placed) == 1
    assert placed[0]["data"]["id"] == (await resp.json())["id"]


async def test_a_customer_reads_only_events_about_itself_and_its_orders(
    client, admin, as_customer, new_customer, new_item
) -> None:
    me, other, item = await new_customer(), await new_customer(), await new_item()
    orders = []
    for who in (me, other):
        body = order_body(who["id"], (item["id"], 1))
        orders.append(await (await client.post("/api/v1/orders", json=body, headers=admin)).json())
    mine = await feed(client, as_customer(me["id"]))
    assert short_types(mine) == ["customer.created", "order.placed"]
    assert [e["subject"] for e in mine] == [f"customers/{me['id']}", f"orders/{orders[0]['id']}"]
    assert await feed(client, as_customer(me["id"]), subject=f"customers/{other['id']}") == []
    theirs = await feed(client, as_customer(other["id"]))
    assert {e["id"] for e in theirs}.isdisjoint(e["id"] for e in mine)


async def test_pages_continue_from_the_cursor(client, admin, new_item) -> None:
    for n in range(5):
        await new_item(name=f"Item {n}")
    everything = await feed(client, admin)
    first = await feed(client, admin, limit=2)
    rest = await feed(client, admin, after=first[-1]["cursor"])
    assert first + rest == everything
    assert len(everything) == 5
    assert await feed(client, admin, after=everything[-1]["cursor"]) == []
    resp = await client.get("/api/v1/events", headers=admin | {"Accept": "application/x-ndjson"})
    lines = (await resp.read()).decode().splitlines()
    assert resp.content_type == "application/x-ndjson"
    assert len(lines) == 5


@pytest.mark.parametrize(
    "query",
    [
        "after=12",
        "after=-1-2",
        "after=9999999999999999999-1",
        "type=order.placed",
        "limit=0",
        "limit=1001",
        "wait=31",
        "subject=orders%2F1%00",
    ],
)
async def test_bad_feed_queries_are_422(client, admin, query: str) -> None:
    resp = await client.get(f"/api/v1/events?{query}", headers=admin)
    assert resp.status == 422
    assert f"query.{query.split('=')[0]}" in (await resp.json())["errors"]


async def test_the_request_log_names_the_events_it_committed(
    client, admin, new_customer, new_item, caplog
) -> None:
    customer, item = await new_customer(), await new_item(stock=1)
    with caplog.at_level(logging.INFO, logger="marketsvc.request"):
        caplog.clear()
        body = order_body(customer["id"], (item["id"], 1))
        await client.post("/api/v1/orders", json=body, headers=admin)
        refused = await client.post("/api/v1/orders", json=body, headers=admin)
    assert refused.status == 409
    placed, short = [r for r in caplog.records if r.name == "marketsvc.request"]
    events = await feed(client, admin, after=(await feed(client, admin, limit=2))[-1]["cursor"])
    assert placed.event_ids == [e["id"] for e in events]
    assert short_types(events) == ["order.placed", "item.out_of_stock"]
    assert not hasattr(short, "event_ids")


async def test_a_bad_last_event_id_is_422_naming_the_header(client, admin) -> None:
    for bad in ("x", "1-9223372036854775808"):
        resp = await client.get("/api/v1/events", headers=admin | {"Last-Event-ID": bad})
        assert resp.status == 422
        assert "header.Last-Event-ID" in (await resp.json())["errors"]
