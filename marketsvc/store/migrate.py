"""Programmatic alembic: upgrade, and the head revision the running code expects."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from marketsvc.store.engine import ensure_sqlite_directory

ROOT = Path(__file__).resolve().parents[2]  # the repository: alembic.ini, migrations/


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Call outside a running event loop."""
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)


@functools.cache
def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("unused://"))
    head = script.get_current_head()
    assert head is not None, "no migrations found"
    return head
