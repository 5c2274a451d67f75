"""Stream any query as a JSON array or NDJSON, chunk by chunk, in constant memory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketsvc.keys import REQUEST_ID

log = logging.getLogger("marketsvc.streaming")

T = TypeVar("T")
NDJSON = "application/x-ndjson"
Chunks = Callable[[AsyncSession], AsyncIterator[Sequence[T]]]


def wants_ndjson(request: web.Request) -> bool:
    return NDJSON in request.headers.get("Accept", "")


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
        encoded = [orjson.dumps(row) for row in rows]
        if self.ndjson:
            return b"\n".join(encoded) + b"\n"
        body = b",".join(encoded)
        if self.first:
            self.first = False
            return body
        return b"," + body


async def stream_json(
    request: web.Request,
    sessionmaker: async_sessionmaker[AsyncSession],
    chunks: Chunks[T],
    dump: Callable[[Sequence[T]], Sequence[dict[str, Any]]],
) -> web.StreamResponse:
    """Answer with every row ``chunks`` yields, writing each chunk as soon as it arrives.

    The first chunk is fetched before the headers go out, so a failing query still gets a proper
    error status; after that a failure can only cut the stream short. When the client goes away,
    the write raises, the cursor closes and the session gives its connection back at once.
    """
    encoder = JsonEncoder(wants_ndjson(request))
    async with sessionmaker() as session, aclosing(chunks(session)) as rows:
        first = await anext(rows, None)
        response = web.StreamResponse(
            headers={"Content-Type": NDJSON if encoder.ndjson else "application/json"}
        )
        await response.prepare(request)
        if request.method == "HEAD":  # headers only: body bytes would corrupt the connection
            await response.write_eof()
            return response
        try:
            await response.write(encoder.opening() + (encoder.chunk(dump(first)) if first else b""))
            async for chunk in rows:
                await response.write(encoder.chunk(dump(chunk)))
            await response.write(encoder.closing())
        except ConnectionError:
            log.info("client went away mid-stream", extra={"request_id": request[REQUEST_ID]})
            return response
        except Exception:
            log.exception(
                "stream failed after it started", extra={"request_id": request[REQUEST_ID]}
            )
            if request.transport is not None:
                request.transport.close()  # a truncated body must not look complete
            return response
    await response.write_eof()
    return response
