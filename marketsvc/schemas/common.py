"""Field types and base schemas shared by every resource."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

MAX_ID = 2**63 - 1  # ids are BIGINT
MAX_DIGITS = len(str(MAX_ID))
MONEY_SHAPE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
MONEY_INTEGER_DIGITS = 10  # what a client may send; computed totals may be longer
EXACT_FLOAT_INTEGERS = 2**53  # a whole-number float beyond this may not be the integer written
MAX_PAGE = 1000


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# "00" to "99": the cents of ``format_cents``, looked up rather than formatted with ``:02d``
# (a format spec parsed on every call). Callgrind, per call: 5.7k -> 3.2k instructions; a GET order
# formats 9 amounts (about -22k of 948k), batch totals one per order (100 ids: about -250k,
# reckoned from the per-call figure, not measured through the app).
_CENTS = tuple(f"{n:02d}" for n in range(100))


def format_cents(cents: int) -> str:
    """Integer minor units as a decimal string with exactly two decimals."""
    if cents >= 0:
        whole, frac = divmod(cents, 100)
        return f"{whole}.{_CENTS[frac]}"
    whole, frac = divmod(-cents, 100)
    return f"-{whole}.{_CENTS[frac]}"


def parse_cents(text: str) -> int:
    return int((Decimal(text) * 100).to_integral_value())


class Money(fields.Field[int]):
    """A decimal string ``"10.50"`` on the wire; integer cents inside. Never a float.

    What a client sends has at most ``MONEY_INTEGER_DIGITS`` digits before the point and two
    after it; each broken rule has its own message."""

    default_error_messages = {
        "invalid": 'Money is a string of digits with an optional decimal point, such as "10.50":'
        " no sign, no exponent, no leading zero.",
        "decimals": "Money has at most two decimals.",
        "too_large": f"Money has at most {MONEY_INTEGER_DIGITS} digits before the decimal point.",
    }

    def _serialize(self, value: int | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_cents(value)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        shape = MONEY_SHAPE.fullmatch(value) if isinstance(value, str) else None
        if shape is None or shape[2] == "":
            raise self.make_error("invalid")
        if shape[2] is not None and len(shape[2]) > 2:
            raise self.make_error("decimals")
        if len(shape[1]) > MONEY_INTEGER_DIGITS:
            raise self.make_error("too_large")
        return parse_cents(value)


class MoneyIn(Money):
    """Money a client sends: the document states its limits (``MONEY_INTEGER_DIGITS``)."""


class StrictInt(fields.Integer):
    """An integer that is a JSON number, not a bool, a fraction or a string. A whole number
    written with a decimal point or an exponent (``3.0``, ``3e0``) is an integer, as JSON Schema
    says, up to 2**53: beyond, the float it was read as may not be the number written."""

    default_error_messages = {
        "inexact": "A whole number written with a decimal point or an exponent is taken up to "
        f"{EXACT_FLOAT_INTEGERS}; write larger ones as plain digits."
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            if abs(value) > EXACT_FLOAT_INTEGERS:
                raise self.make_error("inexact")
            return int(value)
        return super()._validated(value)


class Id(StrictInt):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class Ids(fields.List[Any]):
    """A list of ids. A list of plain integers each in range, what clients send, is taken as it
    is; anything else goes element by element through ``Id``, whose errors name the element.
    One field call per id cost POST /api/v1/orders/totals (100 ids) some 300 us in-process:
    ``tests/test_ids_field.py`` checks both paths give the same answers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Id(), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if type(value) is list and all(type(v) is int and 0 < v <= MAX_ID for v in value):
            return value
        return super()._deserialize(value, attr, data, **kwargs)


def parse_digits(text: str) -> int | None:
    """A non-negative integer in ASCII digits, at most ``MAX_DIGITS`` of them; else ``None``.

    ``isdigit`` alone passes "\u00b2" (which ``int`` then refuses) and "\u0661" (which ``int``
    reads as 1); ``isdecimal`` passes the latter too.
    """
    if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS:
        return int(text)
    return None


def parse_id(text: str) -> int | None:
    """An id as a path or a token's subject writes it: ``parse_digits``, from 1 to ``MAX_ID``."""
    value = parse_digits(text)
    return value if value is not None and 0 < value <= MAX_ID else None


class QueryInt(fields.Integer):
    """An integer from a query string: digits only."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        parsed = parse_digits(value) if isinstance(value, str) else None
        if parsed is None:
            raise self.make_error("invalid")
        return parsed


class UtcDateTime(fields.DateTime):
    """RFC 3339 in UTC with a ``Z``; an input without an offset is taken as UTC."""

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return format_timestamp(value)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # "9999-12-31T23:59:59-01:00" is past what datetime can hold
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, microseconds only when there are any; naive means UTC.

    ``isoformat`` costs half of ``strftime``, and this runs for every order a response holds.
    """
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"  # drop "+00:00"


class Name(fields.String):
    """Non-blank text, trimmed, of bounded length; Unicode is kept as given."""

    def __init__(self, max_length: int = 200, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=1, max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("Must not be blank.")
        if any(ord(c) < 32 for c in text):
            raise ValidationError("Must not contain control characters.")
        return text


class Text(fields.String):
    """Free text: any Unicode but NUL, which PostgreSQL cannot store in a text column."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Must not contain NUL characters.")
        return text


MAX_CURSOR_LENGTH = 600


class PageQuery(StrictSchema):
    """Every list: rows in id order; all of them streamed, or pages of ``limit`` with cursors."""

    after_id = QueryInt(
        validate=validate.Range(min=0, max=MAX_ID),
        load_default=0,
        metadata={
            "description": "Only rows whose id is greater than this (default 0: from the "
            "first). Rows come in id order. Not with `cursor`."
        },
    )
    limit = QueryInt(
        validate=validate.Range(min=1, max=MAX_PAGE),
        load_default=None,
        metadata={
            "description": f"A page of at most this many rows (1-{MAX_PAGE}), with a "
            '`Link: <...>; rel="next"` header when more may follow; without it (the '
            "default) every row streams."
        },
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH),
        metadata={
            "description": 'Where the previous page stopped, from its `Link rel="next"`: '
            "opaque, signed and bound to this list and its filters (another or a changed "
            "cursor is a 400)."
        },
    )


class ProblemSchema(Schema):
    """RFC 9457 problem details: one ``title`` per ``type``, one ``type`` per status."""

    type = fields.String(
        required=True, metadata={"description": "`urn:marketsvc:problem:<kind>`, one per status."}
    )
    title = fields.String(
        required=True, metadata={"description": "Fixed for each type, such as `Not found`."}
    )
    status = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    detail = fields.String(
        required=True, metadata={"description": "What went wrong with this request."}
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "Each invalid input, keyed by where it came from: `body.<path>` (a "
            "JSON path with dots, list positions as numbers: `body.lines.0.quantity`; `body` "
            "alone for the body as a whole), `query.<name>` (`query.limit`) or `header.<Name>` "
            "(`header.Idempotency-Key`); each message names the rule broken."
        },
    )
