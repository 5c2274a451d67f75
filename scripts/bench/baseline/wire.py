"""Money and timestamps exactly as marketsvc writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def cents(value: int) -> str:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 100)
    return f"{sign}{whole}.{frac:02d}"


def timestamp(value: datetime) -> str:
    """RFC 3339 UTC with a Z; microseconds only when there are some."""
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{value.microsecond:06d}Z" if value.microsecond else base + "Z"


def sqlite_timestamp(text: str) -> str:
    """SQLAlchemy's SQLite text ``2026-01-01 10:00:00.000000`` as RFC 3339."""
    frac = text[20:26]
    base = f"{text[:10]}T{text[11:19]}"
    return f"{base}.{frac}Z" if frac.strip("0") else base + "Z"


def sqlite_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def order_json(
    order_id: int, customer_id: int, status: str, placed_at: str, lines: list[tuple]
) -> dict:
    """``lines`` are ``(item_id, name, unit_price_cents, quantity)``."""
    out, total = [], 0
    for item_id, name, price, quantity in lines:
        line_total = price * quantity
        total += line_total
        out.append(
            {
                "item_id": item_id,
                "name": name,
                "unit_price": cents(price),
                "quantity": quantity,
                "line_total": cents(line_total),
            }
        )
    return {
        "id": order_id,
        "customer_id": customer_id,
        "status": status,
        "placed_at": placed_at,
        "lines": out,
        "total": cents(total),
    }


def customer_json(row: tuple) -> dict:
    return {
        "id": row[0],
        "name": row[1],
        "email": row[2],
        "address": {
            "street": row[3],
            "flat_number": row[4],
            "city": row[5],
            "post_code": row[6],
            "country": row[7],
        },
    }
