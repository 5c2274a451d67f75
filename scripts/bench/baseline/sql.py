"""The hand-written SQL; ``$n`` placeholders, turned into ``?`` for SQLite."""

CUSTOMER_COLUMNS = (
    "SELECT c.id, c.name, c.email, a.street, a.flat_number, a.city, a.post_code, a.country "
    "FROM customers c JOIN addresses a ON a.customer_id = c.id"
)
CUSTOMER = CUSTOMER_COLUMNS + " WHERE c.id = $1"
CUSTOMERS = CUSTOMER_COLUMNS + " ORDER BY c.id"
ORDER = (
    "SELECT o.id, o.customer_id, o.status, o.placed_at, "
    "l.item_id, l.name, l.unit_price_cents, l.quantity "
    "FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id WHERE o.id = $1 ORDER BY l.item_id"
)
TOTALS_FROM = (
    "SELECT o.id, CAST(COALESCE(SUM(l.unit_price_cents * l.quantity), 0) AS BIGINT) "
    "FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id "
)
TOTAL = TOTALS_FROM + "WHERE o.id = $1 GROUP BY o.id"
TOTALS_PG = TOTALS_FROM + "WHERE o.id = ANY($1::bigint[]) GROUP BY o.id"
TOTALS_SQLITE = TOTALS_FROM + "WHERE o.id IN (SELECT value FROM json_each($1)) GROUP BY o.id"
INSERT_ORDER_PG = (
    "INSERT INTO orders (customer_id, status, placed_at) VALUES ($1, 'pending', now()) "
    "RETURNING id, placed_at"
)
INSERT_ORDER_SQLITE = (
    "INSERT INTO orders (customer_id, status, placed_at) VALUES ($1, 'pending', $2) RETURNING id"
)
TAKE_STOCK = (
    "UPDATE items SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING name, price_cents"
)
ITEM_EXISTS = "SELECT 1 FROM items WHERE id = $1"
INSERT_LINES_PG = (
    "INSERT INTO order_lines (order_id, item_id, name, unit_price_cents, quantity) "
    "SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::int[])"
)
INSERT_LINE_SQLITE = (
    "INSERT INTO order_lines (order_id, item_id, name, unit_price_cents, quantity) "
    "VALUES ($1, $2, $3, $4, $5)"
)


def qmarks(sql: str) -> str:
    """``$1``..``$9`` as SQLite's numbered ``?1``..``?9`` (the same parameter may repeat)."""
    for n in range(9, 0, -1):
        sql = sql.replace(f"${n}", f"?{n}")
    return sql
