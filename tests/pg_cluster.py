"""A PostgreSQL cluster the test owns (initdb + pg_ctl on a temporary directory and a free port).

Tests stop, kill and restart it at will; the shared server at 5432 is never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live import free_port

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Cluster:
    def __init__(self, bin_dir: str, data: Path, port: int) -> None:
        self.bin_dir, self.data, self.port = bin_dir, data, port
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), *args),
                       check=True, capture_output=True, timeout=60)  # fmt: skip

    def start(self, *settings: str) -> None:
        """Start and wait until it accepts connections; ``settings`` like ``max_connections=5``."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -F"
        options += "".join(f" -c {setting}" for setting in settings)
        self.ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back open transactions, disconnect; ``immediate``: die, recover later."""
        self.ctl("-m", mode, "-w", "stop")


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@contextmanager
def temporary_cluster(*settings: str) -> Iterator[Cluster]:
    if not PG_BIN:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    data = Path(tempfile.mkdtemp(prefix="marketsvc-pg-"))
    if os.geteuid() == 0:  # initdb refuses root; the cluster belongs to postgres
        shutil.chown(data, "postgres", "postgres")
    cluster = Cluster(PG_BIN[-1], data, free_port())
    try:
        subprocess.run(_as_postgres(f"{cluster.bin_dir}/initdb", "-D", str(data), "-A", "trust",
                                    "-U", "postgres", "--no-sync"),
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        cluster.start(*settings)
        yield cluster
    finally:
        subprocess.run(_as_postgres(f"{cluster.bin_dir}/pg_ctl", "-D", str(data), "-m",
                                    "immediate", "stop"), capture_output=True)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
