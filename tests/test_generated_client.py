"""A client generated from the served OpenAPI document by a tool nobody here wrote
(openapi-python-client, pinned in requirements-dev.txt) drives a whole scenario, errors included.

The document is the contract: if a generated client cannot express a call, parse an answer or
type an error as a problem, the document is wrong, whatever the handlers do.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.web.openapi import build_document

PACKAGE = "marketsvc_client"


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The client package, generated once per run from the document the app serves."""
    where = tmp_path_factory.mktemp("generated-client")
    app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db", jwt_secret="x" * 40))
    document = where / "openapi.json"
    document.write_bytes(orjson.dumps(build_document(app)))
    bin_dir = str(Path(sys.executable).parent)  # the generator formats its output with ruff
    result = subprocess.run(
        [f"{bin_dir}/openapi-python-client", "generate", "--path", str(document), "--meta",
         "none", "--output-path", str(where / PACKAGE)],
        capture_output=True, text=True, timeout=120,
        env=os.environ | {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


def next_cursor(link: str) -> str:
    """The cursor of a ``Link: <...>; rel="next"`` header."""
    target = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert target is not None, link
    return parse_qs(urlsplit(target[1]).query)["cursor"][0]


def _mod(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_drives_the_service(generated, client, tokens) -> None:
    base = str(client.make_url("")).rstrip("/")
    models, types = _mod("models"), _mod("types")
    api = {
        name: _mod(f"api.{name}")
        for name in ("items.create_item", "items.list_items", "customers.create_customer",
                     "orders.place_order", "orders.get_order", "orders.get_order_total",
                     "orders.order_totals", "orders.change_order_status",
                     "orders.list_customer_orders", "users.create_user", "users.list_user_pets")
    }  # fmt: skip
    admin = generated.AuthenticatedClient(base_url=base, token=tokens.issue("admin", "admin"))
    public = generated.Client(base_url=base)

    async with admin as admin, public as public:
        item = await api["items.create_item"].asyncio(
            client=admin,
            body=models.ItemCreate(name="Teapot", price="12.50", stock=10, description="Blue"),
        )
        assert isinstance(item, models.ItemOut), item
        listed = await api["items.list_items"].asyncio(client=public, after_id=item.id - 1)
        assert [i.id for i in listed] == [item.id]

        address = models.Address(
            street="1 High St", city="Leeds", post_code="LS1 4AP", country=models.AddressCountry.GB
        )
        customer = await api["customers.create_customer"].asyncio(
            client=admin,
            body=models.CustomerCreate(name="Ada", email="ada@example.com", address=address),
        )
        assert isinstance(customer, models.CustomerOut), customer
        as_customer = generated.AuthenticatedClient(
            base_url=base, token=tokens.issue(str(customer.id), "customer")
        )

        async with as_customer as shopper:
            body = models.OrderCreate(
                customer_id=customer.id, lines=[models.OrderLineIn(item_id=item.id, quantity=2)]
            )
            key = uuid.uuid4().hex
            first = await api["orders.place_order"].asyncio_detailed(
                client=shopper, body=body, idempotency_key=key
            )
            assert first.status_code == 201, first.content
            replay = await api["orders.place_order"].asyncio_detailed(
                client=shopper, body=body, idempotency_key=key
            )
            assert replay.status_code == 201
            assert replay.headers["Idempotent-Replayed"] == "true"
            assert replay.content == first.content
            order = first.parsed
            assert isinstance(order, models.OrderOut)
            assert order.total == "25.00"

            total = await api["orders.get_order_total"].asyncio(client=shopper, id=order.id)
            assert (total.order_id, total.total) == (order.id, "25.00")
            totals = await api["orders.order_totals"].asyncio(
                client=shopper, body=models.TotalsRequest(order_ids=[order.id, 999_999])
            )
            assert [(t.order_id, t.total) for t in totals.totals] == [(order.id, "25.00")]
            assert totals.missing == [999_999]

            second = await api["orders.place_order"].asyncio(client=shopper, body=body)
            page = await api["orders.list_customer_orders"].asyncio_detailed(
                client=shopper, id=customer.id, limit=1
            )
            assert [o.id for o in page.parsed] == [order.id]
            cursor = next_cursor(page.headers["Link"])
            rest = await api["orders.list_customer_orders"].asyncio_detailed(
                client=shopper, id=customer.id, limit=1, cursor=cursor
            )
            assert [o.id for o in rest.parsed] == [second.id]
            assert "Link" not in rest.headers  # the last page

            cancelled = await api["orders.change_order_status"].asyncio(
                client=shopper,
                id=order.id,
                body=models.OrderStatusPatch(status=models.OrderStatusPatchStatus.CANCELLED),
            )
            assert cancelled.status == models.OrderOutStatus.CANCELLED

            # errors arrive typed as problems
            missing = await api["orders.get_order"].asyncio(client=shopper, id=999_999)
            assert isinstance(missing, models.Problem)
            assert missing.status == 404
            invalid = await api["orders.place_order"].asyncio(
                client=shopper,
                body=models.OrderCreate(
                    customer_id=customer.id,
                    lines=[models.OrderLineIn(item_id=item.id, quantity=10_001)],
                ),
            )
            assert isinstance(invalid, models.Problem)
            assert invalid.status == 422
            assert invalid.errors is not types.UNSET
            short = await api["orders.place_order"].asyncio(
                client=shopper,
                body=models.OrderCreate(
                    customer_id=customer.id,
                    lines=[models.OrderLineIn(item_id=item.id, quantity=100)],
                ),
            )
            assert isinstance(short, models.Problem)
            assert short.status == 409
            forbidden = await api["users.create_user"].asyncio(
                client=shopper, body=models.UserCreate(name="Uma")
            )
            assert isinstance(forbidden, models.Problem)
            assert forbidden.status == 403

        user = await api["users.create_user"].asyncio(
            client=admin,
            body=models.UserCreate(name="Uma", pets=[models.NameBody(name="Rex")]),
        )
        assert isinstance(user, models.UserOut), user
        pets = await api["users.list_user_pets"].asyncio(client=admin, id=user.id)
        assert [p.name for p in pets] == ["Rex"]
