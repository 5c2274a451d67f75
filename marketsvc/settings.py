"""Typed settings read once from ``MARKETSVC_*`` environment variables."""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///" + str(Path("var") / "marketsvc.db")
DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"
LOG_FORMATS = ("json", "human")  # unset: JSON, or human lines on a terminal


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise SettingsError(f"{name} must be >= {low}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


# Seconds between webhook attempts (each the ceiling of a random, "full jitter" wait); the last
# repeats until MARKETSVC_WEBHOOK_RETRY_FOR has passed since the first attempt.
DEFAULT_WEBHOOK_RETRY_SCHEDULE = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(name: str, raw: str) -> float:
    """``"90"``, ``"90s"``, ``"2m"``, ``"12h"``, ``"5d"``: seconds, positive."""
    text = raw.strip().lower()
    unit = _UNITS.get(text[-1:])
    try:
        value = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise SettingsError(
            f"{name} must be a duration like 30, 30s, 2m, 12h or 5d, got {raw!r}"
        ) from None
    if not value > 0:
        raise SettingsError(f"{name} must be a positive duration, got {raw!r}")
    return value


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return default if raw is None or raw == "" else _seconds(name, raw)


def _durations(env: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return tuple(_seconds(name, part) for part in raw.split(","))


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "0").strip().lower()
    if raw not in ("0", "1", "true", "false"):
        raise SettingsError(f"{name} must be 0 or 1, got {raw!r}")
    return raw in ("1", "true")


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    environment: str = "development"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key_file: str | None = None
    max_body_bytes: int = 1024 * 1024
    pool_size: int = 15
    max_overflow: int = 0
    pool_timeout: float = 5.0
    statement_timeout: float = 10.0
    connect_timeout: float = 3.0
    stream_chunk_rows: int = 500
    slow_query_ms: int = 200
    log_level: str = "INFO"
    log_format: str | None = None
    graceful_timeout: int = 30
    max_requests: int = 20_000
    idempotency_ttl_hours: int = 24
    events_source: str = "/marketsvc"
    events_retention_days: int = 30
    events_heartbeat_seconds: float = 15.0
    events_max_wait_seconds: int = 30
    webhook_timeout_seconds: float = 10.0
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_SCHEDULE
    webhook_retry_for_seconds: float = 24 * 3600.0
    webhook_disable_after_seconds: float = 5 * 24 * 3600.0
    webhook_allow_private: bool = False
    webhook_poll_seconds: float = 1.0
    webhook_lease_seconds: float = 30.0
    payments_webhook_secret: str | None = None  # whsec_...: POST /api/v1/payments/events
    nats_url: str | None = None  # set: the NATS relay publishes every event (services.nats_relay)
    nats_stream: str = "MARKETSVC_EVENTS"
    nats_subject_prefix: str = "marketsvc.events"
    nats_lease_seconds: int = 30

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        settings = cls(
            database_url=env.get("MARKETSVC_DATABASE_URL") or d.database_url,
            host=env.get("MARKETSVC_HOST") or d.host,
            port=_int(env, "MARKETSVC_PORT", d.port, 1),
            workers=_int(env, "MARKETSVC_WORKERS", d.workers, 1),
            environment=env.get("MARKETSVC_ENV") or d.environment,
            jwt_secret=env.get("MARKETSVC_JWT_SECRET") or d.jwt_secret,
            jwt_public_key_file=env.get("MARKETSVC_JWT_PUBLIC_KEY_FILE") or None,
            max_body_bytes=_int(env, "MARKETSVC_MAX_BODY_BYTES", d.max_body_bytes, 1),
            pool_size=_int(env, "MARKETSVC_DB_POOL_SIZE", d.pool_size, 1),
            max_overflow=_int(env, "MARKETSVC_DB_MAX_OVERFLOW", d.max_overflow),
            pool_timeout=_float(env, "MARKETSVC_DB_POOL_TIMEOUT", d.pool_timeout),
            statement_timeout=_float(env, "MARKETSVC_DB_TIMEOUT", d.statement_timeout),
            connect_timeout=_float(env, "MARKETSVC_DB_CONNECT_TIMEOUT", d.connect_timeout),
            stream_chunk_rows=_int(env, "MARKETSVC_STREAM_CHUNK_ROWS", d.stream_chunk_rows, 1),
            slow_query_ms=_int(env, "MARKETSVC_SLOW_QUERY_MS", d.slow_query_ms),
            log_level=(env.get("MARKETSVC_LOG_LEVEL") or d.log_level).upper(),
            log_format=(env.get("MARKETSVC_LOG_FORMAT") or "").lower() or None,
            graceful_timeout=_int(env, "MARKETSVC_GRACEFUL_TIMEOUT", d.graceful_timeout, 1),
            max_requests=_int(env, "MARKETSVC_MAX_REQUESTS", d.max_requests),
            idempotency_ttl_hours=_int(
                env, "MARKETSVC_IDEMPOTENCY_TTL_HOURS", d.idempotency_ttl_hours, 24
            ),
            events_source=env.get("MARKETSVC_EVENTS_SOURCE") or d.events_source,
            events_retention_days=_int(env, "MARKETSVC_EVENTS_RETENTION_DAYS", 30, 7),
            events_heartbeat_seconds=_float(env, "MARKETSVC_EVENTS_HEARTBEAT_SECONDS", 15.0),
            events_max_wait_seconds=_int(env, "MARKETSVC_EVENTS_MAX_WAIT_SECONDS", 30),
            webhook_timeout_seconds=_duration(env, "MARKETSVC_WEBHOOK_TIMEOUT_SECONDS", 10.0),
            webhook_retry_schedule=_durations(
                env, "MARKETSVC_WEBHOOK_RETRY_SCHEDULE", d.webhook_retry_schedule
            ),
            webhook_retry_for_seconds=_duration(
                env, "MARKETSVC_WEBHOOK_RETRY_FOR", d.webhook_retry_for_seconds
            ),
            webhook_disable_after_seconds=_duration(
                env, "MARKETSVC_WEBHOOK_DISABLE_AFTER", d.webhook_disable_after_seconds
            ),
            webhook_allow_private=_flag(env, "MARKETSVC_WEBHOOK_ALLOW_PRIVATE"),
            webhook_poll_seconds=_duration(env, "MARKETSVC_WEBHOOK_POLL_SECONDS", 1.0),
            webhook_lease_seconds=_duration(env, "MARKETSVC_WEBHOOK_LEASE_SECONDS", 30.0),
            payments_webhook_secret=env.get("MARKETSVC_PAYMENTS_WEBHOOK_SECRET") or None,
            nats_url=env.get("MARKETSVC_NATS_URL") or None,
            nats_stream=env.get("MARKETSVC_NATS_STREAM") or d.nats_stream,
            nats_subject_prefix=env.get("MARKETSVC_NATS_SUBJECT_PREFIX") or d.nats_subject_prefix,
            nats_lease_seconds=_int(env, "MARKETSVC_NATS_LEASE_SECONDS", d.nats_lease_seconds, 1),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError(
                "MARKETSVC_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        if self.log_format is not None and self.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"MARKETSVC_LOG_FORMAT must be json or human, got {self.log_format!r}"
            )
        if self.log_level not in logging.getLevelNamesMapping():
            raise SettingsError(
                f"MARKETSVC_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
                f"got {self.log_level!r}"
            )
        if not 1 <= len(self.events_source) <= 255:
            raise SettingsError("MARKETSVC_EVENTS_SOURCE must be 1 to 255 characters")
        if self.events_heartbeat_seconds <= 0:
            raise SettingsError("MARKETSVC_EVENTS_HEARTBEAT_SECONDS must be > 0")
        if self.events_max_wait_seconds > 30:
            raise SettingsError("MARKETSVC_EVENTS_MAX_WAIT_SECONDS must be 0 to 30")
        if self.webhook_timeout_seconds <= 0 or self.webhook_poll_seconds <= 0:
            raise SettingsError(
                "MARKETSVC_WEBHOOK_TIMEOUT_SECONDS and MARKETSVC_WEBHOOK_POLL_SECONDS must be > 0"
            )
        if self.webhook_lease_seconds < 1:
            raise SettingsError("MARKETSVC_WEBHOOK_LEASE_SECONDS must be at least 1 second")
        if self.payments_webhook_secret is not None:
            _check_webhook_secret("MARKETSVC_PAYMENTS_WEBHOOK_SECRET", self.payments_webhook_secret)
        _check_nats(self)
        weak_secret = self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32
        if self.environment != "development" and not self.jwt_public_key_file and weak_secret:
            raise SettingsError(
                "MARKETSVC_JWT_SECRET must be set to at least 32 characters "
                f"when MARKETSVC_ENV={self.environment!r}"
            )


def _check_webhook_secret(name: str, secret: str) -> None:
    """A Standard Webhooks secret: ``whsec_`` and base64 of at least 24 bytes."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError:
        key = b""
    if not secret.startswith("whsec_") or len(key) < 24:
        raise SettingsError(f"{name} must be whsec_ followed by base64 of at least 24 bytes")


NATS_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
NATS_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _check_nats(settings: Settings) -> None:
    if settings.nats_url is not None and not settings.nats_url.startswith(("nats://", "tls://")):
        raise SettingsError("MARKETSVC_NATS_URL must start with nats:// or tls://")
    if not NATS_NAME.fullmatch(settings.nats_stream):
        raise SettingsError("MARKETSVC_NATS_STREAM must be 1-64 letters, digits, _ or -")
    if not all(NATS_TOKEN.fullmatch(t) for t in settings.nats_subject_prefix.split(".")):
        raise SettingsError(
            "MARKETSVC_NATS_SUBJECT_PREFIX must be dot-separated tokens of letters, digits, _ or -"
        )
