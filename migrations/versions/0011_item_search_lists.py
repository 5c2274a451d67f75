"""item search: PostgreSQL's lists of each name's words and of each item's word pairs, by id

A search lists the items whose name holds the words first, then the others found, each tier in
id order (``db_accessor/fulltext.py``). The GIN indexes answer only with a bitmap of every
match: a page of two words each in 4-6 % of 100k names took PostgreSQL about 1 ms, and a phrase
found in no item 5 ms (each item holding both words read again to test their positions). Two
tables keyed by a word or a pair and the item's id give each word's, or each pair's, items in id
order from the primary key, so a page is a merge that stops with it:

- ``item_name_terms`` (term, item_id): every lexeme of the item's ``name_vector``;
- ``item_bigrams`` (bigram, item_id): every two lexemes at neighbouring positions of its
  ``search_vector`` ("oak kettl"), which is what the phrase operator ``<->`` tests.

Triggers keep them in step with ``items``: statement triggers with transition tables for inserts
(the seed's COPY included; rows written in key order, so that a bulk load reads well before any
VACUUM) and deletes, a row trigger for a changed name or description, and a TRUNCATE; an index
on each table's ``item_id`` finds an item's rows. The lists
only narrow the candidates: a search still tests each item's vectors. SQLite needs nothing: FTS5
already yields its matches in rowid order.

Revision ID: 0011_item_search_lists
Revises: 0010_webhook_pending_indexes
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_item_search_lists"
down_revision: str | Sequence[str] | None = "0010_webhook_pending_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGRAMS = """
    CREATE FUNCTION marketsvc_bigrams(tsvector) RETURNS SETOF text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        WITH at AS (
            SELECT word.lexeme, pos
            FROM unnest($1) AS word, unnest(word.positions) AS pos
        )
        SELECT DISTINCT one.lexeme || ' ' || next.lexeme
        FROM at AS one JOIN at AS next ON next.pos = one.pos + 1
    $$
"""
# the rows of the items in ``{rows}``, in key order
NAME_TERMS_OF = """
    INSERT INTO item_name_terms (term, item_id)
    SELECT term, {rows}.id FROM {rows}, unnest(tsvector_to_array({rows}.name_vector)) AS term
    ORDER BY 1, 2
"""
BIGRAMS_OF = """
    INSERT INTO item_bigrams (bigram, item_id)
    SELECT bigram, {rows}.id FROM {rows}, marketsvc_bigrams({rows}.search_vector) AS bigram
    ORDER BY 1, 2
"""

POSTGRES_UP = [
    BIGRAMS,
    """
    CREATE TABLE item_name_terms (
        term text NOT NULL,
        item_id bigint NOT NULL,
        CONSTRAINT pk_item_name_terms PRIMARY KEY (term, item_id)
    )
    """,
    """
    CREATE TABLE item_bigrams (
        bigram text NOT NULL,
        item_id bigint NOT NULL,
        CONSTRAINT pk_item_bigrams PRIMARY KEY (bigram, item_id)
    )
    """,
    NAME_TERMS_OF.format(rows="items"),
    BIGRAMS_OF.format(rows="items"),
    # an item's rows, for its rename or delete (the primary keys lead with the word or pair: a
    # statement trigger joining the deleted items to them scanned a whole key per item, 7 s to
    # delete 5,000 items)
    "CREATE INDEX ix_item_name_terms_item_id ON item_name_terms (item_id)",
    "CREATE INDEX ix_item_bigrams_item_id ON item_bigrams (item_id)",
    f"""
    CREATE FUNCTION marketsvc_item_lists_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {NAME_TERMS_OF.format(rows="added")};
        {BIGRAMS_OF.format(rows="added")};
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION marketsvc_item_lists_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM item_name_terms WHERE item_id IN (SELECT id FROM removed);
        DELETE FROM item_bigrams WHERE item_id IN (SELECT id FROM removed);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION marketsvc_item_lists_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.name_vector IS DISTINCT FROM OLD.name_vector THEN
            DELETE FROM item_name_terms WHERE item_id = OLD.id;
            INSERT INTO item_name_terms (term, item_id)
            SELECT term, NEW.id FROM unnest(tsvector_to_array(NEW.name_vector)) AS term;
        END IF;
        IF NEW.search_vector IS DISTINCT FROM OLD.search_vector THEN
            DELETE FROM item_bigrams WHERE item_id = OLD.id;
            INSERT INTO item_bigrams (bigram, item_id)
            SELECT bigram, NEW.id FROM marketsvc_bigrams(NEW.search_vector) AS bigram;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION marketsvc_item_lists_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE item_name_terms, item_bigrams;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER item_lists_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION marketsvc_item_lists_insert()
    """,
    """
    CREATE TRIGGER item_lists_delete AFTER DELETE ON items
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION marketsvc_item_lists_delete()
    """,
    # a row trigger: a statement trigger with transition tables cannot name columns, and would
    # run for every stock update of every placement
    """
    CREATE TRIGGER item_lists_update AFTER UPDATE OF name, description ON items
    FOR EACH ROW EXECUTE FUNCTION marketsvc_item_lists_update()
    """,
    """
    CREATE TRIGGER item_lists_truncate AFTER TRUNCATE ON items
    FOR EACH STATEMENT EXECUTE FUNCTION marketsvc_item_lists_truncate()
    """,
    "ANALYZE item_name_terms",
    "ANALYZE item_bigrams",
]
EVENTS = ("insert", "delete", "update", "truncate")
POSTGRES_DOWN = [
    *(f"DROP TRIGGER item_lists_{event} ON items" for event in EVENTS),
    *(f"DROP FUNCTION marketsvc_item_lists_{event}()" for event in EVENTS),
    "DROP TABLE item_bigrams",
    "DROP TABLE item_name_terms",
    "DROP FUNCTION marketsvc_bigrams(tsvector)",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(sa.text(statement))
