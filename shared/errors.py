"""One domain-error base class, one renderer, and the OpenAPI declarations of both.

Every refusal the API gives is `{"error": {"code", "message_zh", "message_en", "details"}}` with a 4xx status.
"""

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorBody(BaseModel):
    code: str
    message_zh: str
    message_en: str
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class DomainError(Exception):
    """A refusal the caller can act on. Subclasses set the status, machine code and both messages."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message_zh: ClassVar[str] = "请求有误"
    message_en: ClassVar[str] = "Bad request"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(
        self,
        details: dict[str, Any] | None = None,
        *,
        zh: str | None = None,
        en: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        self.details = details
        self.response_headers = {**(self.headers or {}), **(headers or {})} or None
        self.zh = zh or self.message_zh
        self.en = en or self.message_en
        super().__init__(f"{self.code}: {self.en}")

    def body(self) -> ErrorResponse:
        return ErrorResponse(
            error=ErrorBody(code=self.code, message_zh=self.zh, message_en=self.en, details=self.details)
        )


class ValidationFailed(DomainError):
    status_code = 422
    code = "validation_error"
    message_zh = "请求内容不符合要求"
    message_en = "The request is not valid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    message_zh = "资源不存在"
    message_en = "Not found"


class InvalidCharacters(DomainError):
    """Text the database cannot store, such as the NUL character, anywhere in the request."""

    status_code = 422
    code = "invalid_characters"
    message_zh = "请求中含有无法保存的字符（如 NUL 空字符）"
    message_en = "The request contains characters that cannot be stored, such as NUL"


class ConcurrentChange(DomainError):
    """Two requests wrote the same record at once and this one lost; nothing of it was kept."""

    status_code = 409
    code = "concurrent_change"
    message_zh = "另一请求同时修改了同一记录，本次未保存，请重试"
    message_en = "Another request changed the same record at the same moment; nothing was saved, retry"
    headers = {"Retry-After": "1"}  # noqa: RUF012


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"
    message_zh = "服务暂时不可用，请稍后重试"
    message_en = "Service temporarily unavailable, retry later"
    headers = {"Retry-After": "5"}  # noqa: RUF012


_HTTP_CODES: dict[int, tuple[str, str, str]] = {
    400: ("malformed_body", "请求内容无法解析", "The request body could not be parsed"),
    404: ("not_found", "资源不存在", "Not found"),
    405: ("method_not_allowed", "不支持该请求方法", "Method not allowed"),
    413: ("payload_too_large", "请求内容过大", "Payload too large"),
}


def error_responses(
    *errors: type[DomainError], extra: dict[int | str, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the errors an endpoint can raise, grouped by status code, plus `extra`."""
    by_status: dict[int, list[type[DomainError]]] = {}
    all_errors: tuple[type[DomainError], ...] = (*errors, ValidationFailed)
    for err in all_errors:
        by_status.setdefault(err.status_code, []).append(err)
    responses: dict[int | str, dict[str, Any]] = {
        status: {
            "model": ErrorResponse,
            "description": "; ".join(f"`{e.code}`: {e.message_en} / {e.message_zh}" for e in errs),
        }
        for status, errs in by_status.items()
    }
    return responses | (extra or {})


class MalformedBody(DomainError):
    """Declared for every endpoint that reads a body: bytes that are not JSON (or not multipart) at all.
    FastAPI refuses those itself; `on_http_error` renders them with this code."""

    code = "malformed_body"
    message_zh = _HTTP_CODES[400][1]
    message_en = _HTTP_CODES[400][2]


class PayloadTooLarge(DomainError):
    """Declared for every endpoint that reads a body; the body-size middleware answers it."""

    status_code = 413
    code = "payload_too_large"
    message_zh = _HTTP_CODES[413][1]
    message_en = _HTTP_CODES[413][2]


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return JSONResponse(
            exc.body().model_dump(), status_code=exc.status_code, headers=exc.response_headers
        )

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": err.get("type"),
            }
            for err in exc.errors()
        ]
        return await on_domain_error(_, ValidationFailed({"errors": problems}))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code, zh, en = _HTTP_CODES.get(exc.status_code, ("http_error", "请求失败", str(exc.detail)))
        body = ErrorResponse(error=ErrorBody(code=code, message_zh=zh, message_en=en))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
