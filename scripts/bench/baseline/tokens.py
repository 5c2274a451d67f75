"""The bearer check, as marketsvc's ``TokenCodec`` does it: verified once per token, then
remembered (keyed by the whole signed string) until it expires."""

from __future__ import annotations

import os
import time

import jwt

from baseline.errors import problem

SECRET = os.environ.get("MARKETSVC_JWT_SECRET", "")
LEEWAY_SECONDS = 30
CACHE_SIZE = 10_000
# token -> (the customer id it is limited to, or None for an admin; its expiry)
_verified: dict[str, tuple[int | None, float]] = {}


def verified_scope(token: str) -> int | None:
    hit = _verified.get(token)
    if hit is not None and time.time() <= hit[1] + LEEWAY_SECONDS:
        return hit[0]
    try:
        claims = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub"]},
        )
    except jwt.InvalidTokenError as exc:
        raise problem(401, f"the token is not valid: {exc}") from None
    role, subject = claims.get("role"), str(claims["sub"])
    if role == "admin":
        scope = None
    elif role == "customer" and subject.isdecimal():
        scope = int(subject)
    else:
        raise problem(401, "the token names no known role")
    if len(_verified) >= CACHE_SIZE:
        _verified.clear()
    _verified[token] = (scope, float(claims["exp"]))
    return scope
