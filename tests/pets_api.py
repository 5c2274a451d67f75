"""Small HTTP helpers shared by the user and pet tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


async def make_user(
    client: TestClient, admin: dict[str, str], name: str = "Ada", pets: tuple[str, ...] = ()
) -> dict[str, Any]:
    body = {"name": name, "pets": [{"name": p} for p in pets]}
    resp = await client.post("/api/v1/users", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def make_pet(
    client: TestClient, admin: dict[str, str], name: str = "Rex", user_id: int | None = None
) -> dict[str, Any]:
    resp = await client.post("/api/v1/pets", json={"name": name, "user_id": user_id}, headers=admin)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def get_json(client: TestClient, admin: dict[str, str], path: str) -> Any:
    resp = await client.get(path, headers=admin)
    assert resp.status == 200, await resp.text()
    return await resp.json()


@contextmanager
def sql_log(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement the engine sends while the block runs, with ``<begin>``/``<commit>``."""
    log: list[str] = []
    sync_engine = engine.sync_engine

    def on_sql(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        log.append(" ".join(statement.split()))

    hooks = [
        ("before_cursor_execute", on_sql),
        ("begin", lambda _conn: log.append("<begin>")),
        ("commit", lambda _conn: log.append("<commit>")),
    ]
    for name, fn in hooks:
        event.listen(sync_engine, name, fn)
    try:
        yield log
    finally:
        for name, fn in hooks:
            event.remove(sync_engine, name, fn)


def selects(log: list[str]) -> list[str]:
    return [s for s in log if s.upper().startswith("SELECT")]
