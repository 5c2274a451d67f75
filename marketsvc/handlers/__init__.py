"""HTTP handlers: parse and validate, call accessors, dump. Nothing else."""

from marketsvc.handlers import (
    balances,
    customers,
    docs,
    events,
    items,
    metrics,
    ops,
    orders,
    payments,
    pets,
    seller_orders,
    sellers,
    users,
    webhooks,
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
    webhooks.routes,
    payments.routes,
    sellers.routes,
    seller_orders.routes,
    balances.routes,
)
