"""Which routes each server has, and whether both answer the same JSON to the same requests."""

from __future__ import annotations

from harness.load import call

MISSING = (404, 405)


def samples(route: str, counts: tuple[int, int, int]) -> list[tuple[str, object | None]]:
    """A few requests per route; the first always names something that exists."""
    customers, orders, _items = counts
    if route == "customer":
        return [(f"/api/v1/customers/{k}", None) for k in (1, customers // 2, customers + 1)]
    if route in ("order", "order_total"):
        tail = "/total" if route == "order_total" else ""
        return [(f"/api/v1/orders/{k}{tail}", None) for k in (1, orders // 2, orders + 10**6)]
    if route == "totals":
        ids = [1, 2, orders, orders + 10**6, 2, orders // 3]
        return [("/api/v1/orders/totals", {"order_ids": ids})]
    lines = [{"item_id": 2, "quantity": 2}, {"item_id": 1, "quantity": 1}]
    return [("/api/v1/orders", {"customer_id": 1, "lines": lines})]


def _comparable(route: str, status: int, body: object) -> object:
    if status >= 400:
        return None  # problem details are free text: the status is what must agree
    if route == "place_order" and isinstance(body, dict):
        # new rows' ids: the two databases' sequences part once either server has placed more
        # (a kept database, reused)
        parts = [{k: v for k, v in p.items() if k != "id"} for p in body.get("seller_orders", [])]
        kept = {k: v for k, v in body.items() if k not in ("id", "placed_at", "seller_orders")}
        return kept | {"seller_orders": parts}
    return body


def _differences(a: object, b: object, at: str = "") -> list[str]:
    """Where two JSON values differ: ``path: a != b`` for each differing leaf."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{at}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in _differences(x, y, f"{at}[{i}]")]
    return [] if a == b else [f"{at or '.'}: {str(a)[:80]} != {str(b)[:80]}"]


def probe(route: str, bases: dict[str, str], token: str, counts: tuple[int, int, int]) -> dict:
    """``{"available": bool, "mismatches": [...]}``: available means marketsvc has the route."""
    mismatches: list[str] = []
    available = True
    for n, (path, body) in enumerate(samples(route, counts)):
        answers = {kind: call(base, path, token, body) for kind, base in bases.items()}
        m_status, m_body = answers["marketsvc"]
        if n == 0 and m_status in MISSING:
            available = False
            break
        b_status, b_body = answers["baseline"]
        if (m_status, _comparable(route, m_status, m_body)) != (
            b_status,
            _comparable(route, b_status, b_body),
        ):
            differing = _differences(
                _comparable(route, m_status, m_body), _comparable(route, b_status, b_body)
            )
            mismatches.append(
                f"{path}: marketsvc {m_status}, baseline {b_status}; differing: "
                + "; ".join(differing[:5])
            )
    return {"available": available, "mismatches": mismatches}
