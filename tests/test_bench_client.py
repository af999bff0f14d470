"""The benchmarks' light HTTP client (bench/load.py) against a real local asyncio server that answers each
request with scripted bytes: bodies by Content-Length, chunked, or up to the connection's close; keep-alive
reuse; the headers and JSON body it sends; an answer cut short is an error counted, never a response."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bench.load import Client, RequestFailed

KEEP, CLOSE, HOLD = "keep", "close", "hold"


@dataclass
class Server:
    """Answers the n-th request it reads with answers[n], then keeps the connection, closes it, or holds it
    open although the answer said `Connection: close` (a request that still comes on it is counted)."""

    answers: list[tuple[bytes, str]]
    port: int = 0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    connections: int = 0
    sent_after_close: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        said_close = False
        try:
            while not reader.at_eof():
                try:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                except asyncio.IncompleteReadError:
                    return
                if said_close:
                    self.sent_after_close += 1
                    return
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:-2])}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((head[0], headers, body))
                answer, then = self.answers[len(self.requests) - 1]
                writer.write(answer)
                await writer.drain()
                if then == CLOSE:
                    return
                said_close = then == HOLD
        finally:
            writer.close()


# A body delimited by the connection's close, longer than one read.
LONG = json.dumps({"c": "合肥" * 100_000}).encode()


@pytest.fixture
async def serve() -> AsyncIterator[Server]:
    server = Server([])
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield server


def client(server: Server) -> Client:
    return Client(
        f"http://127.0.0.1:{server.port}",
        connections=1,
        headers={"Authorization": "Bearer staff"},
        timeout_s=10,
    )


async def test_bodies_by_length_chunked_and_close_each_read_whole_on_one_kept_connection(
    serve: Server,
) -> None:
    serve.answers = [
        (
            b'HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{"a": 12}',
            KEEP,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4;ext=1\r\n{"b"\r\n6\r\n: [1, \r\nC\r\n2, 3456789]}\r\n0\r\nX-Trailer: t\r\n\r\n',
            KEEP,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", KEEP),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\n"
            b"Content-Length: 2\r\n\r\n{}",
            KEEP,
        ),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n[]", HOLD),
        (b"HTTP/1.1 200 OK\r\n\r\n" + LONG, CLOSE),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull", KEEP),
    ]
    async with client(serve) as c:
        created = await c.post("/v1/enrollments", json={"name": "测试"}, headers={"Idempotency-Key": "k1"})
        chunked = await c.get("/v1/bills", params={"enrollment_id": "e 1", "wait_s": 30})
        empty = await c.post("/v1/sandbox/payment-orders/o1/payment", headers={"Authorization": "Bearer me"})
        busy = await c.get("/busy")
        closing = await c.get("/closing")
        to_the_end = await c.get("/to-the-end")
        after = await c.get("/after")

    assert (created.status, created.json()) == (201, {"a": 12})
    assert created.expect(201) == {"a": 12}
    assert (chunked.status, chunked.json()) == (200, {"b": [1, 2, 3456789]})
    assert (empty.status, empty.body) == (204, b"")
    assert (busy.status, busy.headers["retry-after"], busy.json()) == (503, "2", {})
    assert (closing.status, closing.json()) == (200, [])
    assert to_the_end.body == LONG
    assert after.json() is None
    # Five answers on the first connection; the one that said it closes was the last on it, and the one
    # whose body ran to the close the last on the second.
    assert serve.connections == 3
    assert serve.sent_after_close == 0
    assert c.errors == {}

    line, headers, body = serve.requests[0]
    assert line == "POST /v1/enrollments HTTP/1.1"
    assert json.loads(body) == {"name": "测试"}
    assert headers["content-type"] == "application/json"
    assert (headers["authorization"], headers["idempotency-key"]) == ("Bearer staff", "k1")
    assert headers["host"] == f"127.0.0.1:{serve.port}"
    assert serve.requests[1][0] == "GET /v1/bills?enrollment_id=e+1&wait_s=30 HTTP/1.1"
    # A request's own header replaces the client's; a POST without a body says its length is 0.
    assert serve.requests[2][1]["authorization"] == "Bearer me"
    assert serve.requests[2][1]["content-length"] == "0"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # fewer bytes than promised
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # a chunk cut short
        b"HTTP/1.1 200 OK\r\nContent-Le",  # the head cut short
        b"",  # closed without a word
        b"ICY 200 OK\r\n\r\n",  # not HTTP
    ],
)
async def test_an_answer_cut_short_or_not_http_is_an_error_counted_and_the_connection_not_reused(
    serve: Server, answer: bytes
) -> None:
    serve.answers = [(answer, CLOSE), (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", KEEP)]
    async with client(serve) as c:
        with pytest.raises(RequestFailed):
            await c.post("/v1/payment-orders", json={"bill_ids": ["b1"]})
        assert sum(c.errors.values()) == 1
        assert (await c.get("/next")).json() == {}
    assert serve.connections == 2
