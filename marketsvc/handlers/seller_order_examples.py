"""Examples the OpenAPI document shows for the seller order and balance routes (each checked
against its schema by tests/test_openapi.py)."""

from __future__ import annotations

from typing import Any

SELLER_LINE = {
    "item_id": 7,
    "name": "Kettle",
    "unit_price": "24.99",
    "quantity": 2,
    "line_total": "49.98",
    "commission_bps": 1250,
    "commission": "6.25",
}
SELLER_ORDER: dict[str, Any] = {
    "id": 610,
    "order_id": 501,
    "seller_id": 3,
    "status": "shipped",
    "placed_at": "2026-11-24T09:14:49.628Z",
    "carrier": "DHL",
    "tracking_number": "JD014600006281230704",
    "lines": [SELLER_LINE],
    "subtotal": "49.98",
    "commission": "6.25",
    "refund_owed": "0.00",
}
SHIP = {"status": "shipped", "carrier": "DHL", "tracking_number": "JD014600006281230704"}
BALANCE = {
    "seller_id": 3,
    "delivered_parts": 1,
    "gross": "49.98",
    "commission": "6.25",
    "net_owed": "43.73",
    "refunds_owed": [{"order_id": 502, "amount": "12.50"}],
}
