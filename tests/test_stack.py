"""`canbao run` as a newcomer meets it (issue 17): a port already taken is named with the variable that
moves it, before anything starts; and when `canbao run` itself is killed outright, its children do not live on
holding the ports."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from canbao.harness import CANBAO, ROOT, Stack, free_port
from canbao.stack import SERVICES


@pytest.fixture
def listener() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def sqlite_stack(workdir: Path, **extra: str) -> Stack:
    return Stack(workdir, {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES}, extra_env=extra)


@pytest.mark.parametrize(
    ("variable", "owner"), [("CANBAO_BROKER_PORT", "broker"), ("REGISTRY_PORT", "registry")]
)
def test_a_taken_port_is_named_with_the_variable_that_moves_it(
    tmp_path: Path, listener: int, variable: str, owner: str
) -> None:
    """Before, a taken broker port ended in "broker exited unexpectedly with 0"."""
    stack = sqlite_stack(tmp_path)
    env = stack.env() | {variable: str(listener)}

    result = subprocess.run(
        [str(CANBAO), "run"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1
    assert f"port {listener} on 127.0.0.1 ({owner}) is already in use" in result.stderr
    assert f"set {variable} to a free port" in result.stderr
    assert not (tmp_path / "registry.db").exists()  # nothing was started or migrated


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie holds nothing


@pytest.mark.skipif(not Path("/proc").exists(), reason="the children die with their parent on Linux")
def test_children_of_a_killed_canbao_run_do_not_live_on(tmp_path: Path) -> None:
    stack = sqlite_stack(tmp_path, CANBAO_REPAIR="true")
    stack.start()
    assert stack.process is not None
    children = _children(stack.process.pid)
    assert len(children) == len(SERVICES) + 2  # the broker, both services, the repair job

    os.kill(stack.process.pid, signal.SIGKILL)
    stack.process.wait()
    deadline = time.monotonic() + 60
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)

    try:
        assert [c for c in children if _alive(c)] == []
        for port in (stack.broker_port, *stack.ports.values()):
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still held"
    finally:
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def test_the_port_check_finds_a_free_port_free() -> None:
    from canbao.stack import Port, taken_ports

    port = free_port()
    assert taken_ports([Port("broker", "127.0.0.1", port, "CANBAO_BROKER_PORT")]) == []
