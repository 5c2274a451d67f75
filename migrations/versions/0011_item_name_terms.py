"""item search by name: PostgreSQL's (term, item) B-tree, read in id order

A search of several words lists the items whose name holds them all first, in id order
(``db_accessor/fulltext.py``). The GIN index of ``name_vector`` answers that only as a bitmap of
every match: a page of two words each in 4-6 % of 100k names took PostgreSQL about 1 ms, most of
it building that bitmap. ``item_name_terms`` holds one row per lexeme of each item's name, keyed
(term, item_id): each word's items come in id order from the primary key, and a merge join of
two or three of them stops with the page (about 0.3 ms on the same catalogue).

Triggers keep it in step with ``items.name_vector``: statement triggers with transition tables for
inserts (the seed's COPY included) and deletes, a row trigger for a renamed item, and a TRUNCATE.
It may hold rows of an item no longer there only between a statement and its trigger; a search
joins ``items`` and tests ``name_vector`` all the same. SQLite needs nothing: FTS5 already yields
its matches in rowid order.

Revision ID: 0011_item_name_terms
Revises: 0010_webhook_pending_indexes
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_item_name_terms"
down_revision: str | Sequence[str] | None = "0010_webhook_pending_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_UP = [
    """
    CREATE TABLE item_name_terms (
        term text NOT NULL,
        item_id bigint NOT NULL,
        CONSTRAINT pk_item_name_terms PRIMARY KEY (term, item_id)
    )
    """,
    """
    INSERT INTO item_name_terms (term, item_id)
    SELECT term, items.id FROM items, unnest(tsvector_to_array(items.name_vector)) AS term
    ORDER BY 1, 2
    """,
    """
    CREATE FUNCTION marketsvc_item_name_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO item_name_terms (term, item_id)
        SELECT term, added.id FROM added, unnest(tsvector_to_array(added.name_vector)) AS term
        ORDER BY 1, 2;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION marketsvc_item_name_terms_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM item_name_terms USING removed, unnest(tsvector_to_array(removed.name_vector))
            AS term
        WHERE item_name_terms.term = term.term AND item_name_terms.item_id = removed.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION marketsvc_item_name_terms_rename() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.name_vector IS DISTINCT FROM OLD.name_vector THEN
            DELETE FROM item_name_terms
            WHERE term = ANY (tsvector_to_array(OLD.name_vector)) AND item_id = OLD.id;
            INSERT INTO item_name_terms (term, item_id)
            SELECT term, NEW.id FROM unnest(tsvector_to_array(NEW.name_vector)) AS term;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION marketsvc_item_name_terms_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE item_name_terms;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER item_name_terms_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION marketsvc_item_name_terms_insert()
    """,
    """
    CREATE TRIGGER item_name_terms_delete AFTER DELETE ON items
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION marketsvc_item_name_terms_delete()
    """,
    # a row trigger: a statement trigger with transition tables cannot name columns, and would
    # run for every stock update of every placement
    """
    CREATE TRIGGER item_name_terms_rename AFTER UPDATE OF name ON items
    FOR EACH ROW EXECUTE FUNCTION marketsvc_item_name_terms_rename()
    """,
    """
    CREATE TRIGGER item_name_terms_truncate AFTER TRUNCATE ON items
    FOR EACH STATEMENT EXECUTE FUNCTION marketsvc_item_name_terms_truncate()
    """,
    "ANALYZE item_name_terms",
]
POSTGRES_DOWN = [
    *(
        f"DROP TRIGGER item_name_terms_{event} ON items"
        for event in ("insert", "delete", "rename", "truncate")
    ),
    *(
        f"DROP FUNCTION marketsvc_item_name_terms_{event}()"
        for event in ("insert", "delete", "rename", "truncate")
    ),
    "DROP TABLE item_name_terms",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(sa.text(statement))
