"""One place that turns every failure into problem+json and tags every response."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web
from marshmallow import ValidationError
from sqlalchemy import exc as sa_exc

from marketsvc.errors import DomainError, Unauthorized
from marketsvc.web.keys import REQUEST_ID
from marketsvc.web.middlewares.request_id import request_id_of
from marketsvc.web.problems import flatten_errors, problem
from marketsvc.web.routing import Handler

log = logging.getLogger("marketsvc.errors")

_REQUEST_ID_OK = re.compile(r"^[\w.:@/+=-]{1,200}$")
RETRY_AFTER_SECONDS = "5"
DB_UNAVAILABLE = (
    sa_exc.DatabaseError,  # bare: SQLite's "file is not a database"; subclasses sorted below
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id_of(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem(
            exc.status, exc.reason if exc.text is None else _http_detail(exc), headers=headers
        )
    except Unauthorized as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="marketsvc"'}
        return problem(exc.status, exc.detail, title=exc.title, headers=headers)
    except DomainError as exc:
        return problem(exc.status, exc.detail, title=exc.title, errors=exc.errors)
    except ValidationError as exc:
        errors = flatten_errors(exc.messages)
        return problem(422, "the request is not valid", errors=errors)
    except asyncio.CancelledError:
        raise
    except DB_UNAVAILABLE as exc:
        if request.transport is None:  # the client left (mid-upload, say): not the database
            log.info("client went away: %s", exc, extra={"request_id": request[REQUEST_ID]})
            return web.Response(status=499, reason="Client Closed Request")
        if isinstance(exc, sa_exc.DBAPIError) and not _is_unavailable(exc):
            return _server_error(request, exc)
        log.warning(
            "database unavailable: %s: %s",
            type(exc).__name__,
            exc,
            extra={"request_id": request[REQUEST_ID]},
        )
        return problem(
            503,
            "the database is unavailable; try again shortly",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    except Exception as exc:  # the last line of defence: log it, never leak it
        return _server_error(request, exc)


def _http_detail(exc: web.HTTPException) -> str:
    text = exc.text or exc.reason
    return text.removeprefix(f"{exc.status}: ")


def _is_unavailable(exc: sa_exc.DBAPIError) -> bool:
    if _schema_missing(exc):
        return True  # an unmigrated database cannot serve yet; /readyz says the same
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError):
        return False  # the statement was wrong, not the database
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    message = str(exc.orig).lower()
    return any(
        hint in message
        for hint in (
            "connect",
            "unable to open",
            "readonly",
            "disk i/o",
            "not a database",
            "terminat",
            "shutting down",
            "closed",
            "timeout",
            "locked",
        )
    )


def _schema_missing(exc: sa_exc.DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "no such table" in message or (
        getattr(exc.orig, "sqlstate", None) == "42P01"  # PostgreSQL undefined_table
        or ("relation" in message and "does not exist" in message)
    )


def _server_error(request: web.Request, exc: BaseException) -> web.Response:
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.path,
        exc_info=exc,
        extra={"request_id": request[REQUEST_ID]},
    )
    return problem(500, f"internal error; quote request id {request[REQUEST_ID]}")
