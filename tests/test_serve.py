"""The real command line: migrate, seed, and gunicorn serving what the README promises."""

from __future__ import annotations

import json
import subprocess
import urllib.request

from tests.conftest import TEST_SECRET
from tests.live import live_server, run_cli


def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {"MARKETSVC_DATABASE_URL": database_url, "MARKETSVC_JWT_SECRET": TEST_SECRET}
    return run_cli(*args, env=env)


def test_seeded_service_streams_customers_over_gunicorn(database_url, tmp_path) -> None:
    cli("seed", "--customers", "120", "--if-empty", database_url=database_url)
    again = cli("seed", "--if-empty", database_url=database_url)
    assert "nothing to do" in again.stderr
    token = cli("token", "--admin", database_url=database_url).stdout.strip()
    with live_server(database_url, tmp_path, workers=2, jwt_secret=TEST_SECRET) as server:
        request = urllib.request.Request(
            f"{server.url}/api/v1/customers", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            customers = json.load(resp)
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=10) as resp:
            assert resp.status == 200
    assert [c["id"] for c in customers] == list(range(1, 121))
    assert server.process.returncode == 0


def test_seed_command_reports_what_it_inserted(database_url) -> None:
    out = cli(
        "seed",
        "--customers",
        "5",
        "--orders",
        "0",
        "--random-seed",
        "42",
        database_url=database_url,
    )
    assert "5 customers" in out.stderr


def test_migrate_creates_the_folder_of_a_new_sqlite_database(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'not' / 'yet' / 'there.db'}"
    cli("migrate", database_url=url)
    assert (tmp_path / "not" / "yet" / "there.db").exists()
