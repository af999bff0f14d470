"""The end-to-end tests. Each module's tests are an xdist group of their own (`xdist_group(__name__)`): under
`--dist loadgroup` they run on one worker, so the module's stacks start once, and the modules spread over the
workers (one group for all of them would leave a single worker running every end-to-end test in turn)."""

import socket
from collections.abc import Iterator

import pytest

from tests.support import SERVICES, Stack, recreate_pg_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker: str
) -> Iterator[Stack]:
    """The whole system as `make run` starts it, on fresh databases of the given backend."""
    backend: str = request.param
    workdir = tmp_path_factory.mktemp(f"stack-{backend}")
    if backend == "sqlite":
        urls = {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES}
    else:
        urls = {s: recreate_pg_database(f"canbao_e2e_{worker}_{s}") for s in SERVICES}
    running = Stack(workdir, urls)
    running.start()
    yield running
    # Ctrl-C stops everything cleanly: exit code 0 and every port released.
    assert running.stop() == 0, running.log()[-3000:]
    for port in (running.broker_port, *running.ports.values()):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after stop"
