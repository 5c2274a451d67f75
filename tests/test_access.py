"""Every route x every caller: the status each one gets. A new /api/v1 route needs a row here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from marketsvc.app import create_app
from tests.conftest import TEST_SECRET

CALLERS = (
    *("none", "bad_signature", "expired", "admin", "owner", "other"),
    *("seller_owner", "seller_other"),  # the seller of {item}, and another seller
)


@dataclass(frozen=True)
class Rule:
    method: str
    path: str  # {customer} {item} {order} {user} {pet} {seller}: from the world below
    statuses: tuple[int, int, int, int, int, int, int, int]  # in the order of CALLERS
    body: dict[str, Any] | Callable[[dict[str, int]], dict[str, Any]] | None = None


PUBLIC_READ = (200, 200, 200, 200, 200, 200, 200, 200)
ADMIN_ONLY = (401, 401, 401, 200, 403, 403, 403, 403)
ADMIN_CREATES = (401, 401, 401, 201, 403, 403, 403, 403)
OWNER_OR_ADMIN = (401, 401, 401, 200, 200, 404, 403, 403)
ADMIN_DELETES = (401, 401, 401, 204, 403, 403, 403, 403)
ANY_CUSTOMER = (401, 401, 401, 200, 200, 200, 403, 403)  # each sees only its own: see below
ANY_SELLER_CREATES = (401, 401, 401, 201, 403, 403, 201, 201)  # each into its own catalogue
SELLER_OR_ADMIN = (401, 401, 401, 200, 403, 403, 200, 404)

ADMIN_ACCEPTS = (401, 401, 401, 202, 403, 403, 403, 403)

RULES = [
    Rule("GET", "/api/v1/items", PUBLIC_READ),
    Rule("GET", "/api/v1/items/{item}", PUBLIC_READ),
    Rule(
        "POST", "/api/v1/items", ANY_SELLER_CREATES, {"name": "Lamp", "price": "5.00", "stock": 1}
    ),
    Rule("PATCH", "/api/v1/items/{item}", SELLER_OR_ADMIN, {"stock": 7}),
    Rule("GET", "/api/v1/customers", ADMIN_ONLY),
    Rule(
        "POST",
        "/api/v1/customers",
        ADMIN_CREATES,
        {
            "name": "New",
            "email": "new@example.com",
            "address": {"street": "s", "city": "c", "post_code": "p", "country": "GB"},
        },
    ),
    Rule("GET", "/api/v1/customers/{customer}", OWNER_OR_ADMIN),
    Rule("PATCH", "/api/v1/customers/{customer}", OWNER_OR_ADMIN, {"name": "Renamed"}),
    Rule("GET", "/api/v1/orders", ANY_CUSTOMER),
    Rule(
        "POST",
        "/api/v1/orders",
        (401, 401, 401, 201, 201, 403, 403, 403),
        lambda w: {"customer_id": w["customer"], "lines": [{"item_id": w["item"], "quantity": 1}]},
    ),
    Rule("POST", "/api/v1/orders/totals", ANY_CUSTOMER, lambda w: {"order_ids": [w["order"]]}),
    Rule("GET", "/api/v1/orders/{order}", OWNER_OR_ADMIN),
    Rule("GET", "/api/v1/orders/{order}/total", OWNER_OR_ADMIN),
    Rule("PATCH", "/api/v1/orders/{order}", OWNER_OR_ADMIN, {"status": "cancelled"}),
    Rule(
        "PATCH",
        "/api/v1/orders/{order}",
        (401, 401, 401, 200, 403, 404, 403, 403),
        {"status": "paid"},
    ),
    Rule("GET", "/api/v1/customers/{customer}/orders", OWNER_OR_ADMIN),
    Rule("GET", "/api/v1/events", ANY_CUSTOMER),
    Rule("GET", "/api/v1/users", ADMIN_ONLY),
    Rule("POST", "/api/v1/users", ADMIN_CREATES, {"name": "Uma"}),
    Rule("GET", "/api/v1/users/{user}", ADMIN_ONLY),
    Rule("PATCH", "/api/v1/users/{user}", ADMIN_ONLY, {"name": "Ulla"}),
    Rule("DELETE", "/api/v1/users/{user}", ADMIN_DELETES),
    Rule("GET", "/api/v1/users/{user}/pets", ADMIN_ONLY),
    Rule("POST", "/api/v1/users/{user}/pets", ADMIN_CREATES, {"name": "Rex"}),
    Rule("GET", "/api/v1/pets", ADMIN_ONLY),
    Rule("POST", "/api/v1/pets", ADMIN_CREATES, {"name": "Tom", "user_id": None}),
    Rule("GET", "/api/v1/pets/{pet}", ADMIN_ONLY),
    Rule("PATCH", "/api/v1/pets/{pet}", ADMIN_ONLY, {"user_id": None}),
    Rule("DELETE", "/api/v1/pets/{pet}", ADMIN_DELETES),
    Rule("POST", "/api/v1/webhooks/subscriptions", ADMIN_CREATES, {"url": "https://1.1.1.1/a"}),
    Rule("GET", "/api/v1/webhooks/subscriptions", ADMIN_ONLY),
    Rule("GET", "/api/v1/webhooks/subscriptions/{subscription}", ADMIN_ONLY),
    Rule(
        "PATCH", "/api/v1/webhooks/subscriptions/{subscription}", ADMIN_ONLY, {"description": "d"}
    ),
    Rule("DELETE", "/api/v1/webhooks/subscriptions/{subscription}", ADMIN_DELETES),
    Rule("POST", "/api/v1/webhooks/subscriptions/{subscription}/rotate", ADMIN_ONLY),
    Rule("GET", "/api/v1/webhooks/subscriptions/{subscription}/deliveries", ADMIN_ONLY),
    Rule(
        "POST",
        "/api/v1/webhooks/subscriptions/{subscription}/replay",
        ADMIN_ACCEPTS,
        {"since": "2000-01-01T00:00:00Z"},
    ),
    Rule("POST", "/api/v1/webhooks/subscriptions/{subscription}/ping", ADMIN_ACCEPTS),
    Rule("POST", "/api/v1/webhooks/deliveries/{delivery}/redeliver", ADMIN_ACCEPTS),
    # no bearer token needed: a Standard Webhooks signature (tests/test_payments.py); unset here
    Rule("POST", "/api/v1/payments/events", (503,) * 8, {"type": "payment.failed", "data": {}}),
    Rule("GET", "/api/v1/sellers", ADMIN_ONLY),
    Rule("POST", "/api/v1/sellers", ADMIN_CREATES, {"name": "Shop", "commission_bps": 1000}),
    Rule("GET", "/api/v1/sellers/{seller}", SELLER_OR_ADMIN),
    Rule("PATCH", "/api/v1/sellers/{seller}", ADMIN_ONLY, {"commission_bps": 900}),
    Rule("GET", "/api/v1/seller-orders", (401, 401, 401, 200, 403, 403, 200, 200)),
    Rule("GET", "/api/v1/seller-orders/{part}", SELLER_OR_ADMIN),
    # the world's order is not paid: nothing to accept yet (409), once past the access check
    Rule(
        "PATCH",
        "/api/v1/seller-orders/{part}",
        (401, 401, 401, 409, 403, 403, 409, 404),
        {"status": "accepted"},
    ),
    Rule("GET", "/api/v1/sellers/{seller}/balance", SELLER_OR_ADMIN),
]


def token_for(caller: str, world: dict[str, int]) -> str | None:
    now = int(time.time())
    claims = {
        "admin": {"sub": "admin", "role": "admin"},
        "owner": {"sub": str(world["customer"]), "role": "customer"},
        "other": {"sub": str(world["other_customer"]), "role": "customer"},
        "seller_owner": {"sub": str(world["seller"]), "role": "seller"},
        "seller_other": {"sub": str(world["other_seller"]), "role": "seller"},
        "bad_signature": {"sub": "admin", "role": "admin"},
        "expired": {"sub": "admin", "role": "admin", "exp": now - 3600},
    }.get(caller)
    if claims is None:
        return None
    key = "a-different-secret-of-sufficient-length!" if caller == "bad_signature" else TEST_SECRET
    return jwt.encode({"exp": now + 600} | claims, key, algorithm="HS256")


async def build_world(client, admin) -> dict[str, int]:
    async def post(path: str, body: dict[str, Any]) -> int:
        resp = await client.post(path, json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]

    address = {"street": "1 High St", "city": "Leeds", "post_code": "LS1", "country": "GB"}
    world = {
        "customer": await post(
            "/api/v1/customers", {"name": "A", "email": "a@example.com", "address": address}
        ),
        "other_customer": await post(
            "/api/v1/customers", {"name": "B", "email": "b@example.com", "address": address}
        ),
        "seller": await post("/api/v1/sellers", {"name": "S", "commission_bps": 1000}),
        "other_seller": await post("/api/v1/sellers", {"name": "T", "commission_bps": 500}),
    }
    item = {"name": "Kettle", "price": "10.00", "stock": 100, "seller_id": world["seller"]}
    world["item"] = await post("/api/v1/items", item)
    world["order"] = await post(
        "/api/v1/orders",
        {"customer_id": world["customer"], "lines": [{"item_id": world["item"], "quantity": 2}]},
    )
    world["part"] = (await (await client.get(f"/api/v1/orders/{world['order']}", headers=admin))
                     .json())["seller_orders"][0]["id"]  # fmt: skip
    world["user"] = await post("/api/v1/users", {"name": "Uri"})
    world["pet"] = await post(f"/api/v1/users/{world['user']}/pets", {"name": "Pip"})
    # paused: its deliveries wait, so the test sends nothing over the network
    world["subscription"] = await post(
        "/api/v1/webhooks/subscriptions", {"url": "https://1.1.1.1/"}
    )
    hooks = f"/api/v1/webhooks/subscriptions/{world['subscription']}"
    await client.patch(hooks, json={"status": "paused"}, headers=admin)
    world["delivery"] = (await (await client.post(f"{hooks}/ping", headers=admin)).json())["id"]
    return world


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.method} {r.path}")
async def test_access(client, admin, rule: Rule, caller: str) -> None:
    world = await build_world(client, admin)
    token = token_for(caller, world)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = rule.body(world) if callable(rule.body) else rule.body
    resp = await client.request(rule.method, rule.path.format(**world), json=body, headers=headers)
    expected = rule.statuses[CALLERS.index(caller)]
    assert resp.status == expected, await resp.text()
    if expected == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_customers_stream_only_their_own_orders(client, admin, as_customer) -> None:
    world = await build_world(client, admin)
    mine = await (await client.get("/api/v1/orders", headers=as_customer(world["customer"]))).json()
    theirs = await (
        await client.get("/api/v1/orders", headers=as_customer(world["other_customer"]))
    ).json()
    snooping = await client.get(
        f"/api/v1/orders?customer_id={world['customer']}",
        headers=as_customer(world["other_customer"]),
    )
    assert [o["id"] for o in mine] == [world["order"]]
    assert theirs == []
    assert await snooping.json() == []
    totals = await client.post(
        "/api/v1/orders/totals",
        json={"order_ids": [world["order"]]},
        headers=as_customer(world["other_customer"]),
    )
    assert await totals.json() == {"totals": [], "missing": [world["order"]]}


def test_every_api_route_has_an_access_rule(settings) -> None:
    routes = {
        (r.method, r.resource.canonical)
        for r in create_app(settings).router.routes()
        if r.method != "HEAD"
        and r.resource is not None
        and r.resource.canonical.startswith("/api/v1/")
        and r.resource.canonical != "/api/v1/openapi.json"
    }
    placeholders = {
        "{item}": "{id}",
        "{customer}": "{id}",
        "{order}": "{id}",
        "{user}": "{id}",
        "{pet}": "{id}",
        "{subscription}": "{id}",
        "{delivery}": "{id}",
        "{seller}": "{id}",
        "{part}": "{id}",
    }
    covered = set()
    for rule in RULES:
        path = rule.path
        for placeholder, name in placeholders.items():
            path = path.replace(placeholder, name)
        covered.add((rule.method, path))
    assert routes - covered == set(), "routes without an access rule in RULES"
    assert covered - routes == set(), "rules for routes that do not exist"
