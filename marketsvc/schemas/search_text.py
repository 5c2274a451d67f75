"""What a shopper's words mean: ``q`` parsed once, the same way for both databases.

The syntax is web-search style, as PostgreSQL's ``websearch_to_tsquery`` reads it: words must
all match, ``"quoted words"`` match as a phrase, ``-word`` (or ``-"a phrase"``) excludes, and
``or`` between words gives alternatives. Parsing here, rather than handing the raw text to the
database, means no input can be a syntax error (FTS5 ``MATCH`` throws on stray operators), and
both databases get the same query. Words are runs of letters and digits, as both tokenizers
split them; English stop words are dropped, as PostgreSQL's english configuration drops them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields

MAX_QUERY_LENGTH = 200
WORD = re.compile(r"[^\W_]+")
PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# PostgreSQL's english.stop (snowball), so that SQLite ignores exactly the words it ignores.
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom this
    that these those am is are was were be been being have has had having do does did doing a an
    the and but if or because as until while of at by for with about against between into through
    during before after above below to from up down in out on off over under again further then
    once here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now""".split()  # noqa: SIM905
)

Phrase = tuple[str, ...]  # lower-case words, in order; one word is a phrase of one


@dataclass(frozen=True)
class Clause:
    """Every ``include`` phrase, and none of the ``exclude`` ones."""

    include: tuple[Phrase, ...]
    exclude: tuple[Phrase, ...] = ()


@dataclass(frozen=True)
class SearchText:
    text: str  # as the client sent it: cursors are bound to it
    clauses: tuple[Clause, ...]  # alternatives: any one matching is a match

    @property
    def finds_nothing(self) -> bool:
        """Only stop words and punctuation: no database could match it."""
        return not self.clauses


def parse(text: str) -> SearchText:
    clauses: list[Clause | None] = []
    include: list[Phrase] = []
    exclude: list[Phrase] = []
    for match in PIECE.finditer(text):
        minus, quoted, bare = match.groups()
        if bare is not None and bare.lower() == "or":
            clauses.append(_clause(include, exclude))
            include, exclude = [], []
            continue
        if bare is not None and bare.startswith("-"):
            minus, bare = "-", bare[1:]
        phrase = _phrase(quoted if bare is None else bare)
        if phrase:
            (exclude if minus else include).append(phrase)
    clauses.append(_clause(include, exclude))
    return SearchText(text, tuple(c for c in clauses if c is not None))


def _phrase(text: str) -> Phrase:
    words = tuple(w.lower() for w in WORD.findall(text))
    return () if all(w in STOP_WORDS for w in words) else words


def _clause(include: list[Phrase], exclude: list[Phrase]) -> Clause | None:
    if not include and exclude:
        raise ValidationError("Each alternative needs a word to find, not only words to exclude.")
    return Clause(tuple(include), tuple(exclude)) if include else None


class SearchTextField(fields.String):
    """``q``: 1-200 characters of web-search syntax, loaded as a :class:`SearchText`."""

    # marshmallow's String declares str: this field validates the string and loads its parsed
    # form, which is what the accessor needs (the document still says type: string)
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> SearchText:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            raise ValidationError("Must not be blank.")
        if len(text) > MAX_QUERY_LENGTH:
            raise ValidationError(f"Longer than {MAX_QUERY_LENGTH} characters.")
        return parse(text)
