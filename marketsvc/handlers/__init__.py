"""HTTP handlers: parse and validate, call accessors, dump. Nothing else."""

from marketsvc.handlers import (
    customers,
    docs,
    events,
    items,
    metrics,
    ops,
    orders,
    payments,
    pets,
    users,
)

ROUTE_TABLES = (
    ops.routes,
    metrics.routes,
    items.routes,
    customers.routes,
    orders.routes,
    events.routes,
    users.routes,
    pets.routes,
    docs.routes,
    payments.routes,
)
