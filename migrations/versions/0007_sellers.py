"""sellers: who sells each item; every existing item goes to the default seller

A ``sellers`` table (name, status ``active``/``suspended``, commission in basis points) and
``items.seller_id`` (NOT NULL, a foreign key, indexed). The data migration creates the default
seller (id 1, "Marketplace", 0 bps) and gives it every item there is.

SQLite cannot add a NOT NULL foreign-key column in place: the items table is rebuilt (batch
mode). Dropping the old table drops the FTS5 triggers of 0003 with it, so they are dropped
first and created again afterwards; the FTS5 index itself is keyed by item id, which the copy
keeps, and is rebuilt anyway. PostgreSQL adds the column in place (the generated search column
and its GIN index are untouched).

Revision ID: 0007_sellers
Revises: 0003_item_search
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_sellers"
down_revision: str | Sequence[str] | None = "0003_item_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DEFAULT_SELLER = (
    "INSERT INTO sellers (id, name, status, commission_bps, created_at)"
    " VALUES (1, 'Marketplace', 'active', 0, CURRENT_TIMESTAMP)"
)
POSTGRES_SEQUENCE = (
    "SELECT setval(pg_get_serial_sequence('sellers', 'id'), "
    "COALESCE((SELECT MAX(id) FROM sellers), 0) + 1, false)"
)

# The FTS5 triggers of 0003, verbatim: the SQLite rebuild of ``items`` drops them.
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_fts(rowid, name, description)
        VALUES (new.id, new.name, new.description);
    END
    """,
    """
    CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, name, description)
        VALUES ('delete', old.id, old.name, old.description);
    END
    """,
    """
    CREATE TRIGGER items_fts_update AFTER UPDATE OF name, description ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, name, description)
        VALUES ('delete', old.id, old.name, old.description);
        INSERT INTO items_fts(rowid, name, description)
        VALUES (new.id, new.name, new.description);
    END
    """,
]
SQLITE_DROP_TRIGGERS = [
    "DROP TRIGGER items_fts_update",
    "DROP TRIGGER items_fts_delete",
    "DROP TRIGGER items_fts_insert",
]
SQLITE_REBUILD_FTS = "INSERT INTO items_fts(items_fts) VALUES ('rebuild')"


def _items_table(with_seller: bool) -> sa.Table:
    """``items`` as 0003 left it (plus ``seller_id``): what SQLite's rebuild copies, with its
    CHECK constraints and indexes, which reflection alone would not carry over."""
    columns: list[sa.Column[object] | sa.Constraint | sa.Index] = [
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.CheckConstraint("price_cents >= 0", name="ck_items_price_non_negative"),
        sa.CheckConstraint("stock >= 0", name="ck_items_stock_non_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_items"),
        sa.Index("ix_items_price_cents_id", "price_cents", "id"),
        sa.Index("ix_items_name_id", "name", "id"),
    ]
    if with_seller:
        columns += [
            sa.Column("seller_id", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(
                ["seller_id"], ["sellers.id"], name="fk_items_seller_id_sellers"
            ),
            sa.Index("ix_items_seller_id", "seller_id"),
        ]
    return sa.Table("items", sa.MetaData(), *columns)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "sellers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("commission_bps", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'suspended')", name=op.f("ck_sellers_status_known")
        ),
        sa.CheckConstraint(
            "commission_bps >= 0 AND commission_bps <= 10000",
            name=op.f("ck_sellers_commission_bps_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sellers")),
    )
    op.execute(sa.text(DEFAULT_SELLER))
    if postgres:
        op.execute(sa.text(POSTGRES_SEQUENCE))
    # in place and nullable first (SQLite too: no rebuild yet), filled, then made NOT NULL
    op.add_column("items", sa.Column("seller_id", sa.BigInteger(), nullable=True))
    op.execute(sa.text("UPDATE items SET seller_id = 1"))
    if postgres:
        op.alter_column("items", "seller_id", nullable=False)
        op.create_foreign_key(
            "fk_items_seller_id_sellers", "items", "sellers", ["seller_id"], ["id"]
        )
        op.create_index("ix_items_seller_id", "items", ["seller_id"], unique=False)
        return
    for statement in SQLITE_DROP_TRIGGERS:
        op.execute(sa.text(statement))
    # one rebuild into the table as copy_from describes it: NOT NULL, the key and the index
    with op.batch_alter_table("items", copy_from=_items_table(with_seller=True), recreate="always"):
        pass
    for statement in [*SQLITE_TRIGGERS, SQLITE_REBUILD_FTS]:
        op.execute(sa.text(statement))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.drop_index("ix_items_seller_id", table_name="items")
        op.drop_constraint("fk_items_seller_id_sellers", "items", type_="foreignkey")
        op.drop_column("items", "seller_id")
    else:
        for statement in SQLITE_DROP_TRIGGERS:
            op.execute(sa.text(statement))
        with op.batch_alter_table(
            "items", copy_from=_items_table(with_seller=True), recreate="always"
        ) as batch_op:
            batch_op.drop_index("ix_items_seller_id")
            batch_op.drop_constraint("fk_items_seller_id_sellers", type_="foreignkey")
            batch_op.drop_column("seller_id")
        for statement in [*SQLITE_TRIGGERS, SQLITE_REBUILD_FTS]:
            op.execute(sa.text(statement))
    op.drop_table("sellers")
