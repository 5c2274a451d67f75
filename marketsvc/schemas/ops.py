"""Probe shapes: liveness and readiness."""

from __future__ import annotations

from typing import NamedTuple

from marshmallow import fields, validate

from marketsvc.schemas.common import StrictSchema
from marketsvc.schemas.dumping import dumper


class Probe(NamedTuple):
    status: str
    revision: str | None = None


class HealthOut(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class ReadinessOut(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(["ready"]))
    revision = fields.String(required=True, data_key="schema")  # the alembic revision


dump_health = dumper(HealthOut)
dump_readiness = dumper(ReadinessOut)
