"""Customer and address shapes."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from marketsvc.schemas.common import Id, Name, StrictSchema, Text
from marketsvc.schemas.countries import ISO_COUNTRIES
from marketsvc.schemas.dumping import dumper, row_dumper


class Country(fields.String):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if code not in ISO_COUNTRIES:
            raise ValidationError("Must be an ISO 3166-1 alpha-2 country code, such as 'GB'.")
        return code


class Email(fields.Email):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()


class AddressSchema(StrictSchema):
    street = Name(max_length=200, required=True)
    flat_number = Text(validate=validate.Length(max=20), allow_none=True, load_default=None)
    city = Name(max_length=100, required=True)
    post_code = Name(max_length=20, required=True)
    country = Country(required=True)


class CustomerCreate(StrictSchema):
    name = Name(max_length=200, required=True)
    email = Email(required=True, validate=validate.Length(max=320))
    address = fields.Nested(AddressSchema, required=True)


class CustomerPatch(StrictSchema):
    name = Name(max_length=200)
    email = Email(validate=validate.Length(max=320))
    address = fields.Nested(AddressSchema(partial=True))


class CustomerOut(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    address = fields.Nested(AddressSchema, required=True)


dump_customer = dumper(CustomerOut)  # an entity with its address loaded
dump_customer_row = row_dumper(CustomerOut)  # a flat row of CUSTOMER_COLUMNS
