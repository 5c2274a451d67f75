"""item search: PostgreSQL's name lists also hold every two words of a name

``item_name_terms`` (migration 0011) lists each lexeme of an item's name, so a search of two
words merged two lists in id order until a page of names held both: for the benchmark's
material-and-good pairs about 1,100 index tuples read for 20 items (PostgreSQL: some 500 us a
page under load, against 300 for a phrase, which reads one list). The table now also lists every
two lexemes of a name (``"kettl oak"``: the two in the name vector's order), so two words read
one list, exactly their items; three or four words merge two lists.

Separate triggers add the pairs; 0011's triggers still delete an item's rows (a delete, a rename,
a TRUNCATE), and as triggers of one event fire in the order of their names, ``item_lists_update``
clears a renamed item's rows before ``item_name_pairs_update`` writes its new pairs.

Revision ID: 0012_item_name_pairs
Revises: 0011_item_search_lists
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_item_name_pairs"
down_revision: str | Sequence[str] | None = "0011_item_search_lists"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# every two lexemes of a vector, the first as the vector orders them (byte order), then a space
# (no lexeme of the english parser holds one)
LEXEME_PAIRS = """
    CREATE FUNCTION marketsvc_lexeme_pairs(tsvector) RETURNS SETOF text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT one.lexeme || ' ' || other.lexeme
        FROM unnest(tsvector_to_array($1)) WITH ORDINALITY AS one (lexeme, n)
        JOIN unnest(tsvector_to_array($1)) WITH ORDINALITY AS other (lexeme, n)
            ON other.n > one.n
    $$
"""
PAIRS_OF = """
    INSERT INTO item_name_terms (term, item_id)
    SELECT pair, {rows}.id FROM {rows}, marketsvc_lexeme_pairs({rows}.name_vector) AS pair
    ORDER BY 1, 2
"""

POSTGRES_UP = [
    LEXEME_PAIRS,
    PAIRS_OF.format(rows="items"),
    f"""
    CREATE FUNCTION marketsvc_item_name_pairs_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {PAIRS_OF.format(rows="added")};
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION marketsvc_item_name_pairs_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.name_vector IS DISTINCT FROM OLD.name_vector THEN
            INSERT INTO item_name_terms (term, item_id)
            SELECT pair, NEW.id FROM marketsvc_lexeme_pairs(NEW.name_vector) AS pair;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER item_name_pairs_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION marketsvc_item_name_pairs_insert()
    """,
    """
    CREATE TRIGGER item_name_pairs_update AFTER UPDATE OF name ON items
    FOR EACH ROW EXECUTE FUNCTION marketsvc_item_name_pairs_update()
    """,
    "ANALYZE item_name_terms",
]
POSTGRES_DOWN = [
    "DROP TRIGGER item_name_pairs_update ON items",
    "DROP TRIGGER item_name_pairs_insert ON items",
    "DROP FUNCTION marketsvc_item_name_pairs_update()",
    "DROP FUNCTION marketsvc_item_name_pairs_insert()",
    "DELETE FROM item_name_terms WHERE term LIKE '% %'",
    "DROP FUNCTION marketsvc_lexeme_pairs(tsvector)",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(sa.text(statement))
