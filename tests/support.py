"""Helpers the tests share: ID numbers, free ports, databases, and the running stack."""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from stdnum.cn import ric

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("CANBAO_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
SERVICES = ("registry", "collection")
CANBAO = Path(sys.executable).parent / "canbao"

T = TypeVar("T")


def resident_id(region: str = "340104", birth: str | None = None, seq: int | None = None) -> str:
    """A valid 18-character resident ID number (GB 11643 check character); random where not given."""
    if birth is None:
        birth = (date(1950, 1, 1) + timedelta(days=random.randrange(20_000))).strftime("%Y%m%d")
    body = f"{region}{birth}{random.randrange(1000) if seq is None else seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def with_wrong_check(id_number: str) -> str:
    wrong = "0" if id_number[-1] != "0" else "1"
    return id_number[:-1] + wrong


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


def recreate_pg_database(name: str) -> str:
    """Drop and create a PostgreSQL database; returns its URL."""

    async def run() -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(run())
    return pg_url(name)


def migrate(service: str, url: str) -> None:
    """Migrate a database the way operators do: the service's own `migrate` command."""
    env = {**os.environ, f"{service.upper()}_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", service, "migrate"], env=env, check=True, cwd=ROOT)


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0) -> T:
    """Poll until probe returns something truthy; the events cross a real broker, so they take a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.1)


@dataclass
class Stack:
    """The system started the way `make run` starts it: `canbao run` with its own ports and databases."""

    workdir: Path
    database_urls: dict[str, str]
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
        env = {**os.environ, "CANBAO_BROKER_PORT": str(self.broker_port), "CANBAO_VAR_DIR": str(self.workdir)}
        for service in SERVICES:
            prefix = service.upper()
            env[f"{prefix}_PORT"] = str(self.ports[service])
            env[f"{prefix}_DATABASE_URL"] = self.database_urls[service]
            env[f"{prefix}_OUTBOX_POLL_INTERVAL_S"] = "0.2"
        return env

    def start(self, timeout_s: float = 90.0) -> None:
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

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url(service), timeout=30.0)


def problem(response: httpx.Response) -> dict[str, Any]:
    """The error body every refusal carries; asserts its shape."""
    body: dict[str, Any] = response.json()["error"]
    assert set(body) >= {"code", "message_zh", "message_en"}
    assert body["message_zh"]
    assert body["message_en"]
    return body
