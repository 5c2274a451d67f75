"""Bearer tokens: who may call, and what a bad token gets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from marketsvc.app import create_app
from marketsvc.settings import Settings, SettingsError
from marketsvc.web.auth import LEEWAY_SECONDS, TokenCodec
from tests.conftest import TEST_SECRET
from tests.live import run_cli


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(claims: dict, key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode({"exp": int(time.time()) + 60} | claims, key, algorithm=algorithm)


def hs256_signed_with(claims: dict, key: bytes) -> str:
    """An HS256 token whose HMAC key is ``key`` (PyJWT itself refuses PEM keys as secrets)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"exp": int(time.time()) + 60} | claims).encode())
    signature = b64(hmac.new(key, header + b"." + payload, hashlib.sha256).digest())
    return (header + b"." + payload + b"." + signature).decode()


async def assert_401(resp) -> None:
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.content_type == "application/problem+json"


# Minted when each case runs, never at import: a token made at collection time expires before the
# PostgreSQL half of a run, and every case would then test expiry instead of what it names.
BAD_CREDENTIALS = {
    "none": lambda: {},
    "basic": lambda: {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
    "empty": lambda: {"Authorization": "Bearer"},
    "garbage": lambda: {"Authorization": "Bearer not.a.jwt"},
    "bad-signature": lambda: bearer(
        signed({"sub": "admin", "role": "admin"}, key="another-secret-of-enough-length-xyz")
    ),
    "expired": lambda: bearer(
        signed({"sub": "admin", "role": "admin", "exp": int(time.time()) - 3600})
    ),
    "unknown-role": lambda: bearer(signed({"sub": "admin", "role": "root"})),
    "no-subject": lambda: bearer(signed({"role": "admin"})),
    "customer-sub-not-id": lambda: bearer(signed({"sub": "abc", "role": "customer"})),
    "customer-sub-zero": lambda: bearer(signed({"sub": "0", "role": "customer"})),
    # "\u0661" is an Arabic-Indic one: isdecimal() and int() == 1, yet a path refuses it as an id
    "customer-sub-arabic-indic": lambda: bearer(signed({"sub": "\u0661", "role": "customer"})),
    "customer-sub-over-max-id": lambda: bearer(signed({"sub": str(2**63), "role": "customer"})),
    "seller-sub-not-id": lambda: bearer(signed({"sub": "shop", "role": "seller"})),
    "seller-sub-zero": lambda: bearer(signed({"sub": "0", "role": "seller"})),
    "no-expiry": lambda: bearer(
        jwt.encode({"sub": "admin", "role": "admin"}, TEST_SECRET, algorithm="HS256")
    ),
    "alg-none": lambda: bearer(
        jwt.encode({"sub": "admin", "role": "admin", "exp": 9999999999}, None, algorithm="none")
    ),
}


@pytest.mark.parametrize("case", BAD_CREDENTIALS)
async def test_bad_credentials_are_401_with_www_authenticate(client, case: str) -> None:
    await assert_401(await client.get("/api/v1/customers", headers=BAD_CREDENTIALS[case]()))


async def test_expiry_has_a_small_leeway(client) -> None:
    just_expired = signed(
        {"sub": "admin", "role": "admin", "exp": int(time.time()) - LEEWAY_SECONDS // 2}
    )
    assert (await client.get("/api/v1/customers", headers=bearer(just_expired))).status == 200


async def test_valid_token_without_the_right_is_403(client, as_customer) -> None:
    resp = await client.get("/api/v1/customers", headers=as_customer(1))
    assert resp.status == 403
    assert resp.content_type == "application/problem+json"


async def test_catalogue_reads_are_public_and_writes_are_not(client, as_customer) -> None:
    assert (await client.get("/api/v1/items")).status == 200
    body = {"name": "x", "price": "1.00", "stock": 1}
    await assert_401(await client.post("/api/v1/items", json=body))
    assert (await client.post("/api/v1/items", json=body, headers=as_customer(1))).status == 403


async def test_an_undeclared_api_route_is_admin_only(
    aiohttp_client, settings, as_customer, admin
) -> None:
    async def undeclared(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = create_app(settings)
    app.router.add_get("/api/v1/undeclared", undeclared)
    client = await aiohttp_client(app)
    await assert_401(await client.get("/api/v1/undeclared"))
    assert (await client.get("/api/v1/undeclared", headers=as_customer(1))).status == 403
    assert (await client.get("/api/v1/undeclared", headers=admin)).status == 200


async def test_rs256_tokens_verify_against_a_public_key_file(
    aiohttp_client, settings, tmp_path: Path
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "issuer.pem").write_bytes(public_pem)
    app_settings = Settings(
        database_url=settings.database_url,
        jwt_secret=TEST_SECRET,
        jwt_public_key_file=str(tmp_path / "issuer.pem"),
    )
    client = await aiohttp_client(create_app(app_settings))
    good = signed({"sub": "admin", "role": "admin"}, key=private, algorithm="RS256")
    assert (await client.get("/api/v1/customers", headers=bearer(good))).status == 200
    forged = hs256_signed_with({"sub": "admin", "role": "admin"}, public_pem)  # alg confusion
    await assert_401(await client.get("/api/v1/customers", headers=bearer(forged)))
    still_hs256 = TokenCodec(app_settings).issue("admin", "admin")
    assert (await client.get("/api/v1/customers", headers=bearer(still_hs256))).status == 200


def test_service_refuses_to_start_outside_development_without_a_strong_secret() -> None:
    with pytest.raises(SettingsError, match="MARKETSVC_JWT_SECRET"):
        Settings.from_env({"MARKETSVC_ENV": "production"})
    with pytest.raises(SettingsError, match="MARKETSVC_JWT_SECRET"):
        Settings.from_env({"MARKETSVC_ENV": "production", "MARKETSVC_JWT_SECRET": "short"})
    assert Settings.from_env({"MARKETSVC_ENV": "production", "MARKETSVC_JWT_SECRET": "k" * 32})
    done = run_cli("serve", env={"MARKETSVC_ENV": "production"}, check=False, timeout=60)
    assert done.returncode != 0
    assert "MARKETSVC_JWT_SECRET" in done.stderr


@pytest.mark.parametrize(
    ("args", "claims"),
    [
        (["--admin"], {"sub": "admin", "role": "admin"}),
        (["--customer", "42", "--ttl", "120"], {"sub": "42", "role": "customer"}),
        (["--seller", "3"], {"sub": "3", "role": "seller"}),
    ],
)
def test_token_command_prints_a_verifiable_token(args, claims) -> None:
    out = run_cli("token", *args, env={"MARKETSVC_JWT_SECRET": TEST_SECRET}, timeout=60)
    decoded = jwt.decode(out.stdout.strip(), TEST_SECRET, algorithms=["HS256"])
    assert claims.items() <= decoded.items()
    if "--ttl" in args:
        assert decoded["exp"] - decoded["iat"] == 120
