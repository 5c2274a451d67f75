"""Full-text matching and ranking of items, per database, over the indexes of migrations 0003,
0009, 0011 and 0012.

PostgreSQL: ``items.search_vector @@ websearch_to_tsquery(...)`` (the GIN index); SQLite:
``items_fts MATCH ...`` (the FTS5 table). Both rank the same way, in two tiers: items whose name
alone holds the wanted words (every word or phrase of one alternative: ``items.name_vector``,
with its own GIN index and its words' lists in ``item_name_terms``, on PostgreSQL; the ``name``
column on SQLite; words to exclude are
excluded everywhere) come first (score 1), then those found through the description (score 0);
within a tier, by id.

The tiers are what makes a search fast: each is one match taken in id order, so a page of 20
stops after 20 (FTS5 yields its matches in rowid order; PostgreSQL walks the primary key for a
while, or merges the name's terms in id order, or reads the GIN index and sorts the few it
found: see :func:`tier`), where ranking by
``ts_rank`` or ``bm25`` first scores every match (thousands for a common word) and sorts them.
The tiers are also stable: an item's score depends on the item and the query only. ``bm25``
does not (it weighs terms by how many items hold them, so every insert or delete shifts every
score, and a keyset cursor over it repeats and skips items; ``tests/test_items_cursors.py``
fails with it).

Either way the query text is rendered from the parsed :class:`SearchText`, never passed
through, so it cannot be a syntax error.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Float,
    Select,
    String,
    and_,
    bindparam,
    case,
    column,
    func,
    literal,
    literal_column,
    not_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from marketsvc.schemas.search_text import STOP_WORDS, Clause, Phrase, SearchText
from marketsvc.store.models import Item

SEARCH_VECTOR = literal_column("items.search_vector", TSVECTOR)
NAME_VECTOR = literal_column("items.name_vector", TSVECTOR)  # migration 0009
ITEMS_FTS = table("items_fts", column("rowid"), column("items_fts"))
# migration 0011: one row per lexeme of each item's name (and, 0012, per two lexemes of it:
# "kettl oak"), and per two lexemes at neighbouring positions of its search vector, keyed (term or
# bigram, item_id): each list in id order
NAME_TERMS = table("item_name_terms", column("term", String), column("item_id", BigInteger))
BIGRAMS = table("item_bigrams", column("bigram", String), column("item_id", BigInteger))


def matches(dialect: str) -> ColumnElement[bool]:
    """The items the query finds, unranked (for the sorts other than relevance)."""
    if dialect == "postgresql":
        return SEARCH_VECTOR.op("@@", is_comparison=True)(_websearch_query())
    hits = select(ITEMS_FTS.c.rowid).where(
        ITEMS_FTS.c.items_fts.match(bindparam("q_fts5", type_=String))
    )
    return Item.id.in_(hits)


# the scores: the wanted words all in the name (of one alternative), or found otherwise
NAME_TIER, OTHER_TIER = 1, 0


# What a query is, for the plan: one word, several (or phrases, or alternatives), or with
# words to exclude (then a name holding the wanted words is not enough to be found).
WORD, WORDS, EXCLUDING = "word", "words", "words, excluding"
KINDS = (WORD, WORDS, EXCLUDING)


def kind(text: SearchText) -> str:
    if any(c.exclude for c in text.clauses):
        return EXCLUDING
    (first, *others) = text.clauses
    return WORD if not others and len(first.include) == 1 and len(first.include[0]) == 1 else WORDS


def tier(
    dialect: str,
    score: int,
    kind: str,
    columns: Sequence[Any],
    *,
    walk: bool = False,
    terms: int = 0,
    pair: bool = False,
    after: ColumnElement[Any] | None = None,
) -> tuple[Select[*tuple[Any, ...]], Any]:
    """``select(*columns, score)`` of one tier's items past the id ``after``, and its ids as the
    tier is ordered (walked in order, they let the database stop after a page).

    SQLite: FTS5 yields its matches in rowid order. PostgreSQL, a phrase (``pair``, see
    :func:`phrase_pair`): both tiers read the list of one of its word pairs in ``item_bigrams``
    (:func:`_by_pair`). The name tier of ``terms`` words (:func:`name_terms`): the lists of the
    words, two by two, in ``item_name_terms``, merged in id order (:func:`_by_name_terms`).
    Otherwise the ids as
    ``id + 0``, which no index provides, so the
    GIN index is read and its matches sorted (how a page of a common word is read without that
    cost is ``item_listing``'s walk, for which ``walk`` gives the match in a form no index
    answers: see :func:`_unindexed`). Left to itself the planner would walk the primary key
    whenever it guesses a page comes soon, and its guess for a word it has no statistics for (a
    rare word, a typo) is up to 0.5 %: for a word no name holds that walk is every item (about
    100 ms at 100k); and with a keyset it ANDed a bitmap of every id past it with the match
    (36 ms)."""
    label: ColumnElement[float] = literal(float(score), Float).label("score")
    if dialect == "postgresql":
        search: ColumnElement[Any] = SEARCH_VECTOR
        name: ColumnElement[Any] = NAME_VECTOR
        listed = pair or (score == NAME_TIER and terms > 0)
        if walk or listed:  # each row read in order is tested; no GIN index may answer
            search, name = _unindexed(search), _unindexed(name)
        where = _tier_test(score, kind, search, name)
        if pair:
            return _by_pair(columns, label, where, after)
        if score == NAME_TIER and terms:
            return _by_name_terms(columns, label, where, terms, after)
        ids: Any = Item.id + literal_column("0")
        stmt = select(*columns, label).where(where)
    else:
        parameter = "q_fts5_name" if score == NAME_TIER else "q_fts5_other"
        stmt = (
            select(*columns, label)
            .select_from(ITEMS_FTS.join(Item, Item.id == ITEMS_FTS.c.rowid))
            .where(ITEMS_FTS.c.items_fts.match(bindparam(parameter, type_=String)))
        )
        ids = ITEMS_FTS.c.rowid
    return (stmt if after is None else stmt.where(ids > after)), ids


def _tier_test(
    score: int, kind: str, search: ColumnElement[Any], name: ColumnElement[Any]
) -> ColumnElement[bool]:
    """PostgreSQL: whether an item is in the tier, from its vectors."""
    found = search.op("@@", is_comparison=True)(_websearch_query())
    in_name = name.op("@@", is_comparison=True)(_name_query())
    if score == OTHER_TIER:
        return and_(found, not_(in_name))
    # the wanted words in the name are found, unless some are to be excluded
    return and_(found, in_name) if kind == EXCLUDING else in_name


# PostgreSQL: the name tier reads the lists of at most this many of the wanted words, two to a
# list (each list adds a scan to the merge; the name's vector is tested for all the words all
# the same)
MAX_NAME_TERMS = 4


def name_terms(dialect: str, text: SearchText) -> int:
    """How many words the name tier of ``text`` reads lists of on PostgreSQL; 0: it reads the GIN
    index instead (SQLite, one word (``item_listing`` walks the ids), alternatives)."""
    if dialect != "postgresql" or len(text.clauses) != 1 or kind(text) == WORD:
        return 0
    return min(len(_name_words(text)), MAX_NAME_TERMS)


def _name_words(text: SearchText) -> list[str]:
    """The wanted words of the one alternative, once each, stop words left out."""
    (clause,) = text.clauses
    return list(dict.fromkeys(w for p in clause.include for w in p if w not in STOP_WORDS))


def _by_name_terms(
    columns: Sequence[Any],
    label: ColumnElement[float],
    where: ColumnElement[bool],
    terms: int,
    after: ColumnElement[Any] | None,
) -> tuple[Select[*tuple[Any, ...]], Any]:
    """The name tier as a merge of the lists of ``terms`` words, two to a list, from
    ``item_name_terms`` (each in id order from its primary key), joined to ``items`` by id and
    tested (``where``) against the item's vectors.

    The GIN index of ``name_vector`` gives a bitmap of every match, so a page of two words each
    in 4-6 % of the benchmark's 100k names cost PostgreSQL about 1 ms whatever its size; a merge
    of the two words' lists stops with the page, but reads some 1,100 index tuples for 20 items
    (about 500 us under load); their pair's list holds just the 20. The lists only narrow the
    candidates: the name's vector decides, so a phrase is a phrase, and words that make fewer
    lexemes or more cost a wider list, never a wrong page (:func:`_name_key`)."""
    lists = [NAME_TERMS.alias(f"name_terms_{n}") for n in range((terms + 1) // 2)]
    first = lists[0]
    joined = first.join(Item, Item.id == first.c.item_id)
    wanted = [first.c.term == _name_key(0)]
    for n, other in enumerate(lists[1:], start=1):
        joined = joined.join(other, other.c.item_id == first.c.item_id)
        wanted.append(other.c.term == _name_key(n))
    # every list from the keyset on: PostgreSQL does not carry a range across a join
    started = [] if after is None else [listed.c.item_id > after for listed in lists]
    stmt = select(*columns, label).select_from(joined).where(*wanted, where, *started)
    return stmt, first.c.item_id


ASCII_WORD = re.compile(r"[a-z0-9]+")


def phrase_pair(dialect: str, text: SearchText) -> tuple[str, str] | None:
    """Two neighbouring words of a phrase of the one alternative, whose pair list in
    ``item_bigrams`` PostgreSQL can read instead of its GIN index; None: there is none (or
    SQLite, whose FTS5 needs none).

    Only ASCII letters and digits and no stop word: each such word is then exactly one lexeme
    at the next position, as the phrase operator ``<->`` takes it (a stop word leaves a gap, and
    ``unaccent`` and the parser may split or drop other characters)."""
    if dialect != "postgresql" or len(text.clauses) != 1:
        return None
    for phrase in text.clauses[0].include:
        for pair in itertools.pairwise(phrase):
            if all(ASCII_WORD.fullmatch(w) and w not in STOP_WORDS for w in pair):
                return pair
    return None


def _by_pair(
    columns: Sequence[Any],
    label: ColumnElement[float],
    where: ColumnElement[bool],
    after: ColumnElement[Any] | None,
) -> tuple[Select[*tuple[Any, ...]], Any]:
    """A tier of a phrase from the list of one of its word pairs in ``item_bigrams`` (in id
    order from its primary key), joined to ``items`` by id and tested (``where``) against the
    item's vectors.

    The GIN index of ``search_vector`` finds the items holding both words, anywhere, and each
    is read again to test their positions: a phrase no item holds ("oak bottle": the seed's
    bottles are water bottles) cost PostgreSQL 5 ms for an empty page. The pair's list holds
    only the items where the two words stand side by side."""
    pairs = BIGRAMS.alias("pairs")
    wanted = (
        pairs.c.bigram
        == select(
            func.concat_ws(" ", _lexeme_of("q_pair_first"), _lexeme_of("q_pair_second"))
        ).scalar_subquery()
    )
    started = [] if after is None else [pairs.c.item_id > after]
    joined = pairs.join(Item, Item.id == pairs.c.item_id)
    stmt = select(*columns, label).select_from(joined).where(wanted, where, *started)
    return stmt, pairs.c.item_id


def _lexeme_of(parameter: str) -> ColumnElement[Any]:
    """The one lexeme of a word of :func:`phrase_pair`."""
    vector = func.to_tsvector(
        literal_column("'english'::regconfig"), bindparam(parameter, type_=String)
    )
    return func.array_to_string(func.tsvector_to_array(vector), " ")


def _name_key(n: int) -> ColumnElement[Any]:
    """The key of the ``n``-th list of the wanted words' lexemes (in the vector's order, as
    migration 0012 pairs them): lexemes ``2n+1`` and ``2n+2`` as a pair, or ``2n+1`` alone if
    it is the last, or the first again past them (two words that stem alike make one lexeme;
    no lexeme at all, an empty list, as the name's vector finds nothing then either). Computed
    once per statement (an InitPlan, as the queries below)."""
    lexemes = func.tsvector_to_array(
        func.to_tsvector(
            literal_column("'english'::regconfig"),
            func.marketsvc_unaccent(bindparam("q_name_words", type_=String)),
        ),
        type_=ARRAY(String),
    )
    words = select(lexemes.label("lexemes")).subquery(f"name_words_{n}")

    def lexeme(position: int) -> ColumnElement[Any]:
        return words.c.lexemes[literal_column(str(position))]

    one, two = 2 * n + 1, 2 * n + 2
    key = case(
        (func.cardinality(words.c.lexemes) >= two, func.concat_ws(" ", lexeme(one), lexeme(two))),
        else_=func.coalesce(lexeme(one), lexeme(1)),
    )
    return select(key).scalar_subquery()


def _unindexed(vector: ColumnElement[Any]) -> ColumnElement[Any]:
    """The vector as an expression its GIN index does not answer, for a walk or a list read in
    id order. asyncpg prepares every statement, and after five runs PostgreSQL plans it once
    for any values (a generic plan): not knowing how short a walk's id range is, it may read
    the whole match from the GIN index and AND it with the range, as it did on the benchmark's
    catalogue (one word under load: PostgreSQL's CPU per search 903-967 us; walking, 481-521);
    and with a phrase's words to exclude it built both GIN bitmaps to join the pair list to
    (``tests/test_items_search_plans.py``)."""
    return func.coalesce(vector, literal_column("''::tsvector"), type_=TSVECTOR)


# The queries as scalar subqueries, which PostgreSQL runs once per statement (an InitPlan).
# asyncpg prepares every statement, and after five runs PostgreSQL plans it once for any values
# (a generic plan). With the queries as plain expressions of a parameter, that plan ran them
# again for every row it filtered or rechecked (unaccent and parsing, some 5 us a row: 4 of the
# 6 ms of a phrase found in 850 descriptions). tests/test_items_search_plans.py checks the
# generic plan.
def _websearch_query() -> ColumnElement[Any]:
    return select(
        func.websearch_to_tsquery(
            literal_column("'english'::regconfig"),
            func.marketsvc_unaccent(bindparam("q_websearch", type_=String)),
        )
    ).scalar_subquery()


def _name_query() -> ColumnElement[Any]:
    return select(
        func.to_tsquery(
            literal_column("'english'::regconfig"),
            func.marketsvc_unaccent(bindparam("q_tsquery_name", type_=String)),
        )
    ).scalar_subquery()


def parameters(
    dialect: str, text: SearchText, *, terms: bool = False, pair: tuple[str, str] | None = None
) -> dict[str, str]:
    """The query's values; ``terms``: with the words of :func:`name_terms`' lists; ``pair``:
    :func:`phrase_pair`'s two words, whose list the tiers read."""
    if dialect == "postgresql":
        params = {"q_websearch": websearch(text), "q_tsquery_name": tsquery_in_name(text)}
        if terms:
            params["q_name_words"] = " ".join(_name_words(text))
        if pair is not None:
            params["q_pair_first"], params["q_pair_second"] = pair
        return params
    expression, in_name = fts5(text), fts5_in_name(text)
    excluding = any(c.exclude for c in text.clauses)
    return {
        "q_fts5": expression,
        "q_fts5_name": f"({expression}) AND ({in_name})" if excluding else in_name,
        "q_fts5_other": f"({expression}) NOT ({in_name})",
    }


def websearch(text: SearchText) -> str:
    """The parsed query back in ``websearch_to_tsquery`` syntax, with nothing left to misread."""
    return " or ".join(
        " ".join([*map(_web_phrase, c.include), *("-" + _web_phrase(p) for p in c.exclude)])
        for c in text.clauses
    )


def fts5(text: SearchText) -> str:
    """The parsed query as an FTS5 expression: every phrase quoted, every operator placed."""
    return " OR ".join(_fts5_clause(c) for c in text.clauses)


def fts5_in_name(text: SearchText) -> str:
    """The wanted words of one alternative, all in the name (exclusions aside)."""
    return " OR ".join(
        "(" + " AND ".join("name : " + _fts5_phrase(p) for p in c.include) + ")"
        for c in text.clauses
    )


def tsquery_in_name(text: SearchText) -> str:
    """The same for ``to_tsquery`` over ``name_vector``."""
    return " | ".join("(" + " & ".join(map(_tsquery_phrase, c.include)) + ")" for c in text.clauses)


def _tsquery_phrase(phrase: Phrase) -> str:
    # words are letters and digits: quoted, nothing in them can be an operator
    return "(" + " <-> ".join(f"'{word}'" for word in phrase) + ")"


def _fts5_clause(clause: Clause) -> str:
    found = " AND ".join(map(_fts5_phrase, clause.include))
    if not clause.exclude:
        return f"({found})"
    return f"(({found}) NOT ({' OR '.join(map(_fts5_phrase, clause.exclude))}))"


def _web_phrase(phrase: Phrase) -> str:
    return phrase[0] if len(phrase) == 1 else '"' + " ".join(phrase) + '"'


def _fts5_phrase(phrase: Phrase) -> str:
    return '"' + " ".join(phrase) + '"'  # words are letters and digits: nothing to escape
