"""Settings: every MARKETSVC_* value is read once and typed; a bad one stops the service."""

from __future__ import annotations

import pytest

from marketsvc.settings import Settings, SettingsError
from tests.live import run_cli


def test_values_are_typed() -> None:
    settings = Settings.from_env(
        {
            "MARKETSVC_LOG_FORMAT": "Human",
            "MARKETSVC_LOG_LEVEL": "warning",
            "MARKETSVC_GRACEFUL_TIMEOUT": "12",
            "MARKETSVC_MAX_REQUESTS": "0",
        }
    )
    assert settings.log_format == "human"
    assert settings.log_level == "WARNING"
    assert (settings.graceful_timeout, settings.max_requests) == (12, 0)
    assert Settings.from_env({}).log_format is None  # unset: decided by the stream


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MARKETSVC_LOG_FORMAT", "xml"),
        ("MARKETSVC_LOG_LEVEL", "LOUD"),
        ("MARKETSVC_GRACEFUL_TIMEOUT", "0"),
        ("MARKETSVC_GRACEFUL_TIMEOUT", "soon"),
        ("MARKETSVC_MAX_REQUESTS", "-1"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_a_bad_log_format_stops_the_service() -> None:
    done = run_cli("serve", env={"MARKETSVC_LOG_FORMAT": "xml"}, check=False, timeout=60)
    assert done.returncode != 0
    assert "MARKETSVC_LOG_FORMAT must be json or human" in done.stderr
