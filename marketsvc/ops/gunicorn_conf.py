"""gunicorn settings: ``gunicorn -c python:marketsvc.ops.gunicorn_conf marketsvc.app:gunicorn_app``.

Everything comes from ``MARKETSVC_*`` variables (``GUNICORN_CMD_ARGS`` still overrides). This
module must not import prometheus_client: the arbiter exports its multiprocess directory in
``on_starting`` and the library chooses its value store when first imported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import Protocol

from marketsvc.ops.logs import gunicorn_log_config
from marketsvc.settings import Settings
from marketsvc.store.migrate import upgrade

_settings = Settings.from_env()
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "aiohttp.GunicornUVLoopWebWorker"
# aiohttp's worker heartbeats every second: a worker silent this long is stuck, not busy
timeout = 30
# on SIGTERM a worker stops accepting and gives in-flight requests 95% of this to finish
graceful_timeout = _settings.graceful_timeout
keepalive = 5
# recycle workers now and then (bounded leaks); the jitter keeps them from restarting together
max_requests = _settings.max_requests
max_requests_jitter = max(1, max_requests // 10)
accesslog = None  # the app logs one structured line per request (marketsvc.ops.logs)
errorlog = "-"
loglevel = _settings.log_level.lower()
logconfig_dict = gunicorn_log_config(_settings.log_level, _settings.log_format)
# the heartbeat file lives in memory: a container's overlay disk can stall it
control_socket_disable = True  # several instances per host must not fight over one path
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None

log = logging.getLogger("marketsvc.gunicorn")


class _WorkerLog(Protocol):
    def info(self, msg: str, *args: object) -> None: ...


class _Worker(Protocol):
    """What these hooks use of aiohttp's ``GunicornUVLoopWebWorker`` (gunicorn has no types)."""

    pid: int
    loop: asyncio.AbstractEventLoop
    log: _WorkerLog

    def handle_quit(self, sig: int, frame: FrameType | None) -> None: ...


_created_metrics_dir: str | None = None


def on_starting(server: object) -> None:
    """Runs once in the arbiter, before any worker forks: the schema is current before serving."""
    _prepare_multiprocess_metrics()
    log.info("migrating the database to the newest revision")
    upgrade(_settings.database_url)
    log.info("migrations done")


def _prepare_multiprocess_metrics() -> None:
    """Workers inherit the directory; an operator's own directory is emptied of a past run's."""
    global _created_metrics_dir
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        _created_metrics_dir = tempfile.mkdtemp(prefix="marketsvc-metrics-")
        os.environ[MULTIPROC_ENV] = _created_metrics_dir
        return
    Path(given).mkdir(parents=True, exist_ok=True)
    for stale in Path(given).glob("*.db"):
        stale.unlink()


def post_worker_init(worker: _Worker) -> None:
    """Signal handlers are installed by now: a SIGTERM from here on is a graceful stop.

    aiohttp's worker notices a SIGTERM only at its next once-a-second tick, which eats into the
    grace period; its quit handler starts the same graceful stop at once.
    """
    worker.loop.add_signal_handler(signal.SIGTERM, worker.handle_quit, signal.SIGTERM, None)
    worker.log.info("worker ready (pid: %s)", worker.pid)


def child_exit(server: object, worker: _Worker) -> None:
    """A dead worker's live gauges (in-flight, pool) must stop counting in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: object) -> None:
    if _created_metrics_dir:
        shutil.rmtree(_created_metrics_dir, ignore_errors=True)
