"""``schemas.common.Ids``: a plain list of ids skips the per-element fields, and every input gets
the answer ``fields.List(Id())`` gives (the value, or the same errors, naming the element)."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError, fields

from marketsvc.schemas.common import MAX_ID, Id, Ids

INPUTS: list[Any] = [
    [1, 2, 3],
    [MAX_ID],
    [MAX_ID + 1],
    [0],
    [-4],
    [1, True],
    [False],
    [3.0, 4],
    [2.5],
    ["7"],
    [1, None],
    [[1]],
    [],
    "1,2",
    {"0": 1},
    None,
]


def _answer(field: fields.Field, value: Any) -> Any:
    try:
        return ("ok", field.deserialize(value))
    except ValidationError as error:
        return ("error", error.messages)


@pytest.mark.parametrize("value", INPUTS, ids=repr)
def test_the_same_answers_as_a_list_of_id_fields(value: Any) -> None:
    assert _answer(Ids(), value) == _answer(fields.List(Id()), value)


def test_a_list_of_plain_ids_skips_the_element_fields() -> None:
    field = Ids()
    calls = 0
    element = field.inner.deserialize

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return element(*args, **kwargs)

    field.inner.deserialize = counted  # type: ignore[method-assign]
    assert field.deserialize(list(range(1, 101))) == list(range(1, 101))
    assert calls == 0
    assert field.deserialize([1, 2.0]) == [1, 2]  # not plain: element by element
    assert calls == 2
