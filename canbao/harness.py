"""A running system started exactly as `make run` starts it, for tests and benchmarks: `canbao run` on free
ports, with the databases given, its output in a log file."""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
from stdnum.cn import ric

from canbao.stack import SERVICES, Child, StackError, migrate_all, start_broker, stop, wait_healthy
from shared.auth import Role, dev_token

CANBAO = Path(sys.executable).parent / "canbao"
# Inside Hefei's 2024 window, as `make run` starts by default.
DEMO_CLOCK_START = "2023-10-08T09:00:00+08:00"
ROOT = Path(__file__).resolve().parent.parent
# How long a started system may take to answer: migrations and start-up took over 90 s on this 2-core machine
# at load 20. A process that exits fails the wait at once, so only a slow start waits this long.
START_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def resident_id(region: str = "340104", birth: str | None = None, seq: int | None = None) -> str:
    """A valid 18-character resident ID number (GB 11643 check character); random where not given."""
    if birth is None:
        birth = (date(1950, 1, 1) + timedelta(days=random.randrange(20_000))).strftime("%Y%m%d")
    body = f"{region}{birth}{random.randrange(1000) if seq is None else seq:03d}"
    return body + ric.calc_check_digit(body + "0")


@dataclass
class Stack:
    """The system started the way `make run` starts it: `canbao run` with its own ports and databases."""

    workdir: Path
    database_urls: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    broker_port: int = field(default_factory=free_port)
    ports: dict[str, int] = field(default_factory=lambda: {s: free_port() for s in SERVICES})
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "stack.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "CANBAO_BROKER_PORT": str(self.broker_port),
            "CANBAO_VAR_DIR": str(self.workdir),
            "CANBAO_CLOCK_START": DEMO_CLOCK_START,
            # Tests that lose events on purpose see `canbao check` find them; the repair job has its own test.
            "CANBAO_REPAIR": "false",
        }
        for service in SERVICES:
            prefix = service.upper()
            env[f"{prefix}_PORT"] = str(self.ports[service])
            env[f"{prefix}_DATABASE_URL"] = self.database_urls[service]
            env[f"{prefix}_OUTBOX_POLL_INTERVAL_S"] = "0.2"
        # Files the services keep stay with this stack, not in the checkout's var/.
        env["REGISTRY_ROSTER_DIR"] = str(self.workdir / "rosters")
        env["REGISTRY_REMINDER_LOG"] = str(self.workdir / "reminders.log")
        env["COLLECTION_RECONCILIATION_DIR"] = str(self.workdir / "reconciliation")
        env["CANBAO_START_TIMEOUT_S"] = str(START_TIMEOUT_S)
        return env | self.extra_env

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open for the child's lifetime)
        self.process = subprocess.Popen(
            [str(CANBAO), "run"], env=self.env(), cwd=ROOT, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout_s
        while "Canbao is running" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"stack did not start:\n{self.log_path.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.2)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, service: str, token: str | None = None) -> httpx.AsyncClient:
        """A client of one service, as an administrator unless another token is given."""
        headers = {"Authorization": f"Bearer {token or dev_token(Role.ADMIN)}"}
        return httpx.AsyncClient(base_url=self.url(service), timeout=30.0, headers=headers)


@dataclass
class Parts(Stack):
    """The same system started piece by piece, so a test can kill, restart or add any one part: the broker,
    or a replica of a service (`python -m <service> serve`, each replica on its own port, one database)."""

    replicas: dict[tuple[str, int], subprocess.Popen[bytes]] = field(default_factory=dict)
    broker: subprocess.Popen[bytes] | None = None
    replica_ports: dict[tuple[str, int], int] = field(default_factory=dict)
    repairer: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        migrate_all(self.env())
        self.start_broker()
        for service in SERVICES:
            self.start_service(service, timeout_s=timeout_s)

    def start_broker(self) -> None:
        with open(self.workdir / "broker.log", "ab") as log:
            self.broker = start_broker("127.0.0.1", self.broker_port, log)

    def kill_broker(self) -> None:
        """SIGKILL: the broker's in-memory storage is gone with it."""
        assert self.broker is not None
        self.broker.kill()
        self.broker.wait()

    def url(self, service: str, replica: int = 0) -> str:
        return f"http://127.0.0.1:{self.replica_ports.get((service, replica), self.ports[service])}"

    def start_service(self, service: str, replica: int = 0, timeout_s: float = START_TIMEOUT_S) -> None:
        # A restarted replica keeps its port.
        default = self.ports[service] if replica == 0 else free_port()
        port = self.replica_ports.setdefault((service, replica), default)
        env = self.env() | {
            f"{service.upper()}_PORT": str(port),
            f"{service.upper()}_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            f"{service.upper()}_CLOCK_START": DEMO_CLOCK_START,
        }
        log = open(self.workdir / f"{service}-{replica}.log", "ab")  # noqa: SIM115  (the child's lifetime)
        process = subprocess.Popen(
            [sys.executable, "-m", service, "serve"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        self.replicas[(service, replica)] = process
        try:
            wait_healthy(self.url(service, replica), Child(f"{service}-{replica}", process), timeout_s)
        except StackError as exc:
            raise RuntimeError(f"{exc}:\n{self.log()[-4000:]}") from exc

    def start_repair(self, every_s: float, grace_s: float) -> None:
        """The repair job, as `canbao run` starts it, on a short interval."""
        env = self.env() | {
            "CANBAO_REGISTRY_URL": self.url("registry"),
            "CANBAO_COLLECTION_URL": self.url("collection"),
            "CANBAO_REPAIR_EVERY_S": str(every_s),
            "CANBAO_REPAIR_GRACE_S": str(grace_s),
        }
        log = open(self.workdir / "repair.log", "ab")  # noqa: SIM115  (the child's lifetime)
        self.repairer = subprocess.Popen(
            [sys.executable, "-m", "canbao", "repair"], env=env, cwd=ROOT, stdout=log, stderr=log
        )

    def signal(self, service: str, signum: signal.Signals, replica: int = 0) -> None:
        process = self.replicas.pop((service, replica))
        process.send_signal(signum)
        process.wait(60)

    def stop(self) -> int | None:
        if self.repairer is not None:
            stop(self.repairer, "repair")
        for (service, replica), process in self.replicas.items():
            stop(process, f"{service}-{replica}")
        self.replicas.clear()
        if self.broker is not None:
            stop(self.broker, "broker")
        return 0

    def log(self) -> str:
        return "\n".join(
            f"== {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in self.workdir.glob("*.log")
        )


async def fresh_databases(server: str, prefix: str) -> dict[str, str]:
    """A new PostgreSQL database per service on `server` (postgresql://host:port), `<prefix>_<service>`,
    dropped first if it was there: the services' database URLs."""
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        for service in SERVICES:
            await admin.execute(f'DROP DATABASE IF EXISTS "{prefix}_{service}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{prefix}_{service}"')
    finally:
        await admin.close()
    url = server.replace("postgresql://", "postgresql+asyncpg://")
    return {s: f"{url}/{prefix}_{s}" for s in SERVICES}


async def drop_databases(server: str, prefix: str) -> None:
    """Drop what `fresh_databases` made."""
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        for service in SERVICES:
            await admin.execute(f'DROP DATABASE IF EXISTS "{prefix}_{service}" WITH (FORCE)')
    finally:
        await admin.close()


@contextmanager
def bench_stack(
    postgres: str | None,
    prefix: str,
    *,
    tmp_prefix: str = "canbao-bench-",
    env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """A started stack for a benchmark, in a temporary directory: on fresh PostgreSQL databases
    `<prefix>_<service>` of `postgres` (postgresql://host:port; dropped again at the end), or on SQLite files
    in that directory when `postgres` is None; `env` adds to the services' environment. Stopped on the way
    out."""
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        workdir = Path(tmp)
        urls = (
            asyncio.run(fresh_databases(postgres, prefix))
            if postgres
            else {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES}
        )
        # Services log as a deployment does (docker-compose sets *_LOG_JSON): one JSON line per request. The
        # development console renderer cost ~11% of an enrollment POST's CPU, which no deployment pays.
        log_json = {f"{s.upper()}_LOG_JSON": "true" for s in SERVICES}
        stack = Stack(workdir, urls, extra_env=log_json | (env or {}))
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            if postgres:
                asyncio.run(drop_databases(postgres, prefix))
