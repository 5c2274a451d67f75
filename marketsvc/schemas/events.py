"""The feed's query and the envelope of every event type, for the OpenAPI document.

One envelope schema per type (``OrderPlacedV1Event``...), its ``type`` fixed and its ``data``
the type's schema, so the document names every type with the shape of its ``data``.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from marketsvc.events.types import CATALOGUE, DATA_CONTENT_TYPE, EventType
from marketsvc.schemas.common import (
    MAX_ID,
    MAX_PAGE,
    QueryInt,
    StrictSchema,
    Text,
    UtcDateTime,
)

CURSOR_PATTERN = r"^[0-9]{1,19}-[0-9]{1,19}$"
MAX_WAIT_SECONDS = 30
DEFAULT_LIMIT = 100


class Cursor(fields.String):
    """A feed position, ``<txid>-<id>`` on the wire, a ``(txid, id)`` pair once loaded."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": CURSOR_PATTERN} | kwargs.pop("metadata", {})
        super().__init__(metadata=metadata, **kwargs)

    # marshmallow's String declares str: this field validates the wire form and loads the
    # (txid, id) pair the feed queries need (the document still says type: string)
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> tuple[int, int]:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(CURSOR_PATTERN, text):
            raise ValidationError("Must be a cursor from this feed, such as 0-42.")
        txid, row = (int(part) for part in text.split("-"))
        if txid > MAX_ID or row > MAX_ID:
            raise ValidationError("Not a position this feed has.")
        return txid, row


class EventsQuery(StrictSchema):
    after = Cursor(
        metadata={
            "description": "The events after this cursor (an event's `cursor`); from the"
            " oldest kept when absent. Past retention: 410."
        }
    )
    type = fields.String(
        validate=validate.OneOf(sorted(t.type for t in CATALOGUE.values())),
        metadata={"description": "Only events of this type."},
    )
    subject = Text(  # no NUL: PostgreSQL refuses it
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Only events about this resource, such as `orders/42`."},
    )
    limit = QueryInt(
        validate=validate.Range(min=1, max=MAX_PAGE),
        load_default=DEFAULT_LIMIT,
        metadata={
            "description": f"At most this many events, oldest first (default {DEFAULT_LIMIT})."
        },
    )
    wait = QueryInt(
        validate=validate.Range(min=0, max=MAX_WAIT_SECONDS),
        load_default=0,
        metadata={
            "description": "Seconds to hold an empty answer for the next event (0: none;"
            " capped by MARKETSVC_EVENTS_MAX_WAIT_SECONDS)."
        },
    )


class EventEnvelope(StrictSchema):
    """A CloudEvents 1.0 event in the JSON format."""

    specversion = fields.String(required=True, validate=validate.OneOf(["1.0"]))
    id = fields.String(required=True, metadata={"description": "Unique; the dedup key."})
    source = fields.String(required=True)
    subject = fields.String(required=True, metadata={"description": "e.g. orders/42"})
    time = UtcDateTime(required=True)
    datacontenttype = fields.String(required=True, validate=validate.OneOf([DATA_CONTENT_TYPE]))
    resourceversion = fields.Integer(
        required=True,
        metadata={"description": "This event's number among its subject's events, from 1."},
    )
    cursor = fields.String(
        required=True,
        validate=validate.Regexp(CURSOR_PATTERN),
        metadata={"description": "Feed position: pass as `after` (or Last-Event-ID) to go on."},
    )


def _envelope_schema(kind: EventType) -> type[Schema]:
    name = "".join(part.title() for part in kind.name.replace("_", ".").split("."))
    attrs = {
        "type": fields.String(required=True, validate=validate.OneOf([kind.type])),
        "data": fields.Nested(kind.data, required=True),
        "Meta": type("Meta", (), {"unknown": "raise", "title": kind.type}),
        "__module__": __name__,
    }
    schema = type(f"{name}V{kind.version}Event", (EventEnvelope,), attrs)
    schema.__doc__ = kind.summary
    return schema


ENVELOPES: dict[str, type[Schema]] = {
    kind.type: _envelope_schema(kind) for kind in CATALOGUE.values()
}


def any_event() -> dict[str, object]:
    """The feed item, for the document: exactly one of the envelopes, told apart by ``type``."""
    return {"oneOf": [schema() for schema in ENVELOPES.values()]}
