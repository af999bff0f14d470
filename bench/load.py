"""A light HTTP/1.1 client and load driver over asyncio's raw streams: a small pool of keep-alive connections,
JSON bodies, per-request headers. Far cheaper per request than httpx, so that on a small machine the server,
not the driver, is what is measured; the one client the benchmarks use (bench/flow.py, bench/campaign.py,
and bench/enrollment.py for a floor and the service it compares with it).

    async with Client("http://127.0.0.1:8000", connections=20, headers={"Authorization": ...}) as client:
        created = await client.post("/v1/enrollments", json={...}, headers={"Idempotency-Key": key})
    result = await drive("127.0.0.1", 8000, factory, connections=20, duration_s=10)

A response is read whole: by its Content-Length, chunked, or (no length given) up to the connection's close.
A connection the server closes, resets or answers with something that is not HTTP raises `RequestFailed`,
counted in the client's `errors`; it is never retried behind the caller's back (a POST may have been applied).
"""

import asyncio
import json as jsonlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

# (method, path, body): the n-th request of a driven run; a body is sent as JSON.
RequestFactory = Callable[[int], tuple[str, str, bytes]]

_JSON = {"content-type": "application/json"}
# Idle connections retire before the server closes them (uvicorn: 5 s), so none is reused as it closes.
IDLE_S = 2.0


class RequestFailed(Exception):
    """No whole response: the connection closed, reset, timed out or carried something that is not HTTP."""


class UnexpectedAnswer(Exception):
    """A response with a status other than the one the caller expects."""


@dataclass
class Response:
    method: str
    path: str
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def expect(self, *statuses: int) -> Any:
        """The JSON body if the status is one of `statuses`; else UnexpectedAnswer, saying what came."""
        if self.status not in statuses:
            raise UnexpectedAnswer(f"{self.method} {self.path}: {self.status} {self.text[:300]}")
        return self.json()


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class Client:
    """Requests to one server over at most `connections` keep-alive connections; a request waits for a free
    one. `headers` go with every request; a request's own headers replace those of the same name."""

    def __init__(
        self, base_url: str, *, connections: int, headers: dict[str, str] | None = None, timeout_s: float = 60
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"an http://host:port URL, not {base_url}")
        self.host = url.hostname
        self.port = url.port or 80
        self.headers = {name.lower(): value for name, value in (headers or {}).items()}
        self.timeout_s = timeout_s
        self.errors: Counter[str] = Counter()  # requests that got no whole response, by what happened
        self._head = f"Host: {self.host}:{self.port}\r\n"
        self._free = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def get(
        self, path: str, *, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        return await self.request("GET", path, params=params, headers=headers)

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return await self.request("POST", path, json=json, files=files, data=data, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request, its response read whole. `json` is sent as a JSON body, `content` as it is (its
        Content-Type in `headers`); `files` (name → (file name, content, type)) with the form fields `data`
        as multipart/form-data."""
        target = f"{path}?{urlencode(params)}" if params else path
        fields = self.headers | {name.lower(): value for name, value in (headers or {}).items()}
        body = b""
        if files is not None:
            body, fields["content-type"] = _multipart(data or {}, files)
        elif json is not None:
            body = jsonlib.dumps(json).encode()
            fields["content-type"] = "application/json"
        elif content is not None:
            body = content
        if body or method in {"POST", "PUT", "PATCH"}:
            fields["content-length"] = str(len(body))
        head = f"{method} {target} HTTP/1.1\r\n{self._head}" + "".join(
            f"{name}: {value}\r\n" for name, value in fields.items()
        )
        message = head.encode() + b"\r\n" + body
        async with self._free:
            connection = await self._connection()
            try:
                async with asyncio.timeout(self.timeout_s):
                    connection.writer.write(message)
                    status, answer_headers, answer, keep = await read_response(connection.reader)
            except TimeoutError as exc:
                connection.close()
                self.errors["timeout"] += 1
                raise RequestFailed(f"{method} {path}: no answer within {self.timeout_s}s") from exc
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                connection.close()
                self.errors[type(exc).__name__] += 1
                raise RequestFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            except BaseException:  # cancelled: the rest of this answer must not be read as the next one's
                connection.close()
                raise
            if keep:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
        return Response(method, path, status, answer_headers, answer)

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < IDLE_S and not connection.reader.at_eof():
                return connection
            connection.close()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            self.errors[type(exc).__name__] += 1
            raise RequestFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return _Connection(reader, writer)


def _multipart(data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in data.items()
    ]
    for name, (filename, content, kind) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes, bool]:
    """One response read whole: its status, headers (lower-case names), body, and whether the connection
    may carry the next request. Raises IncompleteReadError if the connection closes before the end,
    ValueError if what arrives is not an HTTP/1.x response."""
    while True:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        status = int(rest[:3])
        if status >= 200:
            break  # a 1xx (100 Continue, 103 Early Hints) is followed by the real answer
    headers: dict[str, str] = {}
    for line in lines[1:-2]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"not a header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
    if status in (204, 304):
        return status, headers, b"", keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, headers, await _chunked(reader), keep
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"])), keep
    # Neither: the body runs to the connection's close, which a server must then do.
    return status, headers, await reader.read(), False


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, up to the empty line
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("a chunk not followed by CRLF")


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
    """Send requests made by `factory` over `connections` connections, each sending its next request as soon
    as the previous one is answered, until `duration_s` has passed or `count` requests were sent (whichever
    is given; both: the first reached). A request that got no whole response is counted in `errors`."""
    if duration_s is None and count is None:
        raise ValueError("give a duration or a count")
    result = Result()
    numbers = iter(range(count if count is not None else 1 << 62))
    deadline = time.perf_counter() + duration_s if duration_s is not None else float("inf")

    async with Client(f"http://{host}:{port}", connections=connections, headers=headers) as client:

        async def connection() -> None:
            while time.perf_counter() < deadline:
                n = next(numbers, None)
                if n is None:
                    return
                method, path, body = factory(n)
                started = time.perf_counter()
                try:
                    response = await client.request(
                        method, path, content=body or None, headers=_JSON if body else None
                    )
                except RequestFailed:
                    continue  # counted in client.errors
                result.latencies_s.append(time.perf_counter() - started)
                result.statuses[response.status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(connections)))
        result.elapsed_s = time.perf_counter() - started
        result.errors = client.errors
    return result
