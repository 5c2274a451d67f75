"""Adding and editing catalogue items. An edit runs under optimistic concurrency: ``If-Match``
is checked against the item as it is inside the change's transaction, under its row lock, so
that a concurrent edit cannot slip between the check and the write; its ``item.updated`` event
commits with it. A seller (``seller_id``) adds and edits only its own items, and only while
it is active."""

from __future__ import annotations

from typing import Any

import orjson

from marketsvc.db_accessor import items, sellers
from marketsvc.errors import Forbidden, ItemNotFound
from marketsvc.events import record
from marketsvc.events.data import item_values
from marketsvc.schemas.items import dump_item
from marketsvc.store.engine import Database
from marketsvc.store.models import DEFAULT_SELLER_ID, Item
from marketsvc.web.caching import etag_of, require_match

SELLER_EDITABLE = frozenset(("price_cents", "stock", "description"))


async def add_item(database: Database, data: dict[str, Any], seller_id: int | None) -> Item:
    """``seller_id``: the seller adding to its own catalogue; ``None`` for an admin, who names
    the seller in ``data`` (or leaves the default one)."""
    if seller_id is not None and data.setdefault("seller_id", seller_id) != seller_id:
        raise Forbidden(
            "a seller adds items to its own catalogue only",
            {"body.seller_id": [f"Must be {seller_id}, the seller this token acts for."]},
        )
    data.setdefault("seller_id", DEFAULT_SELLER_ID)
    async with database.change() as session:
        if seller_id is not None:
            await sellers.require_active(session, seller_id)
        else:
            await sellers.seller_for_item(session, data["seller_id"])
        item = await items.create_item(session, data)
        await record.item_created(session, item)
        return item


async def edit_item(
    database: Database,
    item_id: int,
    changes: dict[str, Any],
    if_match: str | None,
    seller_id: int | None = None,
) -> Item:
    """``seller_id``: a seller editing; another seller's item is a 404, as if it did not exist."""
    async with database.change() as session:
        # locked whatever If-Match says: item.updated names the values the edit replaced
        item = await items.get_item(session, item_id, for_update=True)
        if seller_id is not None:
            _seller_may_edit(item, changes, seller_id)
            await sellers.require_active(session, seller_id)
        require_match(if_match, etag_of(orjson.dumps(dump_item(item))))
        before = item_values(item)
        item = await items.change_item(session, item, changes)
        await record.item_updated(session, item, before)
        return item


def _seller_may_edit(item: Item, changes: dict[str, Any], seller_id: int) -> None:
    if item.seller_id != seller_id:
        raise ItemNotFound(item.id)
    if fixed := sorted(changes.keys() - SELLER_EDITABLE):
        raise Forbidden(
            "a seller changes its items' price, stock and description only",
            {f"body.{field}": ["Only an admin changes this."] for field in fixed},
        )
