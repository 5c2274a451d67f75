"""Fast dumpers derived from the marshmallow schemas, so that each shape is declared once.

``dumper(SomeOut)`` walks the schema's dump fields once and generates a plain Python function,
one dict expression: attribute reads, ``format_cents`` for ``Money``, ``format_timestamp`` for
``UtcDateTime``, nested schemas and lists inlined. It costs what a hand-written dict costs, and a
field added to or removed from the schema is added to or removed from every response without a
second edit. A field type with no fast form here is serialised by the field itself, and a schema
with dump hooks (``@pre_dump``, ``@post_dump``) by marshmallow: correct first, fast where it can.

``row_dumper`` and ``row_columns`` do the same for a flat row (an entity and its nested one-to-one
entities selected as plain columns): both come from one walk of the schema, so the columns a
query selects and the positions the dumper unpacks cannot drift apart.

Objects are read by attribute (entities, rows, named tuples, dataclasses), never as mappings.
``tests/test_dumping.py`` proves every dumper equal to ``Schema().dump()`` on real data.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeGuard, cast

from marshmallow import Schema, fields, missing

from marketsvc.schemas.common import Money, UtcDateTime, format_cents, format_timestamp

Dump = Callable[[Any], dict[str, Any]]
Leaf = tuple[tuple[str, ...], tuple[str, ...], fields.Field[Any]]  # (data keys, attributes, field)

# serialisers that hand back the stored value unchanged (for the types the database gives)
_PLAIN = (fields.Field._serialize, fields.String._serialize)
_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    Money._serialize: format_cents,
    UtcDateTime._serialize: format_timestamp,
}


@cache
def dumper(schema: type[Schema]) -> Dump:
    """A function ``obj -> dict`` equal to ``schema().dump(obj)``, generated once per schema."""
    instance = schema()
    return instance.dump if _hooked(instance) else _Generated().function(instance)


def row_dumper(
    schema: type[Schema], extra_columns: int = 0
) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """``row -> dict`` for a row of ``row_columns(schema, ...)``, unpacked by position, and
    ``extra_columns`` more after them that the dump leaves out (a search's score)."""
    return _row_dumper(schema, extra_columns)


def row_columns(schema: type[Schema], entity: Any, **nested: Any) -> list[Any]:
    """The columns a flat row of ``schema`` holds, in the order ``row_dumper`` unpacks them:
    ``entity``'s attribute for each plain field, ``nested[name]``'s for a nested one's fields."""
    columns = []
    for _, attributes, _ in flat_leaves(schema()):
        *path, attribute = attributes
        owner = nested[path[-1]] if path else entity
        columns.append(getattr(owner, attribute))
    return columns


def flat_leaves(
    schema: Schema, keys: tuple[str, ...] = (), attrs: tuple[str, ...] = ()
) -> list[Leaf]:
    """The schema's plain fields in dump order, nested single schemas flattened into the walk."""
    leaves: list[Leaf] = []
    for name, field in schema.dump_fields.items():
        key, attribute = field.data_key or name, field.attribute or name
        if _nested(field) and not _many(field) and not _hooked(field.schema):
            if field.allow_none:
                raise TypeError(f"{name}: a flat row cannot tell a null nested object from nulls")
            leaves += flat_leaves(field.schema, (*keys, key), (*attrs, attribute))
        elif _fast(field, "c") is None:
            raise TypeError(f"{name}: {type(field).__name__} has no flat-row form")
        else:
            leaves.append(((*keys, key), (*attrs, attribute), field))
    return leaves


@cache
def _row_dumper(schema: type[Schema], extra: int) -> Callable[[Sequence[Any]], dict[str, Any]]:
    leaves = flat_leaves(schema())
    tree: dict[str, Any] = {}
    for n, (keys, _, field) in enumerate(leaves):
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = _fast(field, f"c{n}")
    names = ", ".join([f"c{n}" for n in range(len(leaves))] + ["_"] * extra)
    source = f"def dump(row):\n    {names}, = row\n    return {_render(tree)}\n"
    env = {"format_cents": format_cents, "format_timestamp": format_timestamp}
    return cast(Callable[[Sequence[Any]], dict[str, Any]], _exec(source, env))


def _render(tree: dict[str, Any]) -> str:
    parts = (f"{k!r}: {_render(v) if isinstance(v, dict) else v}" for k, v in tree.items())
    return "{" + ", ".join(parts) + "}"


class _Generated:
    """One dumper's source: a single dict expression, nested schemas and lists inlined (a nested
    object is read once, into a local bound by ``:=``), and the objects it refers to."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {
            "format_cents": format_cents,
            "format_timestamp": format_timestamp,
        }
        self.names = 0

    def function(self, schema: Schema) -> Dump:
        source = f"def dump(o):\n    return {self._schema(schema, _Object('o'))}\n"
        return cast(Dump, _exec(source, self.env))

    def _schema(self, schema: Schema, obj: _Object) -> str:
        entries = ", ".join(
            f"{(field.data_key or name)!r}: {self._entry(name, field, obj)}"
            for name, field in schema.dump_fields.items()
        )
        if any(not _compiles(field) for field in schema.dump_fields.values()):
            # a field marshmallow serialises may find nothing to read: leave it out, as dump does
            return f"{self._ref(_present)}({{{entries}}})"
        return "{" + entries + "}"

    def _entry(self, name: str, field: fields.Field[Any], obj: _Object) -> str:
        attribute = field.attribute or name
        if "." in attribute or not _compiles(field):  # marshmallow's own code does it
            return f"{self._ref(field)}.serialize({name!r}, {obj.use()})"
        read = _read(obj.use(), attribute)
        if not field.allow_none or _fast(field, read) == read:  # no None check to add
            return self._value(field, read)
        value = self._name()
        return f"(None if ({value} := {read}) is None else {self._value(field, value)})"

    def _value(self, field: fields.Field[Any], value: str) -> str:
        if _nested(field):
            if _many(field):
                return self._each(field.schema, value)
            if value.isidentifier():
                return self._schema(field.schema, _Object(value))
            return self._schema(field.schema, _Object(self._name(), value))
        if _list(field):
            if _nested(field.inner):
                return self._each(field.inner.schema, value)
            each = self._name()
            fast = _fast(field.inner, each)
            if fast == each:
                return f"list({value})"
            if ":=" in value:  # not allowed in a comprehension's iterable
                source = f"def dump({each}):\n    return {fast}\n"
                return f"list(map({self._ref(_exec(source, self.env))}, {value}))"
            return f"[{fast} for {each} in {value}]"
        fast = _fast(field, value)
        assert fast is not None
        return fast

    def _each(self, schema: Schema, value: str) -> str:
        if ":=" in value:  # not allowed in a comprehension's iterable
            return f"list(map({self._ref(_Generated().function(schema))}, {value}))"
        each = self._name()
        return f"[{self._schema(schema, _Object(each))} for {each} in {value}]"

    def _name(self) -> str:
        self.names += 1
        return f"v{self.names}"

    def _ref(self, thing: Any) -> str:
        name = f"r{len(self.env)}"
        self.env[name] = thing
        return name


class _Object:
    """An object the generated code reads fields of. One still to be read (``bound``) is read
    where its first field is, into ``name``: dict displays evaluate left to right."""

    def __init__(self, name: str, bound: str | None = None) -> None:
        self.name, self.bound = name, bound

    def use(self) -> str:
        if self.bound is None:
            return self.name
        first, self.bound = f"({self.name} := {self.bound})", None
        return first


def _present(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not missing}


def _fast(field: fields.Field[Any], value: str) -> str | None:
    """The expression for ``value``'s wire form, or ``None`` when the field must do it itself."""
    serialize = _serializer(field)
    if serialize in _PLAIN:
        return value
    if isinstance(field, fields.Integer) and serialize is fields.Number._serialize:
        return None if field.as_string else value
    converter = _CONVERTERS.get(serialize)
    return None if converter is None else f"{converter.__name__}({value})"


def _compiles(field: fields.Field[Any]) -> bool:
    if _nested(field):
        return not _hooked(field.schema)
    if _list(field):
        return (
            _compiles(field.inner) if _nested(field.inner) else _fast(field.inner, "x") is not None
        )
    return _fast(field, "x") is not None


def _nested(field: fields.Field[Any]) -> TypeGuard[fields.Nested]:
    """A nested schema dumped whole (``Pluck`` is a ``Nested`` that is not)."""
    return _serializer(field) is fields.Nested._serialize


def _list(field: fields.Field[Any]) -> TypeGuard[fields.List[Any]]:
    return _serializer(field) is fields.List._serialize


def _serializer(field: fields.Field[Any]) -> Any:
    """The ``_serialize`` a field's class has (its own, or the one it inherits)."""
    return type(field)._serialize


def _hooked(schema: Schema) -> bool:
    return bool(schema._hooks["pre_dump"] or schema._hooks["post_dump"])


def _many(field: fields.Nested) -> bool:
    return bool(field.many or field.schema.many)


def _read(obj: str, attribute: str) -> str:
    if attribute.isidentifier() and not keyword.iskeyword(attribute):
        return f"{obj}.{attribute}"
    return f"getattr({obj}, {attribute!r})"


def _exec(source: str, env: dict[str, Any]) -> Any:
    namespace = dict(env)
    exec(compile(source, "<marketsvc dumper>", "exec"), namespace)
    function = namespace["dump"]
    function.__source__ = source  # what was generated, for a reader (or a failing test)
    return function
