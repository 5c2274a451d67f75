"""Idempotency-Key on every unsafe request: the key, the change and its answer commit together.

One write transaction claims the key, runs the route's handler inside it (the handler's own
``change()``/``change_rows()`` join it: ``Database.joined``) and stores the answer before
commit. A retry therefore finds either no key (the first attempt rolled back, in an outage say:
it runs afresh) or the finished answer (replayed byte for byte); it never sees a half-made
change, and two requests with one key can never both make it. On PostgreSQL a concurrent
duplicate's claim waits for the first transaction, then replays its answer.

A refusal (a domain error: 404, 409, 422...) is an answer too: the handler's work is rolled back
to a savepoint and the problem is stored and replayed. A body that fails validation is not stored
(nothing ran; a retry gets the same 422 anyway), and neither is an outage.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor import idempotency
from marketsvc.db_accessor.idempotency import StoredResponse
from marketsvc.errors import Conflict, DomainError, InvalidInput, InvalidRequest
from marketsvc.ops.metrics import IDEMPOTENT_REPLAYS
from marketsvc.store.models import utcnow
from marketsvc.web.keys import DATABASE, PRINCIPAL, SETTINGS
from marketsvc.web.middlewares.errors import domain_problem
from marketsvc.web.routing import Handler, route_of

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_ERRORS = f"header.{IDEMPOTENCY_HEADER}"  # where a refused key is named in `errors`
MAX_KEY_LENGTH = 255
# printable ASCII, no space at either end (HTTP trims those): what the document's pattern says
KEY_PATTERN = rf"^[\x21-\x7e]([\x20-\x7e]{{0,{MAX_KEY_LENGTH - 2}}}[\x21-\x7e])?$"
KEY_SHAPE = re.compile(KEY_PATTERN)
PURGE_EVERY = 100  # keys claimed between two purges of expired keys
KEPT_HEADERS = ("Content-Type", "Location", "ETag")  # what a replay repeats besides status, body


class KeyReused(DomainError):
    status = 422

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used with a different request",
            {KEY_ERRORS: ["Already used with a different method, path or body."]},
        )


class KeyInFlight(Conflict):
    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in flight; retry shortly")


def idempotency_key(request: web.Request) -> str:
    key = request.headers[IDEMPOTENCY_HEADER]
    if not KEY_SHAPE.fullmatch(key):
        raise InvalidInput(
            {KEY_ERRORS: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]}
        )
    return key


async def request_digest(request: web.Request) -> str:
    """Method, path and body; a JSON body by value (key order and spacing do not matter)."""
    body = await request.read()  # aiohttp keeps it: the handler reads it again for free
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body  # the handler refuses it; the refusal is keyed to these very bytes
    head = f"{request.method} {request.path}\n".encode()
    return hashlib.sha256(head + canonical).hexdigest()


async def run_once(request: web.Request, handler: Handler, key: str) -> web.StreamResponse:
    """The first answer to ``key`` from this caller, made now or replayed."""
    digest = await request_digest(request)
    database = request.app[DATABASE]
    async with database.change() as session:
        claimed = await idempotency.claim(session, request[PRINCIPAL].owner, key, digest)
        if isinstance(claimed, StoredResponse):
            return _replay(request, claimed, digest)  # nothing was written
        response = await _attempt(request, handler, session)
        await idempotency.record(session, claimed, response.status, freeze(response))
    if claimed % PURGE_EVERY == 0:
        cutoff = utcnow() - timedelta(hours=request.app[SETTINGS].idempotency_ttl_hours)
        async with database.change() as session:
            await idempotency.purge_expired(session, cutoff)
    return response


async def _attempt(request: web.Request, handler: Handler, session: AsyncSession) -> web.Response:
    """Run the handler in a savepoint of the key's transaction; a refusal rolls back only it."""
    try:
        async with session.begin_nested():
            with request.app[DATABASE].joined(session):
                response = await handler(request)
    except InvalidRequest:
        raise  # nothing was tried: the key stays free for the corrected request
    except DomainError as exc:
        return domain_problem(exc)
    assert isinstance(response, web.Response), "an unsafe route answers with a complete body"
    return response


def freeze(response: web.Response) -> str:
    """The answer as stored: a line of the headers a replay repeats, then the body as sent."""
    headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
    return orjson.dumps(headers).decode() + "\n" + body.decode()


def _replay(request: web.Request, stored: StoredResponse, digest: str) -> web.Response:
    if stored.request_hash != digest:
        raise KeyReused()
    if stored.status is None or stored.body is None:
        raise KeyInFlight()
    IDEMPOTENT_REPLAYS.labels(request.method, route_of(request)).inc()
    head, _, body = stored.body.partition("\n")
    headers = orjson.loads(head) | {REPLAYED_HEADER: "true"}
    return web.Response(status=stored.status, body=body.encode(), headers=headers)
