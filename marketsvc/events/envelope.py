"""The CloudEvents 1.0 JSON envelope of a stored event (the ``cloudevents`` SDK checks it).

``resourceversion`` (an extension attribute) is the event's number among the events about its
subject, from 1: a consumer that has seen a higher one for that subject drops this one as
stale. Feed responses add ``cursor`` (also an extension attribute): the position to continue
after this event.
"""

from __future__ import annotations

from typing import Any

import orjson
from cloudevents.core.v1.event import CloudEvent

from marketsvc.events.types import DATA_CONTENT_TYPE
from marketsvc.schemas.common import format_timestamp

SPEC_VERSION = "1.0"


def envelope(row: Any, source: str, cursor: str | None = None) -> dict[str, Any]:
    """``row``: an outbox row (``db_accessor.outbox.FEED_COLUMNS``). ``data`` is embedded as
    stored, without decoding it (``orjson.Fragment``)."""
    attributes: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": row.event_id,
        "source": source,
        "type": row.type,
        "subject": row.subject,
        "time": row.time,
        "datacontenttype": DATA_CONTENT_TYPE,
        "resourceversion": row.sequence,
    }
    if cursor is not None:
        attributes["cursor"] = cursor
    event = CloudEvent(attributes)  # validates the attribute names, types and values
    document = dict(event.get_attributes())
    document["time"] = format_timestamp(row.time)
    document["data"] = orjson.Fragment(row.data)
    return document


def encode(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)
