"""The private names of other libraries that marketsvc relies on (all in store/sqlite_adapter.py)
are there, and an upgrade of those libraries fails here, loudly, before it fails in production."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_cursor

from marketsvc.store import sqlite_adapter
from marketsvc.store.sqlite_adapter import LibraryInternalsChanged, check_internals


@pytest.mark.parametrize("package", sorted(sqlite_adapter.VERIFIED_WITH))
def test_the_installed_versions_are_the_verified_ones(package: str) -> None:
    verified = sqlite_adapter.VERIFIED_WITH[package]
    assert version(package) == verified, (
        f"{package} {version(package)} is installed, but marketsvc.store.sqlite_adapter was "
        f"verified with {verified}: run tests/test_sqlite_adapter.py and the benchmark, "
        "then update VERIFIED_WITH and the pins together"
    )


def test_every_private_name_is_there() -> None:
    check_internals()


def test_a_missing_private_name_stops_the_adapter_with_its_name(monkeypatch) -> None:
    owner = next(c for c in AsyncAdapt_aiosqlite_cursor.__mro__ if "_execute_async" in vars(c))
    monkeypatch.delattr(owner, "_execute_async")  # as if an upgrade had renamed it
    with pytest.raises(
        LibraryInternalsChanged, match=r"AsyncAdapt_aiosqlite_cursor\._execute_async"
    ):
        sqlite_adapter.dbapi()


def test_a_changed_signature_stops_the_adapter(monkeypatch) -> None:
    async def _execute_async(self, operation, parameters, extra):  # one parameter more
        raise AssertionError("never called")

    monkeypatch.setattr(AsyncAdapt_aiosqlite_cursor, "_execute_async", _execute_async)
    with pytest.raises(LibraryInternalsChanged, match="now takes 3 parameters"):
        check_internals()
