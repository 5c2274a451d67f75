"""Payment results: each payment event applied once, in one transaction with its inbox row.

The inbox row is claimed first (``payment_inbox.claim``): a repeated delivery of the same
``webhook-id`` finds it and changes nothing. Then, with the order's row locked:

- ``payment.succeeded``: a pending order moves to ``paid`` (``order.paid``); a cancelled one
  stays cancelled and ``order.payment_conflict`` says the payment needs a refund (outcome
  ``conflict``); an order already paid, shipped or delivered is left alone (``ignored``).
- ``payment.failed``: a pending order is cancelled, its stock restored (``order.cancelled``,
  ``cancelled_by`` the role ``payments``); any other status is left alone (``ignored``): a
  failure never undoes a payment that succeeded.
- an order that does not exist: recorded as ``unknown_order`` and answered 200, so that the
  sender stops retrying a delivery that can never succeed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from marketsvc.db_accessor import orders, payment_inbox
from marketsvc.db_accessor.payment_inbox import InboxEntry
from marketsvc.events import record
from marketsvc.services.order_moves import move_in
from marketsvc.store.engine import Database
from marketsvc.web.auth import Principal

SUCCEEDED, FAILED = "payment.succeeded", "payment.failed"


@dataclass(frozen=True)
class PaymentsActor(Principal):
    """The payment provider as the actor of an order move: no customer scope (like an admin,
    it may move any order; this service decides which moves it asks for)."""

    @property
    def customer_id(self) -> int | None:
        return None


async def receive(
    database: Database, webhook_id: str, type_: str, payment: dict[str, Any]
) -> InboxEntry:
    """Apply the payment event ``webhook_id`` once; ``payment``: the loaded ``data``. A repeated
    delivery gets the first one's entry, marked ``duplicate``."""
    order_id, payment_id = payment["order_id"], payment["payment_id"]
    async with database.change() as session:
        if not await payment_inbox.claim(session, webhook_id, type_, order_id, payment_id):
            return replace(await payment_inbox.get(session, webhook_id), duplicate=True)
        status = await payment_inbox.lock_order_status(session, order_id)
        actor = PaymentsActor(subject=payment_id, role="payments")
        if status is None:
            outcome = "unknown_order"
        elif status != "pending":
            outcome = "ignored"
            if type_ == SUCCEEDED and status == "cancelled":
                outcome = "conflict"
                order = await orders.get_order(session, order_id)
                ref = {"webhook_id": webhook_id, "payment_id": payment_id}
                await record.payment_conflict(session, order, ref | {"amount": payment["amount"]})
        else:
            outcome = "applied"
            await move_in(session, order_id, "paid" if type_ == SUCCEEDED else "cancelled", actor)
        return await payment_inbox.settle(session, webhook_id, outcome)
