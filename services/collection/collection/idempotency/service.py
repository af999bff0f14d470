"""Idempotency-Key handling: the same key and body replay the stored result; another body is refused."""

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from collection.database import held_rows, one_statement
from collection.idempotency.models import IdempotencyRecord
from shared.db import DriverStatement, lock_key
from shared.errors import DomainError

_KEY_MAX = 128


class IdempotencyKeyRequired(DomainError):
    status_code = 400
    code = "idempotency_key_required"
    message_zh = "请求头缺少有效的 Idempotency-Key（1至128个可见字符）"
    message_en = "An Idempotency-Key header of 1 to 128 visible characters is required"


class IdempotencyKeyReused(DomainError):
    status_code = 422
    code = "idempotency_key_reused"
    message_zh = "该 Idempotency-Key 已用于内容不同的请求"
    message_en = "This Idempotency-Key was already used with a different request body"


def require_idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    key = (idempotency_key or "").strip()
    if not key or len(key) > _KEY_MAX or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyRequired()
    return key


IdempotencyKey = Annotated[str, Depends(require_idempotency_key)]


@dataclass(frozen=True)
class Request:
    """One idempotent request: its scope (the operation), the caller's key and a hash of its body."""

    scope: str
    key: str
    request_hash: str

    @classmethod
    def of(cls, scope: str, key: str, body: BaseModel) -> "Request":
        canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return cls(scope, key, hashlib.sha256(canonical.encode()).hexdigest())

    @property
    def record_key(self) -> str:
        return f"{self.scope}:{self.key}"


async def stored_response(session: AsyncSession, request: Request) -> dict[str, Any] | None:
    """The response stored for this key, if any. Requests with one key run one at a time from here to
    their commit: a concurrent retry waits and replays, a concurrent other body is refused."""
    await lock_key(session, f"idempotency:{request.record_key}")
    if one_statement(session):
        rows = await held_rows(session, _STORED, {"key": request.record_key})
        record = (rows[0]["request_hash"], rows[0]["response_body"]) if rows else None
    else:
        held = await session.get(IdempotencyRecord, request.record_key, populate_existing=True)
        record = (held.request_hash, held.response_body) if held is not None else None
    if record is None:
        return None
    request_hash, response_body = record
    if request_hash != request.request_hash:
        raise IdempotencyKeyReused({"idempotency_key": request.key})
    stored: dict[str, Any] = json.loads(response_body)
    return stored


# Read on every idempotent request, after its lock: a plain row on PostgreSQL (`held_rows`).
_STORED = DriverStatement(text("SELECT request_hash, response_body FROM idempotency_keys WHERE key = :key"))


def remember(session: AsyncSession, request: Request, status_code: int, body: BaseModel) -> None:
    session.add(
        IdempotencyRecord(
            key=request.record_key,
            request_hash=request.request_hash,
            status_code=status_code,
            response_body=body.model_dump_json(),
        )
    )
