"""Hostile files sent to the running registry (issue 16, files): its memory stays bounded, it keeps serving.

Found before: a 3 MB .xlsx whose shared strings inflate to 3 GB took the registry from 439 MB to 3.1 GB, and
it never came down; a 72 MB CSV with 8 million columns a line peaked at 1.37 GB. Here the registry runs as in
production (`python -m registry serve`, its own process); each hostile file is uploaded over HTTP and refused
with 422, while the process's resident memory (VmRSS and its peak VmHWM, from /proc/<pid>/status) stays within
BOUND of what it used idle. Afterwards it answers a good roster as usual."""

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from canbao.harness import Parts
from tests import hostile_files
from tests.spreadsheets import csv_bytes
from tests.support import SERVICES, resident_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

MiB = 1024 * 1024
BOUND = 300 * MiB
HEFEI = {"region_code": "340104", "coverage_year": "2024"}
FORM = {"kind": "subsidy", "category": "特困人员", "department": "蜀山区民政局", "uploaded_by": "dept-01"}


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Parts]:
    workdir = tmp_path_factory.mktemp("hostile")
    urls = {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES}
    running = Parts(workdir, urls)
    running.start()
    yield running
    running.stop()


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


class Sampler(threading.Thread):
    """The highest VmRSS seen while a request runs (VmHWM says the same, this says when)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.highest = pid, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            self.highest = max(self.highest, memory(self.pid)["VmRSS"])

    def __enter__(self) -> "Sampler":
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join()


async def send_roster(client: httpx.AsyncClient, filename: str, content: bytes) -> httpx.Response:
    return await client.post("/v1/rosters", data=HEFEI | FORM, files={"file": (filename, content)})


def hostile() -> Iterator[tuple[str, bytes, str]]:
    """Built one at a time, so that the test process holds one at once."""
    # 1.5 GB of shared strings in 2 MB (about the found one's ratio), declared truly, then declared as 64 KiB.
    yield "bomb.xlsx", hostile_files.zip_bomb(1500 * MiB), "compression_ratio_too_high"
    yield "lying-bomb.xlsx", hostile_files.zip_bomb(1500 * MiB, declared_bytes=64 * 1024), "unreadable"
    # 64 MB, 8 million cells in one line (the csv module makes each a string of its own).
    yield "8m-columns.csv", hostile_files.many_columns_csv(8_000_000), "row_too_long"
    yield "long-line.csv", hostile_files.long_line_csv(50 * MiB), "row_too_long"
    yield "long-quoted.csv", hostile_files.long_quoted_csv(100, 30_000), "row_too_long"
    yield "wide.xlsx", hostile_files.wide_row_xlsx(200_000), "too_many_cells"
    yield "long-row.xlsx", hostile_files.long_row_xlsx(60, 40_000), "row_too_long"


async def test_hostile_files_leave_the_registrys_memory_bounded_and_it_keeps_serving(parts: Parts) -> None:
    pid = parts.replicas[("registry", 0)].pid
    async with parts.client("registry") as client:
        client.timeout = httpx.Timeout(300.0)
        # Warm: a real roster through the same path first, so that idle means ready.
        warm = csv_bytes(["姓名", "身份证号码"], [["甲", resident_id()]], "utf-8")
        assert (await send_roster(client, "warm.csv", warm)).status_code == 201
        await asyncio.sleep(1.0)
        idle = memory(pid)["VmRSS"]

        for filename, content, reason in hostile():
            with Sampler(pid) as sampler:
                response = await send_roster(client, filename, content)
            del content
            grew = sampler.highest - idle
            assert grew < BOUND, f"{filename}: VmRSS {idle / MiB:.0f} MB idle, {sampler.highest / MiB:.0f} MB"
            assert response.status_code == 422, (filename, response.text[:300])
            error = response.json()["error"]
            assert (error["code"], error["details"]["reason"]) == ("roster_file_invalid", reason), filename
            assert (await client.get("/healthz")).status_code == 200

        peak = memory(pid)["VmHWM"]
        assert peak - idle < BOUND, f"VmHWM {peak / MiB:.0f} MB, idle {idle / MiB:.0f} MB"
        assert memory(pid)["VmRSS"] - idle < BOUND

        # Nothing of them was kept, and a good roster goes through as before.
        kept = sorted(p.name for p in (parts.workdir / "rosters").iterdir())
        assert [Path(name).suffix for name in kept] == [".csv"], kept  # the warm-up's
        good = csv_bytes(["姓名", "身份证号码"], [["乙", resident_id()], ["丙", resident_id()]], "utf-8")
        created = await send_roster(client, "good.csv", good)
        assert created.status_code == 201, created.text
        upload_id = created.json()["upload_id"]
        for _ in range(100):
            state = (await client.get(f"/v1/rosters/{upload_id}")).json()
            if state["status"] != "pending":
                break
            await asyncio.sleep(0.2)
        assert (state["status"], state["rows_accepted"]) == ("validated", 2), state
