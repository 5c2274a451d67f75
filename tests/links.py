"""Following ``Link: <...>; rel="next"`` headers."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_PAGES = 200  # more pages than any test lists: a cursor that does not advance ends there


def next_link(resp) -> str | None:
    """The next page's URL, or ``None`` on the last page."""
    link = resp.headers.get("Link")
    if link is None:
        return None
    target = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert target is not None, link
    return target[1]


def next_query(resp, path: str = "/api/v1/items") -> str | None:
    """The next page's query string; its path must be ``path``."""
    url = next_link(resp)
    if url is None:
        return None
    assert urlsplit(url).path == path
    return urlsplit(url).query
