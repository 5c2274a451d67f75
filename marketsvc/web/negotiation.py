"""Content negotiation (RFC 9110, section 12.5.1): which of the types we can send the client takes.

Each offered type gets the quality of the most specific range in ``Accept`` that matches it
(``type/subtype`` over ``type/*`` over ``*/*``); ``q=0`` refuses it. The best quality wins, and
among equals the server's order. No ``Accept`` header means anything.
"""

from __future__ import annotations

from collections.abc import Sequence


def choose(accept: str | None, offered: Sequence[str]) -> str | None:
    """The offered media type to send, or ``None`` when the client accepts none of them."""
    if not accept or not accept.strip():
        return offered[0]
    ranges = [parsed for part in accept.split(",") if (parsed := _parse(part)) is not None]
    best, best_q = None, 0.0
    for media_type in offered:
        q = _quality(media_type, ranges)
        if q > best_q:
            best, best_q = media_type, q
    return best


def _parse(part: str) -> tuple[str, str, float] | None:
    """``"application/json;q=0.5"`` as ``("application", "json", 0.5)``; ``None`` if malformed."""
    media_range, *params = (p.strip() for p in part.split(";"))
    kind, slash, subtype = media_range.lower().partition("/")
    if not slash or not kind or not subtype or (kind == "*" and subtype != "*"):
        return None
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            if not 0 <= q <= 1:
                return None
    return kind, subtype, q


def _quality(media_type: str, ranges: list[tuple[str, str, float]]) -> float:
    kind, _, subtype = media_type.partition("/")
    found, specificity = 0.0, -1
    for r_kind, r_subtype, q in ranges:
        if (r_kind, r_subtype) == (kind, subtype):
            rank = 2
        elif r_kind == kind and r_subtype == "*":
            rank = 1
        elif r_kind == "*":
            rank = 0
        else:
            continue
        if rank > specificity:
            found, specificity = q, rank
    return found
