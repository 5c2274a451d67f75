"""A webhook sender of its own (no app: nothing claims unless a test asks), a real receiver it
may send to, and the settings they run with."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from marketsvc.services.webhook_delivery import Sender
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from tests.webhook_receivers import Receiver


@asynccontextmanager
async def sender_and_receiver(
    settings: Settings,
) -> AsyncIterator[tuple[Settings, Database, Sender, Receiver]]:
    receiver = Receiver()
    await receiver.start()
    settings = dataclasses.replace(settings, webhook_allow_private=True)  # the receiver's 127.0.0.1
    database = Database(settings)
    sender = Sender(database, settings)
    try:
        yield settings, database, sender, receiver
    finally:
        await sender.close()
        await receiver.stop()
        await database.dispose()
