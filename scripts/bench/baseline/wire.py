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


def commission(price_cents: int, quantity: int, bps: int) -> int:
    """A line's commission in cents, rounded half-even (as marketsvc's ``commission_of``)."""
    quotient, remainder = divmod(price_cents * quantity * bps, 10_000)
    return quotient + (remainder > 5_000 or (remainder == 5_000 and quotient % 2 == 1))


def split(lines: list[tuple], sellers: list[tuple[int, int]]) -> tuple[list[int], list[tuple]]:
    """``lines`` (item id order) with their ``(seller_id, bps)``: the sellers, in id order, and
    per line ``(seller_id, bps, commission)``."""
    extra = [
        (seller_id, bps, commission(line[2], line[3], bps))
        for line, (seller_id, bps) in zip(lines, sellers, strict=True)
    ]
    return sorted({seller_id for seller_id, _ in sellers}), extra


def parts_of(part_ids: dict[int, int], lines: list[tuple], sellers: list[tuple]) -> list[dict]:
    """The placed order's seller orders (``part_ids``: seller id -> its seller order id)."""
    parts = {
        seller_id: {
            "id": part_id, "seller_id": seller_id, "status": "pending", "item_ids": [],
            "subtotal": 0, "carrier": None, "tracking_number": None,
        }
        for seller_id, part_id in sorted(part_ids.items(), key=lambda kv: kv[1])
    }  # fmt: skip
    for (item_id, _, price, quantity), (seller_id, *_) in zip(lines, sellers, strict=True):
        parts[seller_id]["item_ids"].append(item_id)
        parts[seller_id]["subtotal"] += price * quantity
    for part in parts.values():
        part["subtotal"] = cents(part["subtotal"])
    return list(parts.values())


def read_parts(rows: list[tuple]) -> tuple[list[tuple], list[dict]]:
    """``rows`` of ``sql.ORDER`` past the order's columns (item id order): the lines
    ``(item_id, name, unit_price_cents, quantity)`` and the seller orders, by id."""
    lines, parts = [], {}
    for item_id, name, price, quantity, part_id, seller_id, status, carrier, tracking in rows:
        lines.append((item_id, name, price, quantity))
        part = parts.get(part_id)
        if part is None:
            part = parts[part_id] = {
                "id": part_id, "seller_id": seller_id, "status": status, "item_ids": [],
                "subtotal": 0, "carrier": carrier, "tracking_number": tracking,
            }  # fmt: skip
        part["item_ids"].append(item_id)
        part["subtotal"] += price * quantity
    for part in parts.values():
        part["subtotal"] = cents(part["subtotal"])
    return lines, [parts[part_id] for part_id in sorted(parts)]


def order_json(
    order_id: int,
    customer_id: int,
    status: str,
    placed_at: str,
    lines: list[tuple],
    parts: list[dict] | None = None,
) -> dict:
    """``lines`` are ``(item_id, name, unit_price_cents, quantity)``; ``parts``: the seller
    orders (``parts_of``), when known."""
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
    } | ({} if parts is None else {"seller_orders": parts})


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
