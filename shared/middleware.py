"""ASGI middleware both services run: the access log, authentication before any body is read, request-size
limits and masking of personal data in responses."""

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
from shared.tabular import XLSX

access_log = structlog.get_logger("canbao.access")


class AccessLog:
    """One line per request: method, path, the query's parameter names (never their values: a lookup carries
    an ID number and a name there), status and duration. Replaces uvicorn's access log, which prints the
    whole query string."""

    def __init__(self, app: ASGIApp):
        self.app = app

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
            await self.app(scope, receive, noting_send)
        finally:
            client = scope.get("client")
            access_log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                query=_parameter_names(scope.get("query_string", b"")),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                client=client[0] if client else None,
            )


def _parameter_names(query: bytes) -> str | None:
    if not query:
        return None
    names = sorted({part.split(b"=", 1)[0].decode("latin-1")[:64] for part in query.split(b"&") if part})
    return ",".join(names[:20]) or None


_HEADERS_TOO_LARGE = ErrorResponse(
    error=ErrorBody(
        code="headers_too_large",
        message_zh="请求头过大",
        message_en="Request line and headers too large",
    )
)


class HeaderSizeLimit:
    """Refuses with 431 a request whose line and headers together pass `max_bytes`. The server (h11, see
    shared.service.serve) already closes a connection whose head passes the bound while still arriving; a
    head that arrived whole in one read is judged here, so the bound holds however the bytes came."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
            size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                body = _HEADERS_TOO_LARGE.model_copy(deep=True)
                body.error.details = {"limit_bytes": self.max_bytes}
                response = JSONResponse(body.model_dump(), status_code=431, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class AuthenticateFirst:
    """For a route that needs a caller, identifies it (bearer token or session cookie) and checks its role
    (with the functions the `authenticate` and `allow()` dependencies use) before the application reads
    anything of the request's body: FastAPI reads a body, a multipart upload included, before it runs the
    route's dependencies. The check runs when the application first asks for the body, once the router has
    chosen the route; a refusal is answered at once (401/403 in the project's error format, the connection
    closed when a body was on its way) and the application is told the client left. Routes without a token
    (health, OpenAPI, the channels' signed notifications, the sign-in pages) are untouched. The verified
    principal is left in the request's state, where `authenticate` takes it."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._requirements: dict[int, _Requirement | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        checked = refused = False

        async def checking_receive() -> Message:
            nonlocal checked, refused
            if not checked:
                checked = True
                refusal = await self._refusal(scope)
                if refusal is not None:
                    refused = True
                    await _answer(scope, send, refusal)
            if refused:
                return {"type": "http.disconnect"}
            return await receive()

        async def guarded_send(message: Message) -> None:
            if not refused:  # the refusal was the answer; what the application says after it is dropped
                await send(message)

        await self.app(scope, checking_receive, guarded_send)

    async def _refusal(self, scope: Scope) -> DomainError | None:
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


_TOO_LARGE = ErrorResponse(
    error=ErrorBody(code="payload_too_large", message_zh="请求内容过大", message_en="Payload too large")
)


# What a multipart envelope (boundaries, part headers, form fields) adds around an uploaded file.
MULTIPART_SLACK_BYTES = 64 * 1024


class _BodyTooLarge(HTTPException):
    """An HTTP error, so that the framework's body parsing passes it on (it turns other errors into 400)
    and the error handler renders it as 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodySizeLimit:
    """Refuses a request body over its route's limit with 413 before the application reads it: at once when
    Content-Length says so, else as soon as the streamed body passes the limit. Upload routes set their own
    (larger) limits in `app.state.body_limits` (path -> bytes); every other route gets `default_bytes`."""

    def __init__(self, app: ASGIApp, default_bytes: int):
        self.app = app
        self.default_bytes = default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits: dict[str, int] = getattr(scope["app"].state, "body_limits", {})
        limit = limits.get(scope["path"], self.default_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _refuse(send, limit)


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


class MaskPersonalData:
    """Masks ID and phone numbers in responses to callers whose role does not need them in full
    (`request.state.mask_pii`, set by authentication). In JSON, masking keeps every character's length, so
    the body's length stays as it is; a spreadsheet is collected and written again with its text masked."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind: bytes | None = None
        start: Message = {}
        chunks: list[bytes] = []

        async def masking_send(message: Message) -> None:
            nonlocal kind, start
            if message["type"] == "http.response.start":
                state: dict[str, Any] = scope.get("state", {})
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if state.get("mask_pii"):
                    kind = next(
                        (k for k in (b"application/json", XLSX.encode()) if content_type.startswith(k)), None
                    )
                if kind == XLSX.encode():
                    start = message  # sent with the masked workbook's length once it is whole
                    return
            elif message["type"] == "http.response.body" and kind == b"application/json":
                message = {**message, "body": mask_pii(message.get("body", b"").decode()).encode()}
            elif message["type"] == "http.response.body" and kind is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                workbook = _masked_workbook(b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                headers.append((b"content-length", str(len(workbook)).encode()))
                await send({**start, "headers": headers})
                message = {"type": "http.response.body", "body": workbook}
            await send(message)

        await self.app(scope, receive, masking_send)


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
