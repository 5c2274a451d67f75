"""One place that turns every failure into problem+json and tags every response."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from marshmallow import ValidationError

from marketsvc.errors import DomainError, Unauthorized
from marketsvc.store.outages import Outage, classify, driver_error
from marketsvc.web.keys import REQUEST_ID
from marketsvc.web.middlewares.request_id import request_id_of
from marketsvc.web.problems import flatten_errors, problem
from marketsvc.web.routing import Handler

log = logging.getLogger("marketsvc.errors")

RETRY_AFTER_SECONDS = "5"
OUTAGE_DETAIL = {
    Outage.UNAVAILABLE: "the database is unavailable; try again shortly",
    Outage.TIMEOUT: "the database did not answer in time; try again shortly",
    Outage.NOT_MIGRATED: "the database schema is not ready; try again shortly",
}


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
    except DomainError as exc:
        return domain_problem(exc)
    except ValidationError as exc:
        errors = flatten_errors(exc.messages, "body")
        return problem(422, "the request is not valid", errors=errors)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        outage = classify(exc)
        if outage is None:  # the last line of defence: log it, never leak it
            return _server_error(request, exc)
        if request.transport is None:  # the client left (mid-upload, say): not the database
            log.info("client went away: %s", exc, extra={"request_id": request[REQUEST_ID]})
            return web.Response(status=499, reason="Client Closed Request")
        return outage_problem(request, outage, exc)


def domain_problem(exc: DomainError) -> web.Response:
    """What a domain error says to the client (also what an Idempotency-Key replays)."""
    headers = (
        {"WWW-Authenticate": 'Bearer realm="marketsvc"'} if isinstance(exc, Unauthorized) else None
    )
    return problem(exc.status, exc.detail, errors=exc.errors, headers=headers)


def _http_detail(exc: web.HTTPException) -> str:
    text = exc.text or exc.reason
    return text.removeprefix(f"{exc.status}: ")


def outage_problem(request: web.Request, outage: Outage, exc: BaseException) -> web.Response:
    """503 with Retry-After for every outage: the client may retry (with its Idempotency-Key)."""
    log.warning(
        "database %s: %s: %s",
        outage.value,
        type(driver_error(exc)).__name__,
        exc,
        extra={"request_id": request[REQUEST_ID]},
    )
    return problem(503, OUTAGE_DETAIL[outage], headers={"Retry-After": RETRY_AFTER_SECONDS})


def _server_error(request: web.Request, exc: BaseException) -> web.Response:
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.path,
        exc_info=exc,
        extra={"request_id": request[REQUEST_ID]},
    )
    return problem(500, f"internal error; quote request id {request[REQUEST_ID]}")
