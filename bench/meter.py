"""The CPU each part of a running stack spends, read from /proc: the services (with their worker processes),
the broker, the PostgreSQL backends serving the stack's databases, and the driver (this process).

    meter = CpuMeter(stack.process.pid, "postgresql://127.0.0.1:5432", databases)
    await meter.start()
    before = await meter.mark()
    ...
    spent = meter.spent(before, await meter.mark())  # {"registry": seconds, ..., "driver": seconds}
    await meter.stop()

Processes are sampled every second between start and stop, so one that ends between two marks (a pooled
backend replaced) loses at most its last second; one that began between them counts from zero. The stack's
process tree is walked at start and at each mark (the services' processes stay for the run), the backends
listed every second over one connection: the meter's own cost, counted in the driver's, stays small.
"""

import asyncio
import os
import time
from pathlib import Path

import asyncpg

from canbao.stack import SERVICES

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_DRIVER = 0  # the key of this process's own CPU in a mark


def cpu_s(pid: int) -> float | None:
    """User and system CPU a process has spent, from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


def _parents() -> dict[int, int]:
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def _kind(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if "tansu" in command:
        return "broker"
    return next((s for s in SERVICES if f"-m {s}" in command), "other")


class CpuMeter:
    """CPU seconds per part of the system between two marks."""

    def __init__(self, stack_pid: int | None, postgres: str | None, databases: list[str]) -> None:
        self._stack_pid = stack_pid
        self._postgres = postgres
        self._databases = databases
        self._last: dict[int, float] = {}  # every process seen: its CPU when last sampled
        self._kinds: dict[int, str] = {}
        self._stack: dict[int, str] = {}
        self._admin: asyncpg.Connection | None = None
        self._sampling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._postgres:
            self._admin = await asyncpg.connect(f"{self._postgres}/postgres")
        self._stack = self._stack_processes()
        await self._sample()
        self._sampling = asyncio.create_task(self._keep_sampling())

    async def stop(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
        if self._admin is not None:
            await self._admin.close()

    async def mark(self) -> dict[int, float]:
        """Every process's CPU so far (this one's under key 0)."""
        self._stack = self._stack_processes()
        await self._sample()
        return self._last | {_DRIVER: time.process_time()}

    def spent(self, before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
        """Seconds per part between two marks, in the order registry, collection, broker, postgresql (with
        a server), any other process of the stack, driver."""
        parts: dict[str, float] = dict.fromkeys([*SERVICES, "broker"], 0.0)
        if self._postgres:
            parts["postgresql"] = 0.0
        for pid, seconds in after.items():
            if pid != _DRIVER:
                kind = self._kinds[pid]
                parts[kind] = parts.get(kind, 0.0) + seconds - before.get(pid, 0.0)
        return parts | {"driver": after[_DRIVER] - before[_DRIVER]}

    async def _keep_sampling(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._sample()

    async def _sample(self) -> None:
        for pid, kind in (self._stack | await self._backends()).items():
            spent = cpu_s(pid)
            if spent is not None:
                self._kinds[pid] = kind
                self._last[pid] = spent

    def _stack_processes(self) -> dict[int, str]:
        """The stack's descendants, each of the kind of the stack's child it descends from."""
        if self._stack_pid is None:
            return {}
        parents = _parents()
        found: dict[int, str] = {}
        for pid in parents:
            chain = [pid]
            while chain[-1] not in (self._stack_pid, 0, 1) and len(chain) < 20:
                parent = parents.get(chain[-1])
                if parent is None:
                    break
                chain.append(parent)
            if chain[-1] == self._stack_pid and len(chain) > 1:
                found[pid] = _kind(chain[-2])
        return found

    async def _backends(self) -> dict[int, str]:
        if self._admin is None:
            return {}
        rows = await self._admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])", self._databases
        )
        return {row["pid"]: "postgresql" for row in rows}
