"""schemathesis against both running services' OpenAPI documents: generated requests (valid, invalid,
boundary) never get a 5xx, and every response matches what the document says: status, media type, body
and headers. Bounded examples keep it to seconds per service. It runs on PostgreSQL, the production database,
only: the same requests on SQLite found nothing more and cost minutes of the suite (the other end-to-end tests
cover SQLite)."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from shared.auth import Role, dev_token
from tests.support import SERVICES, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

ST = Path(sys.executable).parent / "st"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
@pytest.mark.parametrize("service", SERVICES)
async def test_generated_requests_get_no_5xx_and_documented_responses(
    stack: Stack, service: str, tmp_path: Path
) -> None:
    command = [
        str(ST),
        "run",
        f"{stack.url(service)}/openapi.json",
        "--header",
        f"Authorization: Bearer {dev_token(Role.ADMIN, sub='schemathesis')}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "15",
        "--generation-deterministic",
        "--no-color",
    ]
    # A long-poll for something that never comes lasts its `wait_s` (up to 30 s), past schemathesis's 10 s
    # request timeout: the waits are fuzzed at one second (their bounds are tested in the services' tests).
    (tmp_path / "schemathesis.toml").write_text('[parameters]\n"query.wait_s" = 1\n')
    result = await asyncio.to_thread(
        subprocess.run, command, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    # Every operation was exercised, not skipped for want of a schema.
    assert "Selected:" in report
    selected = report.split("Selected:", 1)[1].split()[0]  # "35/35"
    tested = report.split("Tested:", 1)[1].split()[0]
    assert selected.split("/")[0] == tested, report[-3000:]
