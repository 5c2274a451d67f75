"""Pets, each loaded with its owner by the query that fetches it."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from marketsvc.db_accessor.core import rowcount
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, page, stream_chunks
from marketsvc.db_accessor.users import find_owner, user_exists
from marketsvc.errors import InvalidInput, PetNotFound, UserNotFound
from marketsvc.store.models import Pet, User


async def get_pet(session: AsyncSession, pet_id: int) -> Pet:
    stmt = select(Pet).options(joinedload(Pet.user)).where(Pet.id == pet_id)
    pet = (await session.execute(stmt)).scalar_one_or_none()
    if pet is None:
        raise PetNotFound(pet_id)
    return pet


async def create_pet(session: AsyncSession, data: dict[str, Any]) -> Pet:
    owner = await _owner_from_body(session, data["user_id"])
    return await _add(session, Pet(name=data["name"], user=owner))


async def add_pet_to_user(session: AsyncSession, user_id: int, data: dict[str, Any]) -> Pet:
    """A new pet for the user in the path: an unknown user is a 404, not a 422."""
    owner = await find_owner(session, user_id)
    if owner is None:
        raise UserNotFound(user_id)
    return await _add(session, Pet(name=data["name"], user=owner))


async def update_pet(session: AsyncSession, pet_id: int, changes: dict[str, Any]) -> Pet:
    """Rename, hand over to another user (``user_id``) or release (``user_id: null``)."""
    pet = await get_pet(session, pet_id)
    if "user_id" in changes:
        pet.user = await _owner_from_body(session, changes["user_id"])
    if "name" in changes:
        pet.name = changes["name"]
    await session.flush()
    return pet


async def delete_pet(session: AsyncSession, pet_id: int) -> None:
    stmt = delete(Pet).where(Pet.id == pet_id).execution_options(synchronize_session=False)
    if rowcount(await session.execute(stmt)) == 0:
        raise PetNotFound(pet_id)


def pets_query(
    after_id: int = 0, limit: int | None = None, user_id: int | None = None
) -> Select[Pet]:
    # A many-to-one joinedload is one LEFT OUTER JOIN, compatible with yield_per: no extra query.
    stmt = select(Pet).options(joinedload(Pet.user))
    if user_id is not None:
        stmt = stmt.where(Pet.user_id == user_id)
    return page(stmt, Pet.id, after_id, limit)


async def stream_pets(
    session: AsyncSession,
    after_id: int = 0,
    limit: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    user_id: int | None = None,
) -> ChunkStream[Pet]:
    """Pets with their owners; with ``user_id``, that user's pets (404 if there is no user)."""
    if user_id is not None and not await user_exists(session, user_id):
        raise UserNotFound(user_id)
    async with aclosing(
        stream_chunks(session, pets_query(after_id, limit, user_id), chunk_rows)
    ) as chunks:
        async for chunk in chunks:
            yield chunk


async def _owner_from_body(session: AsyncSession, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    owner = await find_owner(session, user_id)
    if owner is None:
        raise InvalidInput({"body.user_id": [f"User {user_id} does not exist."]})
    return owner


async def _add(session: AsyncSession, pet: Pet) -> Pet:
    session.add(pet)
    await session.flush()
    return pet
