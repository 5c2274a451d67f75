"""item search by name: PostgreSQL's name-only ``tsvector`` and its GIN index

A search by relevance lists the items whose name holds the words first, in id order
(``db_accessor/fulltext.py``). On ``search_vector`` the name is weight ``A``, but the planner's
statistics ignore weights: it would take a word found in descriptions only for a common name
word and walk every item in id order looking for one. A column of its own gives the name its
own statistics and a small index. SQLite needs nothing: FTS5 filters by column itself.

Revision ID: 0009_item_search_name
Revises: 0008_seller_orders
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_item_search_name"
down_revision: str | Sequence[str] | None = "0008_seller_orders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_UP = [
    """
    ALTER TABLE items ADD COLUMN name_vector tsvector GENERATED ALWAYS AS (
        to_tsvector('english'::regconfig, marketsvc_unaccent(name))
    ) STORED
    """,
    "CREATE INDEX ix_items_name_vector ON items USING gin (name_vector) WITH (fastupdate = off)",
    "ANALYZE items",  # the planner needs the new column's statistics before the first search
]
POSTGRES_DOWN = [
    "DROP INDEX ix_items_name_vector",
    "ALTER TABLE items DROP COLUMN name_vector",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(sa.text(statement))
