"""Examples the OpenAPI document shows for the orders, users and pets routes (each checked
against its schema by tests/test_openapi.py)."""

from __future__ import annotations

from typing import Any

LINE = {"item_id": 7, "name": "Kettle", "unit_price": "24.99", "quantity": 2, "line_total": "49.98"}
ORDER: dict[str, Any] = {
    "id": 501,
    "customer_id": 42,
    "status": "pending",
    "placed_at": "2026-11-24T09:14:49.628Z",
    "lines": [LINE],
    "total": "49.98",
    "seller_orders": [
        {
            "id": 610,
            "seller_id": 3,
            "status": "pending",
            "item_ids": [7],
            "subtotal": "49.98",
            "carrier": None,
            "tracking_number": None,
        }
    ],
}
NEW_ORDER = {"customer_id": 42, "lines": [{"item_id": 7, "quantity": 2}]}
TOTALS_REQUEST = {"order_ids": [501, 999]}
TOTALS = {"totals": [{"order_id": 501, "total": "49.98"}], "missing": [999]}
TOTAL = {"order_id": 501, "total": "49.98"}
CANCEL = {"status": "cancelled"}
USER = {"id": 3, "name": "Ada", "pets": [{"id": 11, "name": "Rex"}]}
NEW_USER = {"name": "Ada", "pets": [{"name": "Rex"}]}
RENAME = {"name": "Ida"}
PET = {"id": 11, "name": "Rex", "user": {"id": 3, "name": "Ada"}}
NEW_PET = {"name": "Rex", "user_id": 3}
PET_NAME = {"name": "Rex"}
RELEASE = {"user_id": None}
ORDER_PLACED_EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "a307bc95-7891-4d57-996c-2679fb828880",
    "source": "/marketsvc",
    "type": "com.marketsvc.order.placed.v1",
    "subject": "orders/501",
    "time": "2026-11-24T09:14:49.628Z",
    "datacontenttype": "application/json",
    "resourceversion": 1,
    "cursor": "0-4",
    "data": ORDER,
}
