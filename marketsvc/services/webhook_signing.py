"""Standard Webhooks signatures (https://www.standardwebhooks.com/): secrets and headers.

A secret is ``whsec_`` + base64 of 24 random bytes. A delivery carries ``webhook-id`` (the
CloudEvent id: receivers dedup on it), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,`` + base64 HMAC-SHA256, keyed by the secret's bytes, of
``<id>.<timestamp>.<body>``; during a rotation one such signature per valid secret, separated
by spaces. Written here with ``hmac`` so that the tests can check it against an implementation
that is not the service's (the ``standardwebhooks`` package, and the spec's test vector).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }
