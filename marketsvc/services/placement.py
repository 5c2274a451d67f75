"""Placing an order under an Idempotency-Key: the key, the order and its response commit together.

The key row is inserted first in the same write transaction as the placement, and the response
(201 or the 409/422 problem) is stored in it before commit. A retry therefore finds either no key
(the first attempt rolled back: it runs afresh) or the finished response (replayed byte for byte);
it never sees a half-made order, and two requests with one key can never make two orders.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor import idempotency, orders
from marketsvc.db_accessor.idempotency import StoredResponse
from marketsvc.errors import Conflict, DomainError, InvalidInput, OutOfStock
from marketsvc.events import record
from marketsvc.schemas.orders import order_dict
from marketsvc.store.models import utcnow
from marketsvc.web.keys import DATABASE, PRINCIPAL, SETTINGS
from marketsvc.web.problems import PROBLEM_CONTENT_TYPE, problem

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
PURGE_EVERY = 100  # keys claimed between two purges of expired keys
RECORDED_FAILURES = (OutOfStock, InvalidInput)  # answers a retry must get again, not re-run


class KeyReused(DomainError):
    status = 422
    title = "Unprocessable content"

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used with a different request body",
            {IDEMPOTENCY_HEADER: ["Already used with a different request body."]},
        )


class KeyInFlight(Conflict):
    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in flight; retry shortly")


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    # isprintable() also refuses the lone surrogates that stand in for bytes that are not UTF-8
    if key is not None and not (1 <= len(key) <= MAX_KEY_LENGTH and key.isprintable()):
        raise InvalidInput(
            {IDEMPOTENCY_HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable characters."]}
        )
    return key


def request_hash(data: dict[str, Any]) -> str:
    """A digest of the validated, merged body: the same order asked twice hashes the same."""
    canonical = {
        "route": "POST /api/v1/orders",
        "customer_id": data["customer_id"],
        "lines": [[line.item_id, line.quantity] for line in data["lines"]],
    }
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


async def place_keyed(request: web.Request, data: dict[str, Any], key: str) -> web.Response:
    digest = request_hash(data)
    database = request.app[DATABASE]
    async with database.change() as session:
        claimed = await idempotency.claim(session, request[PRINCIPAL].owner, key, digest)
        if isinstance(claimed, int):
            status, body = await _attempt(session, data)
            await idempotency.record(session, claimed, status, body)
    if isinstance(claimed, StoredResponse):
        return _replay(claimed, digest)
    if claimed % PURGE_EVERY == 0:
        cutoff = utcnow() - timedelta(hours=request.app[SETTINGS].idempotency_ttl_hours)
        async with database.change() as session:
            await idempotency.purge_expired(session, cutoff)
    return keyed_response(status, body, replayed=False)


async def _attempt(session: AsyncSession, data: dict[str, Any]) -> tuple[int, str]:
    """Place the order in a savepoint; a refusal rolls back only the placement, not the key."""
    try:
        async with session.begin_nested():
            order = await orders.place_order(
                session, data["customer_id"], data["lines"], announce=record.order_placed
            )
            await record.sold_out(session, order)
    except RECORDED_FAILURES as exc:
        refusal = problem(exc.status, exc.detail, title=exc.title, errors=exc.errors)
        return exc.status, bytes(refusal.body).decode()
    return 201, orjson.dumps(order_dict(order)).decode()


def _replay(stored: StoredResponse, digest: str) -> web.Response:
    if stored.request_hash != digest:
        raise KeyReused()
    if stored.status is None or stored.body is None:
        raise KeyInFlight()
    return keyed_response(stored.status, stored.body, replayed=True)


def keyed_response(status: int, body: str, replayed: bool) -> web.Response:
    """The stored answer as sent the first time; a replay only adds ``Idempotent-Replayed``."""
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if status == 201:
        headers["Location"] = f"/api/v1/orders/{orjson.loads(body)['id']}"
    return web.Response(
        status=status,
        body=body.encode(),
        content_type="application/json" if status < 400 else PROBLEM_CONTENT_TYPE,
        headers=headers,
    )
