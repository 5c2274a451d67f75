"""Following ``Link: <...>; rel="next"`` headers."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_PAGES = 200  # more pages than any test lists: a cursor that does not advance ends there


def next_query(resp) -> str | None:
    link = resp.headers.get("Link")
    if link is None:
        return None
    target = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert target is not None, link
    assert urlsplit(target[1]).path == "/api/v1/items"
    return urlsplit(target[1]).query
