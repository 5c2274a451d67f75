"""User and pet shapes: a user with its pets, a pet with its owner."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from marketsvc.schemas.common import Id, Name, StrictSchema
from marketsvc.store.models import Pet, User

NAME_LENGTH = 100  # users.name and pets.name are VARCHAR(100)
MAX_PETS_AT_CREATION = 100


class NameBody(StrictSchema):
    name = Name(max_length=NAME_LENGTH, required=True)


class UserCreate(StrictSchema):
    name = Name(max_length=NAME_LENGTH, required=True)
    pets = fields.List(
        fields.Nested(NameBody),
        load_default=list,
        validate=validate.Length(max=MAX_PETS_AT_CREATION),
    )


class UserPatch(StrictSchema):
    name = Name(max_length=NAME_LENGTH)


class PetCreate(StrictSchema):
    name = Name(max_length=NAME_LENGTH, required=True)
    user_id = Id(allow_none=True, load_default=None)


class PetPatch(StrictSchema):
    name = Name(max_length=NAME_LENGTH)
    user_id = Id(allow_none=True)


class Ref(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True)


class UserOut(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True)
    pets = fields.List(fields.Nested(Ref), required=True)


class PetOut(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True)
    user = fields.Nested(Ref, allow_none=True, required=True)


def user_dict(user: User) -> dict[str, Any]:
    """A user in the ``UserOut`` shape; its pets must have been loaded by the query."""
    return {
        "id": user.id,
        "name": user.name,
        "pets": [{"id": pet.id, "name": pet.name} for pet in user.pets],
    }


def pet_dict(pet: Pet) -> dict[str, Any]:
    """A pet in the ``PetOut`` shape; its owner must have been loaded by the query."""
    owner = pet.user
    return {
        "id": pet.id,
        "name": pet.name,
        "user": None if owner is None else {"id": owner.id, "name": owner.name},
    }
