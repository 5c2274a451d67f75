"""item search: full-text indexes, and indexes for the price and name sorts

PostgreSQL: a generated, weighted ``tsvector`` column (name A, description B; english stemming,
accents removed) with a GIN index. ``unaccent`` is only STABLE, so a generated column cannot
call it: an IMMUTABLE wrapper pins the dictionary. SQLite: an FTS5 external-content table over
``items`` (porter stemming, diacritics removed), kept in step by triggers; a change of price or
stock does not touch it.

Revision ID: 0003_item_search
Revises: 0001
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_item_search"
down_revision: str | Sequence[str] | None = "0002_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public",
    """
    CREATE FUNCTION marketsvc_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
    """,
    """
    ALTER TABLE items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, marketsvc_unaccent(name)), 'A')
        || setweight(to_tsvector('english'::regconfig, marketsvc_unaccent(description)), 'B')
    ) STORED
    """,
    # fastupdate off: no pending list for searches to scan (catalogue writes are rare)
    "CREATE INDEX ix_items_search_vector ON items USING gin (search_vector)"
    " WITH (fastupdate = off)",
]
POSTGRES_DOWN = [
    "DROP INDEX ix_items_search_vector",
    "ALTER TABLE items DROP COLUMN search_vector",
    "DROP FUNCTION marketsvc_unaccent(text)",
    # the unaccent extension stays: other schemas may use it, and it holds no data
]
SQLITE_UP = [
    """
    CREATE VIRTUAL TABLE items_fts USING fts5(
        name, description, content='items', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
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
    "INSERT INTO items_fts(items_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER items_fts_update",
    "DROP TRIGGER items_fts_delete",
    "DROP TRIGGER items_fts_insert",
    "DROP TABLE items_fts",
]


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index("ix_items_price_cents_id", ["price_cents", "id"], unique=False)
        batch_op.create_index("ix_items_name_id", ["name", "id"], unique=False)
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_UP if postgres else SQLITE_UP:
        op.execute(sa.text(statement))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_DOWN if postgres else SQLITE_DOWN:
        op.execute(sa.text(statement))
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_name_id")
        batch_op.drop_index("ix_items_price_cents_id")
