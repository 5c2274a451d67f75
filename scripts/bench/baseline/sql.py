"""The hand-written SQL; ``$n`` placeholders, turned into ``?`` for SQLite."""

CUSTOMER_COLUMNS = (
    "SELECT c.id, c.name, c.email, a.street, a.flat_number, a.city, a.post_code, a.country "
    "FROM customers c JOIN addresses a ON a.customer_id = c.id"
)
CUSTOMER = CUSTOMER_COLUMNS + " WHERE c.id = $1"
CUSTOMERS = CUSTOMER_COLUMNS + " ORDER BY c.id"
ORDER = (  # the order, its lines, and each line's seller order (wire.read_parts)
    "SELECT o.id, o.customer_id, o.status, o.placed_at, "
    "l.item_id, l.name, l.unit_price_cents, l.quantity, "
    "l.seller_order_id, s.seller_id, s.status, s.carrier, s.tracking_number "
    "FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id "
    "LEFT JOIN seller_orders s ON s.id = l.seller_order_id WHERE o.id = $1 ORDER BY l.item_id"
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
    "UPDATE items SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING name, "
    "price_cents, seller_id, "
    "(SELECT commission_bps FROM sellers WHERE sellers.id = items.seller_id)"
)
# one seller order per seller of the lines
INSERT_PARTS_PG = (
    "INSERT INTO seller_orders (order_id, seller_id, status, refund_cents, placed_at, updated_at) "
    "SELECT $1, s, 'pending', 0, $2, $2 FROM unnest($3::bigint[]) AS s RETURNING id, seller_id"
)
INSERT_PART_SQLITE = (
    "INSERT INTO seller_orders (order_id, seller_id, status, refund_cents, placed_at, updated_at) "
    "VALUES ($1, $2, 'pending', 0, $3, $3) RETURNING id"
)
ITEM_EXISTS = "SELECT 1 FROM items WHERE id = $1"
INSERT_LINES_PG = (
    "INSERT INTO order_lines (order_id, item_id, name, unit_price_cents, quantity, "
    "seller_order_id, commission_bps, commission_cents) SELECT $1, * FROM unnest($2::bigint[], "
    "$3::text[], $4::bigint[], $5::int[], $6::bigint[], $7::int[], $8::bigint[])"
)
INSERT_LINE_SQLITE = (
    "INSERT INTO order_lines (order_id, item_id, name, unit_price_cents, quantity, "
    "seller_order_id, commission_bps, commission_cents) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)


def qmarks(sql: str) -> str:
    """``$1``..``$9`` as SQLite's numbered ``?1``..``?9`` (the same parameter may repeat)."""
    for n in range(9, 0, -1):
        sql = sql.replace(f"${n}", f"?{n}")
    return sql
