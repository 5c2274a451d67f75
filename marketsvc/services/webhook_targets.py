"""Outbound safety: where a webhook may be sent (SSRF), checked at creation and at delivery.

Only ``https`` outside development (``MARKETSVC_ENV``); no credentials in the URL. Unless
``MARKETSVC_WEBHOOK_ALLOW_PRIVATE=1``, a target must not resolve to an address that is not
global: loopback, private, link-local (which holds the cloud metadata address 169.254.169.254),
shared, reserved, unspecified, or multicast; IPv4-mapped IPv6 addresses are judged as IPv4. At
delivery the same rule runs where the delivery client connects (``webhook_http``), so the
address checked is the address connected to (a name re-pointed after creation is refused).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from yarl import URL

from marketsvc.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(OSError):
    """The target is not allowed (the message says why); a delivery attempt records it."""


def refusal(address: str) -> str | None:
    """Why ``address`` may not be a target, or None if it may."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{address} is not a global address"
    return None


def url_problem(url: str, settings: Settings) -> str | None:
    """What is wrong with ``url`` before any lookup, or None."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return "Not a URL."
    allowed = ("https",) if settings.environment != "development" else ("https", "http")
    if parsed.scheme not in allowed:
        return f"The URL must use {' or '.join(allowed)}."
    if not parsed.host:
        return "The URL has no host."
    if parsed.user is not None or parsed.password is not None:
        return "The URL must not carry credentials."
    if parsed.fragment:
        return "The URL must not have a fragment."
    return None


async def check_target(url: str, settings: Settings) -> str | None:
    """The whole check at creation or change: the URL, then every address its host has."""
    problem = url_problem(url, settings)
    if problem is not None or settings.webhook_allow_private:
        return problem
    host = URL(url).host or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"The host {host!r} does not resolve."
    for *_, address in infos:
        reason = refusal(str(address[0]))
        if reason is not None:
            return f"The host {host!r} resolves to a refused address: {reason}."
    return None


def allowed_addresses(host: str, addresses: list[str]) -> list[str]:
    """At delivery: those of ``host``'s ``addresses`` a webhook may connect to; TargetRefused
    if none."""
    refusals = [refusal(address) for address in addresses]
    if all(refusals):
        reasons = "; ".join(str(r) for r in refusals)
        raise TargetRefused(f"refused: {host} resolves only to refused addresses ({reasons})")
    return [a for a, refused in zip(addresses, refusals, strict=True) if not refused]
