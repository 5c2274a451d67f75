"""A seller's balance against a table computed by hand: commission is rounded half-even per line
(price x quantity x bps / 10000, to the cent), then summed; only delivered parts count."""

from __future__ import annotations

from tests.ordering import place
from tests.sellers_kit import (
    moved,
    new_seller,
    pay,
    seller_item,
)

# (price, quantity, commission in cents at 12.5 %: exact value -> half-even)
TABLE = [
    ("1.00", 1, 12),  # 12.5 -> 12 (even)
    ("1.08", 1, 14),  # 13.5 -> 14 (even)
    ("2.50", 3, 94),  # 93.75 -> 94
    ("0.04", 1, 0),  # 0.5 -> 0 (even)
    ("0.12", 1, 2),  # 1.5 -> 2 (even)
    ("33.33", 7, 2916),  # 2916.375 -> 2916
]
GROSS = 100 + 108 + 750 + 4 + 12 + 23331  # 243.05
COMMISSION = 12 + 14 + 94 + 0 + 2 + 2916  # 30.38 (rounding the total instead: 30.38125 -> 30.38,
# but rounding each line half-up would give 12.5->13, 0.5->1: 30.40)


async def _deliver(client, headers, part_id: int) -> None:
    for status in ("accepted", "shipped", "delivered"):
        await moved(client, headers, part_id, status)


async def test_the_balance_matches_the_hand_computed_table(
    client, admin, new_customer, as_seller
) -> None:
    seller, other = await new_seller(client, 1250, "Twelve and a half"), await new_seller(client, 0)
    mine = as_seller(seller)
    customer = (await new_customer())["id"]
    items = [await seller_item(client, admin, seller, price, 100, f"Item {price}")
             for price, _, _ in TABLE]  # fmt: skip
    theirs = await seller_item(client, admin, other, "99.99", 100, "Not mine")
    order = await place(client, admin, customer,
                        *[(i, q) for i, (_, q, _) in zip(items, TABLE, strict=True)],
                        (theirs, 1))  # fmt: skip
    await pay(client, admin, order["id"])
    [part, their_part] = order["seller_orders"]
    await _deliver(client, mine, part["id"])
    await _deliver(client, as_seller(other), their_part["id"])
    lines = (await (await client.get(f"/api/v1/seller-orders/{part['id']}", headers=mine)).json())[
        "lines"
    ]
    assert [line["commission"] for line in lines] == [
        f"{c // 100}.{c % 100:02d}" for c in sorted_by_item(items, TABLE)
    ]
    # a refused part: owed back, not earned; a shipped one: not earned yet
    refused = await place(client, admin, customer, (items[0], 2))
    shipped = await place(client, admin, customer, (items[1], 1))
    for placed in (refused, shipped):
        await pay(client, admin, placed["id"])
    await moved(client, mine, refused["seller_orders"][0]["id"], "refused")
    await moved(client, mine, shipped["seller_orders"][0]["id"], "accepted")
    await moved(client, mine, shipped["seller_orders"][0]["id"], "shipped")

    resp = await client.get(f"/api/v1/sellers/{seller}/balance", headers=mine)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "seller_id": seller,
        "delivered_parts": 1,
        "gross": "243.05",
        "commission": "30.38",
        "net_owed": "212.67",
        "refunds_owed": [{"order_id": refused["id"], "amount": "2.00"}],
    }
    assert (GROSS, COMMISSION) == (24305, 3038)
    as_admin = await client.get(f"/api/v1/sellers/{seller}/balance", headers=admin)
    assert await as_admin.json() == await resp.json()
    snooping = await client.get(f"/api/v1/sellers/{seller}/balance", headers=as_seller(other))
    assert snooping.status == 404
    assert (await client.get("/api/v1/sellers/98765/balance", headers=admin)).status == 404
    theirs_balance = await (
        await client.get(f"/api/v1/sellers/{other}/balance", headers=admin)
    ).json()
    assert (theirs_balance["gross"], theirs_balance["commission"]) == ("99.99", "0.00")


def sorted_by_item(items: list[int], table: list[tuple[str, int, int]]) -> list[int]:
    return [c for _, (_, _, c) in sorted(zip(items, table, strict=True))]
