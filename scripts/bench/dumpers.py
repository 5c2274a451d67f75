"""Micro-benchmark: the dumpers derived from the schemas against hand-written dicts and marshmallow.

    .venv/bin/python scripts/bench/dumpers.py [--rows 100000] [--repeat 5]

Prints, per shape, the best of ``--repeat`` timings of dumping ``--rows`` objects (ns per row) by
the hand-written function the service used before the dumpers were derived (copied here as the
reference, revision cde41dd), by the derived dumper, and by ``Schema().dump`` (marshmallow).
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from marketsvc.db_accessor.orders import OrderView, PlacedLine
from marketsvc.schemas.common import format_cents
from marketsvc.schemas.customers import (
    CustomerOut,
    dump_customer,
    dump_customer_row,
)
from marketsvc.schemas.items import ItemOut, dump_item
from marketsvc.schemas.orders import OrderOut, dump_order
from marketsvc.schemas.users import PetOut, dump_pet
from marketsvc.store.models import Address, Customer, Item, Order, OrderLine, Pet, User


def customer_row(row: Any) -> dict[str, Any]:
    id_, name, email, street, flat_number, city, post_code, country = row
    return {
        "id": id_,
        "name": name,
        "email": email,
        "address": {
            "street": street,
            "flat_number": flat_number,
            "city": city,
            "post_code": post_code,
            "country": country,
        },
    }


def format_timestamp(value: datetime) -> str:  # as it was: strftime
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{value.microsecond:06d}Z" if value.microsecond else "Z"
    )


def order_dict(order: Any) -> dict[str, Any]:
    lines, total = [], 0
    for line in order.lines:
        line_total = line.unit_price_cents * line.quantity
        total += line_total
        lines.append(
            {
                "item_id": line.item_id,
                "name": line.name,
                "unit_price": format_cents(line.unit_price_cents),
                "quantity": line.quantity,
                "line_total": format_cents(line_total),
            }
        )
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "status": order.status,
        "placed_at": format_timestamp(order.placed_at),
        "lines": lines,
        "total": format_cents(total),
    }


def pet_dict(pet: Any) -> dict[str, Any]:
    owner = pet.user
    return {
        "id": pet.id,
        "name": pet.name,
        "user": None if owner is None else {"id": owner.id, "name": owner.name},
    }


ADDRESS = ("street", "flat_number", "city", "post_code", "country")


def fixtures(n: int) -> dict[str, tuple[list[Any], Any, Callable[..., Any], Any]]:
    """shape -> (objects, hand-written, derived, marshmallow schema)."""
    placed = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    rows = [
        (i, f"Customer {i}", f"c{i}@example.com", f"{i} High St", None, "Leeds", "LS1 4AP", "GB")
        for i in range(1, n + 1)
    ]
    customers = [
        Customer(
            id=r[0],
            name=r[1],
            email=r[2],
            address=Address(**dict(zip(ADDRESS, r[3:], strict=False))),
        )
        for r in rows
    ]
    line = [PlacedLine(7, "Kettle", 2499, 2), PlacedLine(9, "Teapot", 1250, 1)]
    views = [OrderView(i, 42, "pending", placed, line) for i in range(1, n + 1)]
    entities = [
        Order(
            id=i,
            customer_id=42,
            status="paid",
            placed_at=placed,
            lines=[OrderLine(**p._asdict()) for p in line],
        )
        for i in range(1, n + 1)
    ]
    items = [
        Item(id=i, name="Kettle", description="1.7 l", price_cents=2499, stock=12)
        for i in range(1, n + 1)
    ]
    owner = User(id=1, name="Uma")
    pets = [Pet(id=i, name="Rex", user=owner if i % 2 else None) for i in range(1, n + 1)]
    return {
        "customer (flat row)": (rows, customer_row, dump_customer_row, None),
        "customer (entity)": (customers, None, dump_customer, CustomerOut()),
        "order (OrderView, point read)": (views, order_dict, dump_order, OrderOut()),
        "order (entity, stream)": (entities, order_dict, dump_order, OrderOut()),
        "item (entity)": (items, None, dump_item, ItemOut()),
        "pet (entity)": (pets, pet_dict, dump_pet, PetOut()),
    }


def best_ns(function: Callable[[Any], Any], objects: list[Any], repeat: int) -> float:
    # CPU time of this process: on a shared machine wall time mostly measures the neighbours
    timings = timeit.repeat(
        lambda: list(map(function, objects)), number=1, repeat=repeat, timer=time.process_time
    )
    seconds = min(timings)
    return seconds / len(objects) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"ns per row, best of {args.repeat}, {args.rows} rows")
    print("| shape | hand-written | derived | marshmallow |")
    print("|---|---:|---:|---:|")
    for shape, (objects, hand, derived, schema) in fixtures(args.rows).items():
        cells = []
        for function in (hand, derived, schema.dump if schema else None):
            cells.append(f"{best_ns(function, objects, args.repeat):,.0f}" if function else "-")
        print(f"| {shape} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
