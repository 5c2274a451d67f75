"""Stream any query as a JSON array or NDJSON, chunk by chunk, in constant memory."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.errors import InvalidRequest, NotAcceptable
from marketsvc.web.caching import cacheable
from marketsvc.web.cursors import CursorCodec, cursor_codec
from marketsvc.web.http import read_params
from marketsvc.web.keys import DATABASE, REQUEST_ID, SETTINGS
from marketsvc.web.middlewares.metrics import streamed
from marketsvc.web.negotiation import choose

log = logging.getLogger("marketsvc.streaming")

T = TypeVar("T")
NDJSON = "application/x-ndjson"
# an async generator, not any iterator: aclose() gives the cursor back when the client goes away
Chunks = Callable[[AsyncSession], AsyncGenerator[Sequence[T], None]]


def dump_all(dump: Callable[[T], dict[str, Any]]) -> Callable[[Sequence[T]], list[dict[str, Any]]]:
    """A chunk's dumper from a row's (``schemas.*.dump_*``)."""
    return lambda chunk: list(map(dump, chunk))


LIST_MEDIA_TYPES = ("application/json", NDJSON)  # in the server's order of preference


def list_media_type(request: web.Request, offered: Sequence[str] = LIST_MEDIA_TYPES) -> str:
    """JSON array or NDJSON (or what else ``offered`` says), as the client's ``Accept``
    prefers; 406 when it takes none of them."""
    chosen = choose(request.headers.get("Accept"), offered)
    if chosen is None:
        raise NotAcceptable(
            f"this list is sent as {', '.join(offered)}; "
            f"the Accept header takes none of them: {request.headers.get('Accept')!r}"
        )
    return chosen


class JsonEncoder:
    """Encodes chunks of dicts as the pieces of one JSON array or of NDJSON lines."""

    def __init__(self, ndjson: bool) -> None:
        self.ndjson = ndjson
        self.first = True

    def opening(self) -> bytes:
        return b"" if self.ndjson else b"["

    def closing(self) -> bytes:
        return b"" if self.ndjson else b"]"

    def chunk(self, rows: Sequence[dict[str, Any]]) -> bytes:
        if not rows:
            return b""
        if self.ndjson:
            return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)
        body = orjson.dumps(rows)[1:-1]  # one call for the chunk; the brackets are ours to place
        if self.first:
            self.first = False
            return body
        return b"," + body


async def stream_json(
    request: web.Request,
    open_session: Callable[[], AsyncSession],
    chunks: Chunks[T],
    dump: Callable[[Sequence[T]], Sequence[dict[str, Any]]],
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Answer with every row ``chunks`` yields, writing each chunk as soon as it arrives.

    The first chunk is fetched before the headers go out, so a failing query still gets a proper
    error status; after that a failure can only cut the stream short. When the client goes away,
    the write raises, the cursor closes and the session gives its connection back at once.
    """
    media_type = list_media_type(request)
    encoder = JsonEncoder(media_type == NDJSON)
    async with open_session() as session, aclosing(chunks(session)) as rows:
        first = await anext(rows, None)
        response = web.StreamResponse(
            headers={"Content-Type": media_type, "Vary": "Accept", **(headers or {})}
        )
        await response.prepare(request)
        if request.method == "HEAD":  # headers only: body bytes would corrupt the connection
            await response.write_eof()
            return response
        try:
            head = encoder.opening() + (encoder.chunk(dump(first)) if first else b"")
            await response.write(head)
            streamed(request, len(first) if first else 0, len(head))
            async for chunk in rows:
                body = encoder.chunk(dump(chunk))
                await response.write(body)
                streamed(request, len(chunk), len(body))
            await response.write(encoder.closing())
            streamed(request, 0, len(encoder.closing()))
        except ConnectionError:
            log.info("client went away mid-stream", extra={"request_id": request[REQUEST_ID]})
            return response
        except Exception:  # the headers are out: nothing but cutting the connection can answer
            log.exception(
                "stream failed after it started", extra={"request_id": request[REQUEST_ID]}
            )
            if request.transport is not None:
                request.transport.close()  # a truncated body must not look complete
            return response
    await response.write_eof()
    return response


async def write_page(
    request: web.Request,
    rows: Sequence[dict[str, Any]],
    headers: dict[str, str],
    *,
    cached: bool = False,
) -> web.StreamResponse:
    """A page already in hand (a bounded ``limit``), as a JSON array or NDJSON, with
    ``headers`` (such as ``Link``) that could only be known once the page was read; ``cached``
    adds an ``ETag`` and ``Cache-Control`` and answers a matching ``If-None-Match`` with 304."""
    media_type = list_media_type(request)
    encoder = JsonEncoder(media_type == NDJSON)
    body = encoder.opening() + encoder.chunk(rows) + encoder.closing()
    if cached:
        response = cacheable(request, body, media_type, Vary="Accept", **headers)
        if response.status == 200 and request.method != "HEAD":
            streamed(request, len(rows), len(body))
        return response
    streamed_response = web.StreamResponse(
        headers={"Content-Type": media_type, "Vary": "Accept", **headers}
    )
    await streamed_response.prepare(request)
    if request.method != "HEAD":
        await streamed_response.write(body)
        streamed(request, len(rows), len(body))
    await streamed_response.write_eof()
    return streamed_response


async def stream_list(
    request: web.Request,
    chunks: Callable[..., AsyncGenerator[Sequence[T], None]],
    dump: Callable[[Sequence[T]], Sequence[dict[str, Any]]],
    **fixed: Any,
) -> web.StreamResponse:
    """A collection GET in id order: the query string (``after_id``, ``limit``, ``cursor``,
    filters), validated by the route's declared query schema, goes with ``fixed`` as keywords to
    ``chunks(session, ...)``. Without ``limit`` every row streams; with it, a page and a
    ``Link`` whose cursor (the last id, signed and bound to this list) continues it."""
    params = read_params(request)
    limit, cursor = params.pop("limit", None), params.pop("cursor", None)
    codec = cursor_codec(request.app[SETTINGS].jwt_secret)
    key = _list_key(request, params, fixed)
    if cursor is not None:
        if params.get("after_id"):  # 0, the default (which generated clients send), is none
            raise InvalidRequest({"query.after_id": ["Not with cursor: the cursor says where."]})
        params["after_id"] = codec.decode(cursor, key)[1]
    if limit is not None:
        return await _page(request, chunks, dump, limit, params | fixed, codec, key)
    chunk_rows = request.app[SETTINGS].stream_chunk_rows
    return await stream_json(
        request,
        request.app[DATABASE].stream,
        lambda session: chunks(session, chunk_rows=chunk_rows, **params, **fixed),
        dump,
    )


def _list_key(request: web.Request, params: dict[str, Any], fixed: dict[str, Any]) -> str:
    """What a cursor is bound to: the route, its path and every filter (not the position)."""
    filters = {k: v for k, v in (params | fixed).items() if k != "after_id"}
    return request.path + "\0" + repr(sorted(filters.items(), key=lambda kv: kv[0]))


async def _page(
    request: web.Request,
    chunks: Callable[..., AsyncGenerator[Sequence[T], None]],
    dump: Callable[[Sequence[T]], Sequence[dict[str, Any]]],
    limit: int,
    arguments: dict[str, Any],
    codec: CursorCodec,
    key: str,
) -> web.StreamResponse:
    list_media_type(request)  # a 406 before any query
    rows: list[T] = []
    async with (
        request.app[DATABASE].stream() as session,
        aclosing(chunks(session, chunk_rows=limit + 1, **arguments | {"limit": limit + 1})) as it,
    ):
        async for chunk in it:
            rows.extend(chunk)
    page = list(dump(rows[:limit]))
    headers = {}
    if len(rows) > limit:
        query = {k: v for k, v in request.query.items() if k not in ("cursor", "after_id")}
        after = codec.encode((None, page[-1]["id"]), key)
        headers["Link"] = f'<{request.rel_url.with_query(query | {"cursor": after})}>; rel="next"'
    return await write_page(request, page, headers)
