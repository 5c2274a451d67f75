# syntax=docker/dockerfile:1
# marketsvc: gunicorn + aiohttp's uvloop worker. Migrations run once in the arbiter at start-up.
#   docker build -t marketsvc .
#   docker run -p 8080:8080 -e MARKETSVC_JWT_SECRET=... marketsvc

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt constraints.txt /tmp/
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt -c /tmp/constraints.txt

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 marketsvc \
 && useradd --system --uid 10001 --gid marketsvc --home-dir /app --shell /usr/sbin/nologin marketsvc
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY marketsvc ./marketsvc
RUN mkdir var && chown marketsvc:marketsvc var
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MARKETSVC_HOST=0.0.0.0 \
    MARKETSVC_PORT=8080 \
    MARKETSVC_DATABASE_URL=sqlite+aiosqlite:////app/var/marketsvc.db
USER marketsvc
VOLUME ["/app/var"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MARKETSVC_PORT', '8080') + '/healthz', timeout=4)"]
# gunicorn's arbiter migrates, then forks the workers; SIGTERM stops them gracefully
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "marketsvc"]
CMD ["serve"]
