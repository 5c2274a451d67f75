"""The raw baseline's routes: marketsvc's URLs, statuses and JSON, written by hand.

Same bearer check as marketsvc (HS256 with PyJWT, the same secret, each token verified once and
remembered until it expires); no ORM, no marshmallow, no middleware; validation is hand-written
and only as deep as the benchmark's inputs need.

``BASELINE_STRATEGY`` picks how it uses the database:

- ``limit`` (the default): the best this machine's drivers allow, whatever marketsvc does. On
  SQLite one aiosqlite connection per worker for every read (one thread: reads queue there,
  no hand-over between threads) and one ``sqlite3`` connection in a thread of its own for
  writes, a whole placement per call (one hop, not one per statement; placements in turn:
  SQLite has one writer anyway); on PostgreSQL an asyncpg pool of ``BASELINE_PG_POOL_SIZE``
  (8) connections per worker.
- ``like``: marketsvc's own settings (``MARKETSVC_DB_POOL_SIZE`` connections per worker on
  both databases), the like-for-like comparison.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from baseline.errors import OutOfStock, UnknownCustomer, UnknownItems, problem
from baseline.pg import PgStore
from baseline.sqlite import SqliteStore
from baseline.tokens import SECRET, verified_scope
from baseline.wire import cents, customer_json, order_json
from marketsvc.settings import Settings

STORE = web.AppKey("store", object)
MAX_ID = 2**63 - 1
routes = web.RouteTableDef()


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


STRATEGY = os.environ.get("BASELINE_STRATEGY", "limit")
CHUNK_ROWS = env_int("MARKETSVC_STREAM_CHUNK_ROWS", 500)


def caller_scope(request: web.Request, admin_only: bool = False) -> int | None:
    """Verify the bearer token; the customer id it is limited to, or None for an admin."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise problem(401, "this route needs an Authorization: Bearer token")
    scope = verified_scope(token)
    if admin_only and scope is not None:
        raise problem(403, "not allowed")
    return scope


def path_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) <= MAX_ID:
        raise problem(404, f"no resource with id {raw!r}")
    return int(raw)


def is_id(value: object) -> bool:
    return type(value) is int and 0 < value <= MAX_ID


def respond(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


async def read_body(request: web.Request) -> object:
    if request.content_type != "application/json":
        raise problem(415, "the body must be application/json")
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise problem(400, f"the body is not valid JSON: {exc}") from None


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return respond({"status": "ok"})


@routes.get("/api/v1/customers/{id}")
async def get_customer(request: web.Request) -> web.Response:
    scope = caller_scope(request)
    customer_id = path_id(request)
    row = None
    if scope is None or scope == customer_id:
        row = await request.app[STORE].customer(customer_id)
    if row is None:
        raise problem(404, f"no customer with id {customer_id}")
    return respond(customer_json(row))


@routes.get("/api/v1/customers")
async def list_customers(request: web.Request) -> web.StreamResponse:
    caller_scope(request, admin_only=True)
    async with request.app[STORE].customer_chunks(CHUNK_ROWS) as chunks:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        opening = b"["
        async for rows in chunks:
            body = orjson.dumps([customer_json(r) for r in rows])
            await response.write(opening + body[1:-1])
            opening = b","
        await response.write(b"[]" if opening == b"[" else b"]")
    await response.write_eof()
    return response


@routes.get("/api/v1/orders/{id}")
async def get_order(request: web.Request) -> web.Response:
    scope = caller_scope(request)
    order_id = path_id(request)
    order = await request.app[STORE].order(order_id)
    if order is None or (scope is not None and order[1] != scope):
        raise problem(404, f"no order with id {order_id}")
    return respond(order_json(*order))


@routes.get("/api/v1/orders/{id}/total")
async def get_order_total(request: web.Request) -> web.Response:
    scope = caller_scope(request)
    order_id = path_id(request)
    store = request.app[STORE]
    total = await store.order_total(order_id)
    if scope is not None and total is not None and (await store.order(order_id))[1] != scope:
        total = None
    if total is None:
        raise problem(404, f"no order with id {order_id}")
    return respond({"order_id": order_id, "total": cents(total)})


@routes.post("/api/v1/orders/totals")
async def post_order_totals(request: web.Request) -> web.Response:
    caller_scope(request, admin_only=True)
    data = await read_body(request)
    ids = data.get("order_ids") if isinstance(data, dict) and len(data) == 1 else None
    if not isinstance(ids, list) or not 1 <= len(ids) <= 1000 or not all(map(is_id, ids)):
        raise problem(422, "invalid input", {"order_ids": ["1 to 1000 order ids."]})
    wanted = list(dict.fromkeys(ids))
    found = await request.app[STORE].order_totals(wanted)
    return respond(
        {
            "totals": [{"order_id": i, "total": cents(found[i])} for i in wanted if i in found],
            "missing": [i for i in wanted if i not in found],
        }
    )


@routes.post("/api/v1/orders")
async def post_order(request: web.Request) -> web.Response:
    scope = caller_scope(request)
    customer_id, lines = order_request(await read_body(request))
    if scope is not None and scope != customer_id:
        raise problem(422, "invalid input", {"customer_id": ["Unknown customer."]})
    try:
        order = await request.app[STORE].place_order(customer_id, lines)
    except UnknownCustomer:
        raise problem(422, "invalid input", {"customer_id": ["Unknown customer."]}) from None
    except UnknownItems as exc:
        raise problem(422, "invalid input", {"lines": [f"Unknown items {exc.item_ids}."]}) from None
    except OutOfStock as exc:
        raise problem(409, f"not enough stock for items {exc.item_ids}") from None
    return respond(order_json(*order), 201, {"Location": f"/api/v1/orders/{order[0]}"})


def order_request(data: object) -> tuple[int, list[tuple[int, int]]]:
    """``(customer_id, [(item_id, quantity)])`` with lines of one item merged, sorted by item."""
    lines = data.get("lines") if isinstance(data, dict) else None
    if not isinstance(data, dict) or set(data) != {"customer_id", "lines"}:
        raise problem(422, "invalid input", {"_schema": ["customer_id and lines, nothing else."]})
    if not is_id(data["customer_id"]):
        raise problem(422, "invalid input", {"customer_id": ["An id."]})
    if not isinstance(lines, list) or not 1 <= len(lines) <= 100:
        raise problem(422, "invalid input", {"lines": ["1 to 100 lines."]})
    merged: dict[int, int] = {}
    for n, line in enumerate(lines):
        if not isinstance(line, dict) or set(line) != {"item_id", "quantity"}:
            raise problem(422, "invalid input", {f"lines.{n}": ["item_id and quantity."]})
        item_id, quantity = line["item_id"], line["quantity"]
        if not is_id(item_id) or type(quantity) is not int or not 1 <= quantity <= 10_000:
            raise problem(422, "invalid input", {f"lines.{n}": ["An item id, quantity 1..10000."]})
        merged[item_id] = merged.get(item_id, 0) + quantity
    return data["customer_id"], sorted(merged.items())


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    url = os.environ["MARKETSVC_DATABASE_URL"]
    if STRATEGY not in ("limit", "like"):
        raise SystemExit(f"BASELINE_STRATEGY is limit or like, not {STRATEGY!r}")
    defaults = Settings()  # marketsvc's pool defaults, for the like-for-like strategy
    size = env_int("MARKETSVC_DB_POOL_SIZE", defaults.pool_size)
    if url.startswith("sqlite"):
        readers = 1 if STRATEGY == "limit" else size
        store: PgStore | SqliteStore = await SqliteStore.open(url, readers, STRATEGY == "limit")
    else:
        overflow = env_int("MARKETSVC_DB_MAX_OVERFLOW", defaults.max_overflow)
        if STRATEGY == "limit":
            size, overflow = env_int("BASELINE_PG_POOL_SIZE", 8), 0
        store = await PgStore.open(url, size, overflow, float(env_int("MARKETSVC_DB_TIMEOUT", 10)))
    app[STORE] = store
    yield
    await store.close()


async def gunicorn_app() -> web.Application:
    if not SECRET:
        raise SystemExit("the baseline needs MARKETSVC_JWT_SECRET (the same as marketsvc's)")
    app = web.Application(client_max_size=env_int("MARKETSVC_MAX_BODY_BYTES", 1024 * 1024))
    app.cleanup_ctx.append(store_ctx)
    app.add_routes(routes)
    return app
