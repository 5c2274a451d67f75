"""seller orders: each order splits into one part per seller; lines keep their commission

A ``seller_orders`` table (order, seller, status, carrier, tracking number, refund owed, the
order's placement time), unique per (order, seller). ``order_lines`` gains ``seller_order_id``
(NOT NULL), ``commission_bps`` (the seller's rate at placement) and ``commission_cents`` (what
that rate comes to on the line: price x quantity x bps / 10000, rounded half-even to the cent).
``orders.status`` may also be ``partially_shipped`` and ``refused`` (derived from the parts),
and is 24 characters wide (was 16).

Data migration: one seller order per (order, seller of its lines' items), its status from
the order's: pending -> pending, paid -> awaiting_acceptance, shipped, delivered and cancelled
unchanged; each line gets its seller's current rate. Downgrade: orders partially_shipped go
back to paid and refused ones to cancelled (the statuses 0007 knows), then the parts go.

SQLite rebuilds ``orders`` (its CHECK) and ``order_lines`` (the NOT NULL key) in batch mode
from the tables as written here (``copy_from``: reflection would lose the CHECKs).

Revision ID: 0008_seller_orders
Revises: 0007_sellers
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_seller_orders"
down_revision: str | Sequence[str] | None = "0007_sellers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_STATUSES = "'pending', 'paid', 'shipped', 'delivered', 'cancelled'"
NEW_STATUSES = OLD_STATUSES + ", 'partially_shipped', 'refused'"
PART_STATUSES = (
    "'pending', 'awaiting_acceptance', 'accepted', 'shipped', 'delivered', 'refused', 'cancelled'"
)

FILL_SELLER_ORDERS = """
INSERT INTO seller_orders (order_id, seller_id, status, refund_cents, placed_at, updated_at)
SELECT o.id, i.seller_id,
       CASE o.status WHEN 'paid' THEN 'awaiting_acceptance' ELSE o.status END,
       0, o.placed_at, o.placed_at
FROM orders o
JOIN order_lines l ON l.order_id = o.id
JOIN items i ON i.id = l.item_id
GROUP BY o.id, i.seller_id, o.status, o.placed_at
ORDER BY o.id, i.seller_id
"""
FILL_LINES = """
UPDATE order_lines SET
    seller_order_id = (
        SELECT s.id FROM seller_orders s JOIN items i ON i.seller_id = s.seller_id
        WHERE s.order_id = order_lines.order_id AND i.id = order_lines.item_id
    ),
    commission_bps = (
        SELECT r.commission_bps FROM sellers r JOIN items i ON i.seller_id = r.id
        WHERE i.id = order_lines.item_id
    )
"""
# half-even: the quotient, plus one if the remainder is over half, or exactly half on an odd one
FILL_COMMISSION = """
UPDATE order_lines SET commission_cents =
    (unit_price_cents * quantity * commission_bps) / 10000
    + CASE
        WHEN (unit_price_cents * quantity * commission_bps) % 10000 > 5000 THEN 1
        WHEN (unit_price_cents * quantity * commission_bps) % 10000 = 5000
             AND ((unit_price_cents * quantity * commission_bps) / 10000) % 2 = 1 THEN 1
        ELSE 0
      END
"""


def _orders_table(statuses: str, status_length: int) -> sa.Table:
    return sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=status_length), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_orders_status_known"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_orders_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.Index("ix_orders_customer_id_id", "customer_id", "id"),
        sa.Index("ix_orders_placed_at", "placed_at"),
    )


def _order_lines_table(with_parts: bool) -> sa.Table:
    columns: list[sa.Column[object] | sa.Constraint | sa.Index] = [
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_order_lines_quantity_positive"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name="fk_order_lines_item_id_items"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_lines"),
        sa.UniqueConstraint("order_id", "item_id", name="uq_order_lines_order_id_item_id"),
        sa.Index("ix_order_lines_item_id", "item_id"),
    ]
    if with_parts:
        columns += [
            sa.Column("seller_order_id", sa.BigInteger(), nullable=False),
            sa.Column("commission_bps", sa.Integer(), nullable=False),
            sa.Column("commission_cents", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(
                ["seller_order_id"],
                ["seller_orders.id"],
                name="fk_order_lines_seller_order_id_seller_orders",
                ondelete="CASCADE",
            ),
            sa.Index("ix_order_lines_seller_order_id", "seller_order_id"),
        ]
    return sa.Table("order_lines", sa.MetaData(), *columns)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "seller_orders",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("refund_cents", sa.BigInteger(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN ({PART_STATUSES})", name="ck_seller_orders_status_known"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_seller_orders_order_id_orders", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name="fk_seller_orders_seller_id_sellers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_seller_orders"),
        sa.UniqueConstraint("order_id", "seller_id", name="uq_seller_orders_order_id_seller_id"),
    )
    op.create_index("ix_seller_orders_seller_id_id", "seller_orders", ["seller_id", "id"])
    for column in (
        sa.Column("seller_order_id", sa.BigInteger(), nullable=True),
        sa.Column("commission_bps", sa.Integer(), nullable=True),
        sa.Column("commission_cents", sa.BigInteger(), nullable=True),
    ):
        op.add_column("order_lines", column)  # in place and nullable first, filled, then NOT NULL
    for statement in (FILL_SELLER_ORDERS, FILL_LINES, FILL_COMMISSION):
        op.execute(sa.text(statement))
    if postgres:
        for name in ("seller_order_id", "commission_bps", "commission_cents"):
            op.alter_column("order_lines", name, nullable=False)
        op.create_foreign_key(
            "fk_order_lines_seller_order_id_seller_orders",
            "order_lines",
            "seller_orders",
            ["seller_order_id"],
            ["id"],
            ondelete="CASCADE",
        )
        op.create_index("ix_order_lines_seller_order_id", "order_lines", ["seller_order_id"])
        op.drop_constraint(op.f("ck_orders_status_known"), "orders", type_="check")
        op.alter_column("orders", "status", type_=sa.String(length=24))
        op.create_check_constraint(
            op.f("ck_orders_status_known"), "orders", f"status IN ({NEW_STATUSES})"
        )
        return
    with op.batch_alter_table(
        "order_lines", copy_from=_order_lines_table(with_parts=True), recreate="always"
    ):
        pass
    with op.batch_alter_table(
        "orders", copy_from=_orders_table(NEW_STATUSES, 24), recreate="always"
    ):
        pass


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(
        sa.text(
            "UPDATE orders SET status = CASE status WHEN 'partially_shipped' THEN 'paid'"
            " ELSE 'cancelled' END WHERE status IN ('partially_shipped', 'refused')"
        )
    )
    if postgres:
        op.drop_constraint(op.f("ck_orders_status_known"), "orders", type_="check")
        op.alter_column("orders", "status", type_=sa.String(length=16))
        op.create_check_constraint(
            op.f("ck_orders_status_known"), "orders", f"status IN ({OLD_STATUSES})"
        )
        op.drop_index("ix_order_lines_seller_order_id", table_name="order_lines")
        op.drop_constraint(
            "fk_order_lines_seller_order_id_seller_orders", "order_lines", type_="foreignkey"
        )
        for name in ("commission_cents", "commission_bps", "seller_order_id"):
            op.drop_column("order_lines", name)
    else:
        with op.batch_alter_table(
            "orders", copy_from=_orders_table(OLD_STATUSES, 16), recreate="always"
        ):
            pass
        with op.batch_alter_table(
            "order_lines", copy_from=_order_lines_table(with_parts=True), recreate="always"
        ) as batch_op:
            batch_op.drop_index("ix_order_lines_seller_order_id")
            batch_op.drop_constraint(
                "fk_order_lines_seller_order_id_seller_orders", type_="foreignkey"
            )
            for name in ("commission_cents", "commission_bps", "seller_order_id"):
                batch_op.drop_column(name)
    op.drop_index("ix_seller_orders_seller_id_id", table_name="seller_orders")
    op.drop_table("seller_orders")
