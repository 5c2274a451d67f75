"""User and pet shapes: a user with its pets, a pet with its owner."""

from __future__ import annotations

from marshmallow import fields, validate

from marketsvc.schemas.common import Id, Name, StrictSchema
from marketsvc.schemas.dumping import dumper

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


dump_user = dumper(UserOut)  # its pets loaded by the query
dump_pet = dumper(PetOut)  # its owner loaded by the query
