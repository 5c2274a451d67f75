"""The event feed: admins read every event; a customer only those about itself and its orders."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import orjson
from aiohttp import web
from marshmallow import ValidationError

from marketsvc.db_accessor.outbox import FeedFilter, Position, cursor_of
from marketsvc.errors import InvalidRequest
from marketsvc.events.envelope import envelope
from marketsvc.handlers.examples import ORDER_PLACED_EVENT
from marketsvc.ops.metrics import FEED_READERS, WAKEUP_LATENCY
from marketsvc.schemas.events import Cursor, EventsQuery, any_event
from marketsvc.services.feed import wait_for_page
from marketsvc.services.feed_wakeup import FEED_WAKEUP
from marketsvc.web.http import read_params
from marketsvc.web.keys import DATABASE, PRINCIPAL, REQUEST_ID, SETTINGS
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import LIST_MEDIA_TYPES, NDJSON, list_media_type

log = logging.getLogger("marketsvc.events.feed")
routes = web.RouteTableDef()
SSE = "text/event-stream"
LAST_EVENT_ID = "Last-Event-ID"
SSE_PAGE = 500
_CURSOR = Cursor()


@routes.get("/api/v1/events")
@endpoint(
    summary="The event feed: a page after a cursor, a long-poll, or Server-Sent Events",
    access=Access.CUSTOMER,
    tag="events",
    query=EventsQuery(),
    response=any_event(),
    response_example=ORDER_PLACED_EVENT,
    stream=True,
    errors=(410,),
    headers=(LAST_EVENT_ID,),
    extra_media_types=(SSE,),
)
async def list_events(request: web.Request) -> web.StreamResponse:
    """Events after `after`, oldest first, each with the `cursor` to continue from; no later
    commit can ever land before a cursor handed out. `wait=S` holds an empty answer up to S
    seconds for the next event. `Accept: text/event-stream` streams the feed as Server-Sent
    Events (`id:` is the cursor; resume with `Last-Event-ID`; a comment every 15 s)."""
    params = read_params(request)
    after = _after(request, params)
    where = FeedFilter(params.get("type"), params.get("subject"), request[PRINCIPAL].customer_id)
    media_type = list_media_type(request, (*LIST_MEDIA_TYPES, SSE))
    if media_type == SSE:
        return await _server_sent_events(request, after, where)
    wait_s = min(params["wait"], request.app[SETTINGS].events_max_wait_seconds)
    mode = "long_poll" if wait_s else "page"
    FEED_READERS.labels(mode).inc()
    try:
        rows, woken = await _page(request, after, where, params["limit"], wait_s)
    finally:
        FEED_READERS.labels(mode).dec()
    if woken and rows:
        _observe_wakeup(mode, rows)
    documents = _documents(request, rows)
    if media_type != NDJSON:
        return web.Response(
            body=orjson.dumps(documents),
            content_type="application/json",
            headers={"Vary": "Accept"},
        )
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "Vary": "Accept"})
    await response.prepare(request)
    if request.method != "HEAD":  # body bytes after a HEAD answer would corrupt the connection
        lines = b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)
        await response.write(lines)
    await response.write_eof()
    return response


async def _server_sent_events(
    request: web.Request, after: Position | None, where: FeedFilter
) -> web.StreamResponse:
    """Until the client leaves or the worker stops: events as they commit, a comment as a
    heartbeat. The first page is read before the headers go out (an expired cursor is a 410)."""
    wakeup, heartbeat = request.app[FEED_WAKEUP], request.app[SETTINGS].events_heartbeat_seconds
    rows, woken = await _page(request, after, where, SSE_PAGE, 0)
    response = web.StreamResponse(headers={"Content-Type": SSE, "Cache-Control": "no-cache"})
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    FEED_READERS.labels("sse").inc()
    try:
        beat_at = time.monotonic() + heartbeat
        while not wakeup.closing:
            if rows:
                await response.write(_sse_frames(request, rows))
                after = (rows[-1].txid, rows[-1].id)
                if woken:
                    _observe_wakeup("sse", rows)
            if time.monotonic() >= beat_at:
                await response.write(b": heartbeat\n\n")
                beat_at = time.monotonic() + heartbeat
            wait_s = 0 if len(rows) == SSE_PAGE else max(0.0, beat_at - time.monotonic())
            rows, woken = await _page(request, after, where, SSE_PAGE, wait_s)
    except ConnectionError:
        log.info("feed reader went away", extra={"request_id": request[REQUEST_ID]})
        return response
    finally:
        FEED_READERS.labels("sse").dec()
    await response.write_eof()
    return response


async def _page(
    request: web.Request, after: Position | None, where: FeedFilter, limit: int, wait_s: float
) -> tuple[Sequence[Any], bool]:
    app = request.app
    return await wait_for_page(app[DATABASE], app[FEED_WAKEUP], after, where, limit, wait_s)


def _documents(request: web.Request, rows: Sequence[Any]) -> list[dict[str, Any]]:
    source = request.app[SETTINGS].events_source
    return [envelope(row, source, cursor_of((row.txid, row.id))) for row in rows]


def _sse_frames(request: web.Request, rows: Sequence[Any]) -> bytes:
    frames = []
    for document in _documents(request, rows):
        head = f"id: {document['cursor']}\nevent: {document['type']}\ndata: ".encode()
        frames.append(head + orjson.dumps(document) + b"\n\n")
    return b"".join(frames)


def _observe_wakeup(mode: str, rows: Sequence[Any]) -> None:
    """From the first new event's time (set just before its commit) to its delivery."""
    WAKEUP_LATENCY.labels(mode).observe(max(0.0, time.time() - rows[0].time.timestamp()))


def _after(request: web.Request, params: dict[str, Any]) -> Position | None:
    """``Last-Event-ID`` (an SSE client resuming) wins over ``after``."""
    last_id = request.headers.get(LAST_EVENT_ID)
    if last_id is None:
        return params.get("after")
    try:
        # Cursor loads the wire form into a position (its _deserialize); typed as String's str
        return cast(Position, _CURSOR.deserialize(last_id))
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
        raise InvalidRequest({f"header.{LAST_EVENT_ID}": [str(m) for m in messages]}) from None
