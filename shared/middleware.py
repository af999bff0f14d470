"""ASGI middleware both services run: request-size limits and masking of personal data in responses."""

import io
import json
import zipfile
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ErrorBody, ErrorResponse
from shared.logging import mask_pii
from shared.tabular import XLSX

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
