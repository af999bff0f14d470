"""The ASGI layer both services run around every request: metrics and the access log, request-size limits,
authentication before any body is read, and masking of personal data in responses."""

import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import (
    PRINCIPAL_STATE_KEY,
    ROLE_CHECKS,
    Principal,
    Role,
    authenticate,
    authorise,
    identify,
)
from shared.errors import DomainError, ErrorBody, ErrorResponse
from shared.logging import mask_pii
from shared.metrics import count_request
from shared.tabular import XLSX

access_log = structlog.get_logger("canbao.access")

_HEADERS_TOO_LARGE = ErrorResponse(
    error=ErrorBody(
        code="headers_too_large",
        message_zh="请求头过大",
        message_en="Request line and headers too large",
    )
)
_TOO_LARGE = ErrorResponse(
    error=ErrorBody(code="payload_too_large", message_zh="请求内容过大", message_en="Payload too large")
)
# What a multipart envelope (boundaries, part headers, form fields) adds around an uploaded file.
MULTIPART_SLACK_BYTES = 64 * 1024
_XLSX = XLSX.encode()
_JSON = b"application/json"


class RequestStack:
    """What both services do around every HTTP request, in one ASGI layer (each layer of its own cost a
    coroutine and a wrapped send or receive per request). From the outside in:

    - Counts the request and its duration by method, route template and status (shared.metrics), and writes
      the access log's line: method, path, the query's parameter names (never their values: a lookup carries
      an ID number and a name there), status and duration; uvicorn's own prints the whole query string. A
      request no route matched is `unmatched`; one whose exception escaped, 500.
    - Refuses with 431 a request whose line and headers together pass `max_header_bytes`. The server (h11, see
      shared.service.serve) already closes a connection whose head passes the bound while still arriving; a
      head that arrived whole in one read is judged here, so the bound holds however the bytes came.
    - For a route that needs a caller, identifies it (bearer token or session cookie) and checks its role
      (with the functions the `authenticate` and `allow()` dependencies use) before the application reads
      anything of the request's body: FastAPI reads a body, a multipart upload included, before it runs the
      route's dependencies. The check runs when the application first asks for the body, once the router has
      chosen the route; a refusal is answered at once (401/403 in the project's error format, the connection
      closed when a body was on its way) and the application is told the client left. Routes without a token
      (health, OpenAPI, the channels' signed notifications, the sign-in pages) are untouched. The verified
      principal is left in the request's state, where `authenticate` takes it.
    - Refuses a request body over its route's limit with 413 before the application reads it: at once when
      Content-Length says so, else as soon as the streamed body passes the limit. Upload routes set their own
      (larger) limits in `app.state.body_limits` (path -> bytes); every other route gets `default_body_bytes`.
    - Masks ID and phone numbers in responses to callers whose role does not need them in full
      (`request.state.mask_pii`, set by authentication). In JSON, masking keeps every character's length, so
      the body's length stays as it is; a spreadsheet is collected and written again with its text masked."""

    def __init__(self, app: ASGIApp, *, max_header_bytes: int, default_body_bytes: int):
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.default_body_bytes = default_body_bytes
        self._requirements: dict[int, _Requirement | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._bounded(scope, receive, noting_send)
        finally:
            duration = time.perf_counter() - started
            client = scope.get("client")
            access_log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                query=_parameter_names(scope.get("query_string", b"")),
                status=status,
                duration_ms=round(duration * 1000, 1),
                client=client[0] if client else None,
            )
            count_request(scope, status, duration)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request within its bounds, its caller checked before its body is read, its answer masked."""
        size = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
        size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if size > self.max_header_bytes:
            body = _HEADERS_TOO_LARGE.model_copy(deep=True)
            body.error.details = {"limit_bytes": self.max_header_bytes}
            response = JSONResponse(body.model_dump(), status_code=431, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        limits: dict[str, int] = getattr(scope["app"].state, "body_limits", {})
        limit = limits.get(scope["path"], self.default_body_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        exchange = _Exchange(self, scope, receive, send, limit)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except _BodyTooLarge:
            if not exchange.started and not exchange.refused:
                await _refuse(send, limit)

    async def refusal(self, scope: Scope) -> DomainError | None:
        """Why the caller may not make this request, if it may not (nothing for routes without a token)."""
        route = scope.get("route")
        if route is None:
            return None
        if id(route) not in self._requirements:
            self._requirements[id(route)] = _requirement_of(route)
        requirement = self._requirements[id(route)]
        if requirement is None:
            return None
        state = scope.setdefault("state", {})
        try:
            principal = state.get(PRINCIPAL_STATE_KEY)
            if not isinstance(principal, Principal):
                principal = await identify(Headers(scope=scope), scope["method"], scope["app"].state)
            for roles in requirement.roles:
                authorise(principal, scope["method"], requirement.path, roles)
        except DomainError as refusal:
            return refusal
        state[PRINCIPAL_STATE_KEY] = principal
        return None


class _Exchange:
    """One request's receive and send as RequestStack passes them to the application."""

    def __init__(self, stack: RequestStack, scope: Scope, receive: Receive, send: Send, limit: int):
        self._stack, self._scope, self._receive, self._send, self._limit = stack, scope, receive, send, limit
        self._checked = self.refused = self.started = False
        self._received = 0
        self._masking: bytes | None = None  # the content type masked, when the caller's role needs it
        self._start: Message = {}
        self._chunks: list[bytes] = []

    async def receive(self) -> Message:
        if not self._checked:
            self._checked = True
            refusal = await self._stack.refusal(self._scope)
            if refusal is not None:
                self.refused = True
                await _answer(self._scope, self._send, refusal)
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                raise _BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self._scope.get("state", {}).get("mask_pii"):
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                self._masking = next((k for k in (_JSON, _XLSX) if content_type.startswith(k)), None)
            if self._masking == _XLSX:
                self._start = message  # sent with the masked workbook's length once it is whole
                return
        elif self._masking == _JSON and message["type"] == "http.response.body":
            message = {**message, "body": mask_pii(message.get("body", b"").decode()).encode()}
        elif self._masking == _XLSX and message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            workbook = _masked_workbook(b"".join(self._chunks))
            headers = [(k, v) for k, v in self._start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(workbook)).encode()))
            await self._pass({**self._start, "headers": headers})
            message = {"type": "http.response.body", "body": workbook}
        await self._pass(message)

    async def _pass(self, message: Message) -> None:
        if self.refused:  # the refusal was the answer; what the application says after it is dropped
            return
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


def _parameter_names(query: bytes) -> str | None:
    if not query:
        return None
    names = sorted({part.split(b"=", 1)[0].decode("latin-1")[:64] for part in query.split(b"&") if part})
    return ",".join(names[:20]) or None


@dataclass(frozen=True)
class _Requirement:
    path: str
    roles: list[frozenset[Role]]


def _requirement_of(route: Any) -> _Requirement | None:
    """Whether the route's dependencies authenticate the caller, and the role sets its `allow()`s admit."""
    if not isinstance(route, APIRoute):
        return None
    calls: list[Callable[..., Any]] = []

    def walk(dependant: Dependant) -> None:
        for dependency in dependant.dependencies:
            if dependency.call is not None:
                calls.append(dependency.call)
            walk(dependency)

    walk(route.dependant)
    if authenticate not in calls:
        return None
    return _Requirement(route.path, [ROLE_CHECKS[call] for call in calls if call in ROLE_CHECKS])


async def _answer(scope: Scope, send: Send, refusal: DomainError) -> None:
    headers = dict(refusal.response_headers or {})
    request_headers = Headers(scope=scope)
    if request_headers.get("content-length", "0") != "0" or "transfer-encoding" in request_headers:
        headers["Connection"] = "close"  # the body it refused is not read: the connection cannot carry on
    response = JSONResponse(refusal.body().model_dump(), status_code=refusal.status_code, headers=headers)

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)


class _BodyTooLarge(HTTPException):
    """An HTTP error, so that the framework's body parsing passes it on (it turns other errors into 400)
    and the error handler renders it as 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


async def _refuse(send: Send, limit: int) -> None:
    body = _TOO_LARGE.model_copy(deep=True)
    body.error.details = {"limit_bytes": limit}
    payload = json.dumps(body.model_dump(), ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _masked_workbook(content: bytes) -> bytes:
    """The same .xlsx with ID and phone numbers masked in its XML parts (cell text lives there)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith(".xml"):
                data = mask_pii(data.decode()).encode()
            target.writestr(item, data)
    return out.getvalue()
