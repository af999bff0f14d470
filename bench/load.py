"""A light HTTP/1.1 load driver: N keep-alive connections over asyncio's raw streams, each sending its next
request as soon as the previous one is answered, for a fixed time or a fixed count. Far cheaper per request
than httpx, so that on a small machine the server, not the driver, is what is measured; the one driver the
benchmarks use for a floor and for the service they compare with it.

    result = await drive("127.0.0.1", 8000, factory, connections=20, duration_s=10)
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# (method, path, body): the n-th request of the run; a body is sent as JSON.
RequestFactory = Callable[[int], tuple[str, str, bytes]]


@dataclass
class Result:
    elapsed_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # connections the server closed, resets...

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def per_second(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000 if ordered else 0.0

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        errors = f"; errors {dict(self.errors)}" if self.errors else ""
        return (
            f"{self.requests} requests in {self.elapsed_s:.1f}s = {self.per_second:.1f}/s ({statuses}); "
            f"latency p50 {self.percentile_ms(0.5):.1f} / p95 {self.percentile_ms(0.95):.1f} / "
            f"p99 {self.percentile_ms(0.99):.1f} ms{errors}"
        )


async def drive(
    host: str,
    port: int,
    factory: RequestFactory,
    *,
    connections: int,
    duration_s: float | None = None,
    count: int | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    """Send requests made by `factory` over `connections` connections until `duration_s` has passed or
    `count` requests were sent (whichever is given; both: the first reached)."""
    if duration_s is None and count is None:
        raise ValueError("give a duration or a count")
    fixed = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = f"Host: {host}:{port}\r\n{fixed}"
    result = Result()
    numbers = iter(range(count if count is not None else 1 << 62))
    deadline = time.perf_counter() + duration_s if duration_s is not None else float("inf")

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                n = next(numbers, None)
                if n is None:
                    return
                method, path, body = factory(n)
                request = f"{method} {path} HTTP/1.1\r\n{head}"
                if body:
                    request += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                started = time.perf_counter()
                try:
                    writer.write(request.encode() + b"\r\n" + body)
                    status, close = await _response(reader)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    result.errors[type(exc).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                result.latencies_s.append(time.perf_counter() - started)
                result.statuses[status] += 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - started
    return result


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response whole; its status, and whether the server closes the connection after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
        elif name == "transfer-encoding":
            raise ConnectionError("chunked responses are not expected here")
    if length:
        await reader.readexactly(length)
    return status, close
