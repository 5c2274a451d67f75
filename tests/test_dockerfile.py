"""The Dockerfile and compose.yaml, checked as far as possible without a container engine."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from marketsvc.settings import Settings
from tests.dbs import fresh_database
from tests.live import ROOT, free_port, live_server

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def exec_form(argument: str) -> list[str]:
    return json.loads(argument)


def env(name: str) -> str:
    [block] = [arg for arg in instructions("ENV") if f"{name}=" in arg]
    return dict(pair.split("=", 1) for pair in shlex.split(block))[name]


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    ignored = False
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            ignored = not negate
    return ignored


def test_every_copied_source_exists_and_is_in_the_build_context() -> None:
    sources = []
    for argument in instructions("COPY"):
        if argument.startswith("--from="):
            continue
        *paths, _destination = argument.split()
        sources += paths
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source), source
    for private in (".venv", "tests", ".git", "var", "scripts"):
        assert dockerignored(private), private


def test_multi_stage_slim_python_and_a_non_root_user() -> None:
    stages = instructions("FROM")
    assert len(stages) >= 2
    assert re.search(r"PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE)
    [user] = instructions("USER")
    assert user not in ("root", "0")


def test_the_entrypoint_runs_and_serve_is_a_command() -> None:
    argv = exec_form(instructions("ENTRYPOINT")[0]) + exec_form(instructions("CMD")[0])
    assert argv == ["python", "-m", "marketsvc", "serve"]
    command = [sys.executable, *argv[1:], "--help"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    assert "--workers" in out.stdout


def test_exposed_port_and_bind_match_the_configuration() -> None:
    assert instructions("EXPOSE") == [str(Settings().port)]
    assert env("MARKETSVC_PORT") == str(Settings().port)
    assert env("MARKETSVC_HOST") == "0.0.0.0"
    Settings.from_env({"MARKETSVC_DATABASE_URL": env("MARKETSVC_DATABASE_URL")})  # a valid URL


def healthcheck() -> list[str]:
    [argument] = instructions("HEALTHCHECK")
    return exec_form(argument.split(" CMD ", 1)[1])


def test_the_healthcheck_passes_on_a_serving_instance_and_fails_otherwise(tmp_path) -> None:
    command = healthcheck()
    assert command[0] == "python"

    def probe(port: int) -> int:
        environ = os.environ | {"MARKETSVC_PORT": str(port)}
        return subprocess.run([sys.executable, *command[1:]], env=environ, capture_output=True,
                              timeout=30).returncode  # fmt: skip

    with fresh_database("sqlite", tmp_path) as url, live_server(url, tmp_path) as server:
        assert probe(int(server.url.rsplit(":", 1)[1])) == 0
    assert probe(free_port()) != 0


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_runs_the_image_on_postgresql(compose) -> None:
    services = compose["services"]
    app, db = services["marketsvc"], services["postgres"]
    assert app["build"] == "."
    url = app["environment"]["MARKETSVC_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in url
    assert db["environment"]["POSTGRES_DB"] == url.rsplit("/", 1)[1]
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert [p.split(":")[-1] for p in app["ports"]] == instructions("EXPOSE")
