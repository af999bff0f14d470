"""The access matrix both services' tests share: tokens for every role (and for the same role outside
the area), calls described as data, and a fingerprint of a whole database: a refused call changed nothing."""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy import MetaData, select

from shared.auth import Role, dev_token
from tests.conftest import Harness
from tests.support import resident_id

ID_A = resident_id("340104", "19800101", 11)
ID_B = resident_id("340102", "19820202", 22)
NAME_A, NAME_B = "张三", "李四"
CATEGORY = "minimum_living"

# Callers by name: each role, and the same role outside the records' area (other_*).
TOKENS: dict[str, str | None] = {
    "anonymous": None,
    "resident": dev_token(Role.RESIDENT, sub="resident-a", id_number=ID_A, name=NAME_A),
    "other_resident": dev_token(Role.RESIDENT, sub="resident-b", id_number=ID_B, name=NAME_B),
    "staff": dev_token(Role.STAFF, sub="staff-baohe", regions=["340104"]),
    "other_staff": dev_token(Role.STAFF, sub="staff-yaohai", regions=["340102"]),
    "department": dev_token(Role.DEPARTMENT, sub="civil-affairs", regions=["340104"], categories=[CATEGORY]),
    "other_department": dev_token(
        Role.DEPARTMENT, sub="disabled-federation", regions=["340104"], categories=["disabled"]
    ),
    "tax_officer": dev_token(Role.TAX_OFFICER, sub="tax-01"),
    "auditor": dev_token(Role.AUDITOR, sub="audit-01"),
    "admin": dev_token(Role.ADMIN, sub="admin-01"),
}
READERS = frozenset({"auditor", "admin"})


@dataclass(frozen=True)
class Call:
    """One endpoint called one way; `allowed` are the callers that get through (admins always, auditors for
    reads, added by `who`). `ok`: allowed callers get 2xx (else only "not refused": a 4xx of the domain)."""

    method: str
    path: str
    allowed: frozenset[str]
    kwargs: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda _: {})
    ok: bool = False

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


def call(method: str, path: str, *callers: str, ok: bool = False, **kwargs: Any) -> Call:
    builder = kwargs.pop("build", None) or (lambda _ctx, kw=kwargs: kw)
    extra = READERS if method == "GET" else frozenset({"admin"})
    return Call(method, path, frozenset(callers) | extra, builder, ok)


async def fingerprint(h: Harness, metadata: MetaData) -> str:
    """Every row of every table, hashed: equal fingerprints, nothing written."""
    digest = hashlib.sha256()
    async with h.sessionmaker() as session:
        for table in metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            digest.update(table.name.encode())
            for row in sorted(repr(tuple(r)) for r in rows):
                digest.update(row.encode())
    return digest.hexdigest()


async def check(h: Harness, metadata: MetaData, spec: Call, ctx: dict[str, Any]) -> list[str]:
    """Call as every caller; return the failures (empty when the matrix holds for this call)."""
    failures: list[str] = []
    path = spec.path.format(**ctx)
    before = await fingerprint(h, metadata)
    refused = [name for name in TOKENS if name not in spec.allowed]
    for name in refused:
        response = await _send(h, spec, path, name, ctx)
        if response.status_code not in (401, 403):
            failures.append(f"{spec.route} as {name}: {response.status_code}, expected 401/403")
        elif name == "anonymous" and response.status_code != 401:
            failures.append(f"{spec.route} anonymous: {response.status_code}, expected 401")
    if await fingerprint(h, metadata) != before:
        failures.append(f"{spec.route}: a refused call changed the database")
    for name in sorted(spec.allowed):
        response = await _send(h, spec, path, name, ctx)
        status = response.status_code
        if status in (401, 403) or status >= 500 or (spec.ok and status >= 300):
            failures.append(f"{spec.route} as {name}: {status} {response.text[:200]}")
    return failures


async def _send(h: Harness, spec: Call, path: str, caller: str, ctx: dict[str, Any]) -> Any:
    token = TOKENS[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {"Authorization": ""}
    kwargs = spec.kwargs(ctx)
    headers |= kwargs.pop("headers", {})
    return await h.client.request(spec.method, path, headers=headers, **kwargs)


def operations(app: FastAPI) -> set[str]:
    """Every `METHOD path` the service's OpenAPI describes."""
    return {f"{m.upper()} {p}" for p, ops in app.openapi()["paths"].items() for m in ops}


def covered(app: FastAPI, calls: list[Call]) -> set[str]:
    """The operations the calls exercise (a call's path fills in the template's parameters)."""
    found = set()
    for operation in operations(app):
        method, template = operation.split(" ", 1)
        pattern = re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")
        if any(c.method == method and pattern.match(c.path) for c in calls):
            found.add(operation)
    return found


# Public by design: probes, the channels' signed notifications (authenticated by their signature), and
# signing in (an account name and password; tests/registry/test_accounts.py).
PUBLIC = {"GET /healthz", "GET /readyz", "POST /v1/channels/{channel}/notifications", "POST /v1/sessions"}
