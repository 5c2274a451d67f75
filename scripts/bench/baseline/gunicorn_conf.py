"""The baseline runs under exactly marketsvc's gunicorn settings, minus its migration hook."""

from marketsvc.ops import gunicorn_conf as _m

bind = _m.bind
workers = _m.workers
worker_class = _m.worker_class
timeout = _m.timeout
graceful_timeout = _m.graceful_timeout
keepalive = _m.keepalive
max_requests = _m.max_requests
max_requests_jitter = _m.max_requests_jitter
accesslog = _m.accesslog
errorlog = _m.errorlog
loglevel = _m.loglevel
post_worker_init = _m.post_worker_init
