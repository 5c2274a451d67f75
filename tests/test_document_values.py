"""Values generated from the served document (schemathesis, positive data only) are accepted:
any 422 for them fails, unless it is a rule the document can only state in words (see
tests/schemathesis_document_values.py). Budget: MARKETSVC_FUZZ_EXAMPLES per operation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from marketsvc.settings import Settings
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.auth import TokenCodec
from tests.conftest import TEST_SECRET
from tests.live import ROOT, live_server

pytestmark = pytest.mark.slow

EXAMPLES = os.environ.get("MARKETSVC_FUZZ_EXAMPLES", "25")
HOOKS = Path(__file__).with_name("schemathesis_document_values.py")
ARTIFACTS = ROOT / "artifacts"


@pytest.mark.timeout(700)
async def test_every_value_the_document_allows_is_accepted(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, jwt_secret=TEST_SECRET)
    await seed(settings, SeedPlan(customers=20, items=20, orders=20, users=5), progress=False)
    token = TokenCodec(settings).issue("admin", "admin")
    with live_server(
        database_url,
        tmp_path,
        workers=1,
        jwt_secret=TEST_SECRET,
        env={
            "MARKETSVC_EVENTS_MAX_WAIT_SECONDS": "1",  # a long-poll the values ask for is short
            # payments configured: unsigned requests are 401 (unset, the route is 503)
            "MARKETSVC_PAYMENTS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    ) as server:
        run = schemathesis(server.url, token, tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"document-values-{backend}.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert cases, run.stdout[-3000:]
    assert cases[1] == cases[2]
    assert int(cases[1]) >= 100


def schemathesis(url: str, token: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,documented_values_are_accepted",
            "--mode",
            "positive",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
        env=os.environ | {"SCHEMATHESIS_HOOKS": str(HOOKS)},
    )
