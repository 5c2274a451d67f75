"""Users, each loaded with its pets by the query that fetches it."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from marketsvc.db_accessor.core import rowcount
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, page, stream_chunks
from marketsvc.errors import UserNotFound
from marketsvc.store.models import Pet, User


async def get_user(session: AsyncSession, user_id: int) -> User:
    stmt = select(User).options(selectinload(User.pets)).where(User.id == user_id)
    user = (await session.execute(stmt)).scalar_one_or_none()
    if user is None:
        raise UserNotFound(user_id)
    return user


async def find_owner(session: AsyncSession, user_id: int) -> User | None:
    """The user about to receive a pet, locked (PostgreSQL: FOR KEY SHARE) against deletion.

    Without the lock a concurrent DELETE could commit between this check and our INSERT or
    UPDATE of the pet, and the foreign key would fail with an IntegrityError (a 500). SQLite
    writers are already serialised by BEGIN IMMEDIATE, and SQLAlchemy omits the clause there.
    """
    stmt = select(User).where(User.id == user_id).with_for_update(read=True, key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def user_exists(session: AsyncSession, user_id: int) -> bool:
    return await session.scalar(select(User.id).where(User.id == user_id)) is not None


async def create_user(session: AsyncSession, data: dict[str, Any]) -> User:
    # Both sides of the relationship are set in memory, so nothing needs loading afterwards.
    user = User(name=data["name"], pets=[Pet(name=pet["name"]) for pet in data["pets"]])
    session.add(user)
    await session.flush()
    return user


async def update_user(session: AsyncSession, user_id: int, changes: dict[str, Any]) -> User:
    user = await get_user(session, user_id)
    if "name" in changes:
        user.name = changes["name"]
    await session.flush()
    return user


async def delete_user(session: AsyncSession, user_id: int) -> None:
    """Release the user's pets, then delete it: both in the caller's one transaction.

    The explicit UPDATE does not leave the outcome to the foreign key's ON DELETE SET NULL
    (which stays as a safety net for a pet attached concurrently on PostgreSQL).
    """
    no_sync = {"synchronize_session": False}
    release = update(Pet).where(Pet.user_id == user_id).values(user_id=None)
    await session.execute(release.execution_options(**no_sync))
    result = await session.execute(
        delete(User).where(User.id == user_id).execution_options(**no_sync)
    )
    if rowcount(result) == 0:
        raise UserNotFound(user_id)  # the caller's transaction rolls the UPDATE back


async def stream_users(
    session: AsyncSession,
    after_id: int = 0,
    limit: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ChunkStream[User]:
    """Users with their pets: one query for the users, plus one ``IN`` query per chunk."""
    stmt = page(select(User).options(selectinload(User.pets)), User.id, after_id, limit)
    async with aclosing(stream_chunks(session, stmt, chunk_rows)) as chunks:
        async for chunk in chunks:
            yield chunk
