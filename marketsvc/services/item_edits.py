"""Editing a catalogue item under optimistic concurrency: ``If-Match`` is checked against the
item as it is inside the change's transaction, under its row lock, so that a concurrent edit
cannot slip between the check and the write; its ``item.updated`` event commits with it."""

from __future__ import annotations

from typing import Any

import orjson

from marketsvc.db_accessor import items
from marketsvc.events import record
from marketsvc.events.data import item_values
from marketsvc.schemas.items import dump_item
from marketsvc.store.engine import Database
from marketsvc.store.models import Item
from marketsvc.web.caching import etag_of, require_match


async def edit_item(
    database: Database, item_id: int, changes: dict[str, Any], if_match: str | None
) -> Item:
    async with database.change() as session:
        # locked whatever If-Match says: item.updated names the values the edit replaced
        item = await items.get_item(session, item_id, for_update=True)
        require_match(if_match, etag_of(orjson.dumps(dump_item(item))))
        before = item_values(item)
        item = await items.change_item(session, item, changes)
        await record.item_updated(session, item, before)
        return item
