"""gunicorn: the configuration the issue asks for, and migrations once in the arbiter."""

from __future__ import annotations

import importlib
import json
import os

import pytest

from marketsvc.ops import gunicorn_conf
from marketsvc.store.migrate import head_revision
from tests.dbs import fresh_database
from tests.live import live_server


@pytest.fixture
def conf(monkeypatch: pytest.MonkeyPatch):
    """The config module as it reads a given environment."""

    def load(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(gunicorn_conf)

    yield load
    monkeypatch.undo()
    importlib.reload(gunicorn_conf)


def test_config_follows_the_environment(conf) -> None:
    c = conf(
        MARKETSVC_WORKERS="3",
        MARKETSVC_HOST="0.0.0.0",
        MARKETSVC_PORT="9001",
        MARKETSVC_GRACEFUL_TIMEOUT="12",
        MARKETSVC_MAX_REQUESTS="5000",
    )
    assert c.worker_class == "aiohttp.GunicornUVLoopWebWorker"
    assert (c.workers, c.bind, c.graceful_timeout) == (3, "0.0.0.0:9001", 12)
    assert (c.max_requests, c.max_requests_jitter) == (5000, 500)
    assert c.accesslog is None


def test_workers_default_to_the_cpu_count(conf, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARKETSVC_WORKERS", raising=False)
    assert conf().workers == (os.cpu_count() or 1)


def test_migrations_run_once_in_the_arbiter_before_workers_fork(backend, tmp_path) -> None:
    with (
        fresh_database(backend, tmp_path, migrate=False) as url,
        live_server(url, tmp_path, workers=2) as server,
    ):
        lines = [json.loads(line) for line in server.log().splitlines()]
    arbiter = server.process.pid
    messages = [(line["pid"], line["message"]) for line in lines]
    migrated = [pid for pid, m in messages if m == "migrations done"]
    ready = [i for i, (_, m) in enumerate(messages) if m.startswith("worker ready")]
    assert migrated == [arbiter]
    assert len(ready) == 2
    assert messages.index((arbiter, "migrations done")) < ready[0]
    upgrades = [m for _, m in messages if m.startswith("Running upgrade")]
    assert f"-> {head_revision()}," in upgrades[-1]
    assert len(upgrades) == len(set(upgrades))  # no revision applied twice
