"""schemathesis against a real gunicorn on a seeded database: every operation, valid and invalid
data, and not one server error, schema violation or undocumented status.

Budget: MARKETSVC_FUZZ_EXAMPLES test cases per operation and phase (default 25). The run's
output is kept in artifacts/schemathesis-<backend>-<principal>.txt, its JUnit report beside it.
"""

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
# Every check schemathesis has, but two: positive_data_acceptance (it expects 2xx where valid
# data names rows that do not exist; tests/test_document_values.py fails on any 422 for data
# the document allows instead) and
# max_response_time (a timed assertion: on a busy CI machine it measures the machine).
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
    )
)
ARTIFACTS = ROOT / "artifacts"
WORKERS = 2


# An admin reaches everything; a customer meets the 403s and the 404s of others' records
# (schemathesis warns that those operations "only" answered 403 or 404: that is the point).
PRINCIPALS = {"admin": ("admin", "admin"), "customer": ("3", "customer")}


# CPython 3.11 inside schemathesis' coverage phase, now and then (a CI run of f85ba47: 4 "Runtime
# Error"s of its own, every one of the 3,975 generated cases passed): not the service's failure
FUZZER_CRASH = "SystemError: AST constructor recursion depth mismatch"


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.timeout(1000)  # the fuzzer gets 900 s (run below) plus a server to start
async def test_fuzzer_finds_no_server_error_and_no_contract_violation(
    database_url: str, backend: str, principal: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, jwt_secret=TEST_SECRET)
    await seed(settings, SeedPlan(customers=40, items=40, orders=60, users=10), progress=False)
    token = TokenCodec(settings).issue(*PRINCIPALS[principal])
    name = f"{backend}-{principal}"
    with live_server(
        database_url,
        tmp_path,
        workers=WORKERS,
        jwt_secret=TEST_SECRET,
        env={
            "MARKETSVC_EVENTS_MAX_WAIT_SECONDS": "1",  # an empty long-poll is not a hang
            # payments configured: unsigned requests are 401 (unset, the route is 503)
            "MARKETSVC_PAYMENTS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    ) as server:
        run = schemathesis(server.url, token, name, tmp_path)
        if run.returncode and FUZZER_CRASH in run.stdout:  # the fuzzer's own crash: once more
            run = schemathesis(server.url, token, name, tmp_path)
    log = server.log()
    report = ARTIFACTS / f"schemathesis-{name}.txt"
    report.write_text(run.stdout + run.stderr)
    (ARTIFACTS / f"schemathesis-{name}-server.log").write_text(log)
    print(f"\nschemathesis ({name}), output in {report}:\n{summary(run.stdout)}")
    assert run.returncode == 0, run.stdout[-6000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert cases, run.stdout[-3000:]
    assert cases[1] == cases[2]
    assert int(cases[1]) >= 500
    assert "Failures:" not in run.stdout
    assert "unhandled error" not in log, log[-4000:]
    assert log.count("Booting worker") == WORKERS, log[-4000:]  # no worker died and respawned


def schemathesis(
    url: str, token: str, name: str, workdir: Path
) -> subprocess.CompletedProcess[str]:
    ARTIFACTS.mkdir(exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--mode",
        "all",
        "--max-examples",
        EXAMPLES,
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        # gunicorn drops a keep-alive connection after 5 idle seconds; on a busy machine the
        # client can reuse it just then. Retried; a dead worker still fails the test (above).
        "--request-retries",
        "2",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(ARTIFACTS / f"schemathesis-{name}.xml"),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir)


def summary(output: str) -> str:
    start = output.find("SUMMARY")
    return output[output.rfind("\n", 0, start) + 1 :] if start >= 0 else output[-2000:]
