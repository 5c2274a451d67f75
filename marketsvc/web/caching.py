"""HTTP caching of the public catalogue (RFC 9110 section 8.8.3, 13; RFC 9111): strong ETags
from the representation's bytes, ``Cache-Control``, and the ``If-None-Match`` and ``If-Match``
preconditions."""

from __future__ import annotations

import hashlib

from aiohttp import web

from marketsvc.errors import DomainError

CACHE_CONTROL = "public, max-age=5"  # short: stock and prices change; revalidation is cheap


class PreconditionFailed(DomainError):
    status = 412


def etag_of(body: bytes) -> str:
    """A strong ETag: the same bytes, the same tag (JSON and NDJSON bodies differ, so do tags)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _listed(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def none_match(request: web.Request, etag: str) -> bool:
    """``If-None-Match`` names this representation (weak comparison: ``W/`` is ignored)."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    tags = _listed(header)
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def require_match(if_match: str | None, etag: str) -> None:
    """``If-Match`` (strong comparison): absent, ``*`` or naming ``etag``, else 412."""
    if if_match is None:
        return
    tags = _listed(if_match)
    if "*" not in tags and etag not in tags:
        raise PreconditionFailed(
            "the item changed since the ETag in If-Match was read; GET it again",
            {"header.If-Match": [f"Does not match the item's current ETag {etag}."]},
        )


def cacheable(request: web.Request, body: bytes, content_type: str, **headers: str) -> web.Response:
    """200 with ``body``, its ``ETag`` and ``Cache-Control``; 304 with neither body nor type
    when ``If-None-Match`` already names it."""
    etag = etag_of(body)
    headers |= {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if none_match(request, etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, headers=headers)
