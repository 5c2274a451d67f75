"""gunicorn settings: ``gunicorn -c python:marketsvc.gunicorn_conf marketsvc.app:gunicorn_app``."""

from marketsvc.migrate import upgrade
from marketsvc.settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "aiohttp.GunicornUVLoopWebWorker"
timeout = 60
graceful_timeout = 30
keepalive = 5
max_requests = 20_000
max_requests_jitter = 2_000
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()


def on_starting(server: object) -> None:
    """Runs once in the arbiter, before any worker forks: the schema is current before serving."""
    upgrade(_settings.database_url)


def post_worker_init(worker: object) -> None:
    """Signal handlers are installed by now: a SIGTERM from here on is a graceful stop."""
    worker.log.info("worker ready (pid: %s)", worker.pid)  # type: ignore[attr-defined]
