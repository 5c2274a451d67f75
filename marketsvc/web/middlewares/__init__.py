"""The middlewares every request passes through, outermost first.

- ``request_log``: one log line per request, whatever happened inside;
- ``metrics``: counts and latency per route and status;
- ``errors``: every failure becomes problem+json (the one place that maps exceptions);
- ``access``: the bearer token against the route's declared access;
- ``idempotency``: a POST, PATCH or DELETE with an ``Idempotency-Key`` runs once, then replays.
"""

from marketsvc.web.middlewares.access import access_middleware
from marketsvc.web.middlewares.errors import error_middleware
from marketsvc.web.middlewares.idempotency import idempotency_middleware
from marketsvc.web.middlewares.metrics import metrics_middleware
from marketsvc.web.middlewares.request_log import request_log_middleware

MIDDLEWARES = (
    request_log_middleware,
    metrics_middleware,
    error_middleware,
    access_middleware,
    idempotency_middleware,
)
