"""An order splits into one seller order per seller; each seller moves only its own part, and
the order's status follows its parts (refusals give their stock back once)."""

from __future__ import annotations

from typing import Any

from tests.events_feed import feed, short_types
from tests.ordering import place, stock_of
from tests.sellers_kit import (
    get_order,
    move_part,
    moved,
    new_seller,
    part_of,
    pay,
    seller_item,
)


async def two_seller_order(client, admin, new_customer) -> dict[str, Any]:
    """Seller a (10 %) sells a kettle and a mug, seller b (12.5 %) a lamp; one order of all."""
    a, b = await new_seller(client, 1000, "A"), await new_seller(client, 1250, "B")
    kettle = await seller_item(client, admin, a, "10.00", 10, "Kettle")
    mug = await seller_item(client, admin, a, "3.33", 10, "Mug")
    lamp = await seller_item(client, admin, b, "4.99", 5, "Lamp")
    customer = await new_customer()
    order = await place(client, admin, customer["id"], (lamp, 3), (kettle, 2), (mug, 1))
    return {"a": a, "b": b, "kettle": kettle, "mug": mug, "lamp": lamp, "order": order,
            "customer": customer["id"]}  # fmt: skip


async def test_placement_splits_the_order_by_seller(
    client, admin, new_customer, as_seller, as_customer
) -> None:
    w = await two_seller_order(client, admin, new_customer)
    order = w["order"]
    assert [(p["seller_id"], p["item_ids"], p["subtotal"], p["status"]) for p in
            order["seller_orders"]] == [
        (w["a"], sorted([w["kettle"], w["mug"]]), "23.33", "pending"),
        (w["b"], [w["lamp"]], "14.97", "pending"),
    ]  # fmt: skip
    assert order["total"] == "38.30"
    assert await get_order(client, admin, order["id"]) == order
    mine = await client.get(f"/api/v1/orders/{order['id']}", headers=as_customer(w["customer"]))
    assert await mine.json() == order
    part_a = part_of(order, w["a"])
    resp = await client.get(f"/api/v1/seller-orders/{part_a['id']}", headers=as_seller(w["a"]))
    assert resp.status == 200
    body = await resp.json()
    assert (body["order_id"], body["subtotal"]) == (order["id"], "23.33")
    # each line keeps its seller's rate; half-even per line: 20.00 x 10 % = 2.00, 3.33 -> 0.333
    assert [(line["commission_bps"], line["commission"]) for line in body["lines"]] == [
        (1000, "2.00"),
        (1000, "0.33"),
    ]
    assert body["commission"] == "2.33"
    theirs = await client.get(f"/api/v1/seller-orders/{part_a['id']}", headers=as_seller(w["b"]))
    assert theirs.status == 404
    customer = await client.get(
        f"/api/v1/seller-orders/{part_a['id']}", headers=as_customer(w["customer"])
    )
    assert customer.status == 403


async def test_a_two_seller_order_from_placement_to_delivery_with_one_part_refused(
    client, admin, new_customer, as_seller
) -> None:
    w = await two_seller_order(client, admin, new_customer)
    order_id = w["order"]["id"]
    part_a, part_b = part_of(w["order"], w["a"])["id"], part_of(w["order"], w["b"])["id"]
    seller_a, seller_b = as_seller(w["a"]), as_seller(w["b"])
    # not paid yet: nothing for a seller to accept
    assert (await move_part(client, seller_a, part_a, "accepted")).status == 409
    paid = await pay(client, admin, order_id)
    assert [p["status"] for p in paid["seller_orders"]] == ["awaiting_acceptance"] * 2
    # a seller moves only its own part
    assert (await move_part(client, seller_b, part_a, "accepted")).status == 404
    assert (await moved(client, seller_a, part_a, "accepted"))["status"] == "accepted"
    refused = await moved(client, seller_b, part_b, "refused")
    assert (refused["status"], refused["refund_owed"]) == ("refused", "14.97")
    assert await stock_of(client, w["lamp"]) == 5  # back, once
    assert (await move_part(client, seller_b, part_b, "refused")).status == 409
    assert await stock_of(client, w["lamp"]) == 5
    assert (await get_order(client, admin, order_id))["status"] == "paid"
    # shipping needs a carrier and a tracking number
    no_tracking = await client.patch(
        f"/api/v1/seller-orders/{part_a}", json={"status": "shipped", "carrier": "DHL"},
        headers=seller_a,
    )  # fmt: skip
    assert no_tracking.status == 422
    shipped = await moved(client, seller_a, part_a, "shipped", carrier="DHL",
                          tracking_number="JD0146")  # fmt: skip
    assert (shipped["carrier"], shipped["tracking_number"]) == ("DHL", "JD0146")
    order = await get_order(client, admin, order_id)
    assert order["status"] == "shipped"  # every part not refused has shipped
    assert part_of(order, w["a"])["tracking_number"] == "JD0146"
    await moved(client, admin, part_a, "delivered")  # an admin may move any part
    order = await get_order(client, admin, order_id)
    assert order["status"] == "delivered"
    assert [p["status"] for p in order["seller_orders"]] == ["delivered", "refused"]
    assert await stock_of(client, w["kettle"]) == 8
    events = await feed(client, admin)
    assert [t for t in short_types(events) if t.startswith(("order.", "seller_order."))] == [
        "order.placed",
        "order.paid",
        "seller_order.awaiting_acceptance",
        "seller_order.awaiting_acceptance",
        "seller_order.accepted",
        "seller_order.refused",
        "seller_order.shipped",
        "order.shipped",
        "seller_order.delivered",
        "order.delivered",
    ]
    assert "item.back_in_stock" not in short_types(events)  # the lamp never ran out


async def test_some_parts_shipped_is_partially_shipped_and_all_refused_is_refused(
    client, admin, new_customer, as_seller
) -> None:
    w = await two_seller_order(client, admin, new_customer)
    order_id = w["order"]["id"]
    part_a, part_b = part_of(w["order"], w["a"])["id"], part_of(w["order"], w["b"])["id"]
    await pay(client, admin, order_id)
    await moved(client, as_seller(w["a"]), part_a, "accepted")
    await moved(client, as_seller(w["a"]), part_a, "shipped")
    assert (await get_order(client, admin, order_id))["status"] == "partially_shipped"
    await moved(client, as_seller(w["b"]), part_b, "accepted")
    await moved(client, as_seller(w["b"]), part_b, "refused")
    assert (await get_order(client, admin, order_id))["status"] == "shipped"

    other = await two_seller_order_again(client, admin, w)
    await pay(client, admin, other["id"])
    for part in other["seller_orders"]:
        await moved(client, as_seller(part["seller_id"]), part["id"], "refused")
    refused = await get_order(client, admin, other["id"])
    assert refused["status"] == "refused"
    assert (await client.patch(f"/api/v1/orders/{other['id']}", json={"status": "cancelled"},
                               headers=admin)).status == 409  # fmt: skip


async def two_seller_order_again(client, admin, w: dict[str, Any]) -> dict[str, Any]:
    return await place(client, admin, w["customer"], (w["kettle"], 1), (w["lamp"], 1))


async def test_an_order_is_never_moved_past_paid_by_hand(client, admin, new_customer) -> None:
    w = await two_seller_order(client, admin, new_customer)
    order_id = w["order"]["id"]
    await pay(client, admin, order_id)
    for status in ("shipped", "delivered", "partially_shipped", "refused"):
        resp = await client.patch(f"/api/v1/orders/{order_id}", json={"status": status},
                                  headers=admin)  # fmt: skip
        assert resp.status == 409, await resp.text()
        assert "seller-orders" in (await resp.json())["detail"]
    assert (await get_order(client, admin, order_id))["status"] == "paid"


async def test_a_paid_order_is_cancelled_only_before_a_seller_accepts(
    client, admin, new_customer, as_seller
) -> None:
    w = await two_seller_order(client, admin, new_customer)
    order_id = w["order"]["id"]
    part_a, part_b = part_of(w["order"], w["a"])["id"], part_of(w["order"], w["b"])["id"]
    await pay(client, admin, order_id)
    await moved(client, as_seller(w["b"]), part_b, "refused")  # the lamps go back now
    await moved(client, as_seller(w["a"]), part_a, "accepted")
    resp = await client.patch(f"/api/v1/orders/{order_id}", json={"status": "cancelled"},
                              headers=admin)  # fmt: skip
    assert resp.status == 409
    assert f"{part_a} (accepted)" in (await resp.json())["detail"]

    again = await two_seller_order_again(client, admin, w)
    [kettle_part, lamp_part] = [p["id"] for p in again["seller_orders"]]
    await pay(client, admin, again["id"])
    await moved(client, as_seller(w["b"]), lamp_part, "refused")
    resp = await client.patch(f"/api/v1/orders/{again['id']}", json={"status": "cancelled"},
                              headers=admin)  # fmt: skip
    assert resp.status == 200, await resp.text()
    cancelled = await resp.json()
    assert [p["status"] for p in cancelled["seller_orders"]] == ["cancelled", "refused"]
    refunds = [
        (await (await client.get(f"/api/v1/seller-orders/{p}", headers=admin)).json())[
            "refund_owed"
        ]
        for p in (kettle_part, lamp_part)
    ]
    assert refunds == ["10.00", "4.99"]  # each paid part is owed back, once
    # the lamps came back once (the refusal), the kettle once (the cancel)
    assert await stock_of(client, w["lamp"]) == 5
    assert await stock_of(client, w["kettle"]) == 8


async def test_shipment_fields_only_when_shipping(client, admin, new_customer, as_seller) -> None:
    w = await two_seller_order(client, admin, new_customer)
    part_a = part_of(w["order"], w["a"])["id"]
    await pay(client, admin, w["order"]["id"])
    resp = await client.patch(
        f"/api/v1/seller-orders/{part_a}", json={"status": "accepted", "carrier": "DHL"},
        headers=as_seller(w["a"]),
    )  # fmt: skip
    assert resp.status == 422
    assert (await move_part(client, admin, 99999, "accepted")).status == 404
