"""Full-text matching and ranking of items, per database, over the indexes of migration 0003.

PostgreSQL: ``items.search_vector @@ websearch_to_tsquery(...)`` (the GIN index), ranked by
``ts_rank`` (name weighted A, description B). SQLite: ``items_fts MATCH ...`` (the FTS5 table),
ranked by whether the query matches the name alone (1) or needs the description (0).

Either rank depends on the item and the query only. FTS5's ``bm25`` does not: it weighs terms by
how many items hold them and lengths by the catalogue's average, so every insert or delete
shifts every item's score, and a keyset cursor over it repeats and skips items between pages
(``tests/test_items_cursors.py`` fails with it). Ties, within a rank, go by id.

Either way the query text is rendered from the parsed :class:`SearchText`, never passed
through, so it cannot be a syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    String,
    bindparam,
    case,
    column,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from marketsvc.schemas.search_text import Clause, Phrase, SearchText
from marketsvc.store.models import Item

SEARCH_VECTOR = literal_column("items.search_vector", TSVECTOR)
ITEMS_FTS = table("items_fts", column("rowid"), column("items_fts"))


@dataclass(frozen=True)
class Match:
    """``select(Item, score)`` of the matching items; ``score``: higher is better."""

    stmt: Select[Item, float]
    score: ColumnElement[Any]


def match(dialect: str) -> Match:
    """The matching items, with the query text as parameters (see :func:`parameters`)."""
    if dialect == "postgresql":
        query = func.websearch_to_tsquery(
            literal_column("'english'::regconfig"),
            func.marketsvc_unaccent(bindparam("q_websearch", type_=String)),
        )
        score: ColumnElement[Any] = func.ts_rank(SEARCH_VECTOR, query, type_=Float)
        stmt = select(Item, score.label("score")).where(SEARCH_VECTOR.op("@@")(query))
        return Match(stmt, score)
    in_name = select(ITEMS_FTS.c.rowid).where(
        ITEMS_FTS.c.items_fts.match(bindparam("q_fts5_name", type_=String))
    )
    score = case((Item.id.in_(in_name), 1), else_=0)
    hits = select(ITEMS_FTS.c.rowid).where(
        ITEMS_FTS.c.items_fts.match(bindparam("q_fts5", type_=String))
    )
    return Match(select(Item, score.label("score")).where(Item.id.in_(hits)), score)


def parameters(dialect: str, text: SearchText) -> dict[str, str]:
    if dialect == "postgresql":
        return {"q_websearch": websearch(text)}
    expression = fts5(text)
    return {"q_fts5": expression, "q_fts5_name": f"name : ({expression})"}


def websearch(text: SearchText) -> str:
    """The parsed query back in ``websearch_to_tsquery`` syntax, with nothing left to misread."""
    return " or ".join(
        " ".join([*map(_web_phrase, c.include), *("-" + _web_phrase(p) for p in c.exclude)])
        for c in text.clauses
    )


def fts5(text: SearchText) -> str:
    """The parsed query as an FTS5 expression: every phrase quoted, every operator placed."""
    return " OR ".join(_fts5_clause(c) for c in text.clauses)


def _fts5_clause(clause: Clause) -> str:
    found = " AND ".join(map(_fts5_phrase, clause.include))
    if not clause.exclude:
        return f"({found})"
    return f"(({found}) NOT ({' OR '.join(map(_fts5_phrase, clause.exclude))}))"


def _web_phrase(phrase: Phrase) -> str:
    return phrase[0] if len(phrase) == 1 else '"' + " ".join(phrase) + '"'


def _fts5_phrase(phrase: Phrase) -> str:
    return '"' + " ".join(phrase) + '"'  # words are letters and digits: nothing to escape
