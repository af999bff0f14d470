"""Requests from outside, through HTTP against the apps: the token and the role are checked before any body
is read; tokens are bounded in size, in lifetime and in the keys they may name; channel notifications with
malformed headers answer 401. The server-level bounds, on real processes: tests/e2e/test_hostile_requests.py.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import Message, Scope
from typer.testing import CliRunner

from canbao.cli import app as cli
from collection.main import create_app as create_collection_app
from collection.notifications.service import sign
from collection.settings import CollectionSettings
from registry.main import create_app as create_registry_app
from registry.settings import RegistrySettings
from shared.auth import DEV_KEY, DEV_KEY_ID, MAX_AUTHORIZATION_BYTES, Role, dev_token
from tests.conftest import Harness
from tests.support import problem, resident_id

MULTIPART = b"multipart/form-data; boundary=canbao"
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    """Both apps, not started: nothing here gets as far as their databases."""
    return {
        "registry": create_registry_app(
            RegistrySettings(environment="test", database_url="sqlite+aiosqlite://")
        ),
        "collection": create_collection_app(
            CollectionSettings(environment="test", database_url="sqlite+aiosqlite://")
        ),
    }


async def send_raw(
    app: FastAPI, method: str, path: str, headers: dict[str, str], declared: int
) -> tuple[int, dict[str, str], dict[str, Any], int]:
    """A request whose body (`declared` bytes) is handed over in 64 KiB chunks only as the app asks for them,
    64 at most (the client then leaves): status, headers, JSON body, and how many chunks the app took."""
    taken = 0

    async def receive() -> Message:
        nonlocal taken
        if taken >= 64:
            return {"type": "http.disconnect"}
        taken += 1
        return {"type": "http.request", "body": b"1" * CHUNK, "more_body": True}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*raw_headers, (b"content-length", str(declared).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], answer_headers, json.loads(body), taken


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MIB = 1024 * 1024
# Each upload route with a size within its limit (beyond it BodySizeLimit answers 413, unread as well).
UPLOADS = [
    ("registry", "POST", "/v1/rosters", 300 * MIB),
    ("registry", "PUT", "/v1/progress/baseline", MIB),
    ("collection", "POST", "/v1/reconciliations", 60 * MIB),
]


@pytest.mark.parametrize(("service", "method", "path", "declared"), UPLOADS)
@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "missing_token"),
        (bearer("not-a-jwt"), 401, "invalid_token"),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401, "missing_token"),
        (bearer(dev_token(Role.ADMIN, sub="x")[:-4] + "AAAA"), 401, "invalid_token"),
    ],
)
async def test_an_upload_without_a_valid_token_is_refused_before_its_body_is_read(
    apps: dict[str, FastAPI],
    service: str,
    method: str,
    path: str,
    declared: int,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    """The refusal comes before the app takes a single chunk of the body, and says the connection closes
    (the body it did not read cannot be skipped on a kept-alive connection)."""
    got, answer_headers, body, taken = await send_raw(
        apps[service], method, path, {**headers, "Content-Type": MULTIPART.decode()}, declared
    )
    assert (got, body["error"]["code"], body["error"]["details"]["reason"]) == (
        status,
        "unauthenticated",
        reason,
    )
    assert answer_headers["www-authenticate"] == "Bearer"
    assert answer_headers["connection"] == "close"
    assert taken == 0


@pytest.mark.parametrize(("service", "method", "path", "declared"), UPLOADS)
async def test_an_upload_by_a_role_the_route_does_not_serve_is_refused_before_its_body_is_read(
    apps: dict[str, FastAPI], service: str, method: str, path: str, declared: int
) -> None:
    resident = dev_token(Role.RESIDENT, id_number=resident_id())
    got, _, body, taken = await send_raw(
        apps[service], method, path, {**bearer(resident), "Content-Type": MULTIPART.decode()}, declared
    )
    assert (got, body["error"]["code"], taken) == (403, "role_not_allowed", 0)


async def test_a_json_body_without_a_token_is_not_read(apps: dict[str, FastAPI]) -> None:
    got, _, body, taken = await send_raw(
        apps["registry"], "POST", "/v1/enrollments", {"Content-Type": "application/json"}, 1000
    )
    assert (got, body["error"]["code"], taken) == (401, "unauthenticated", 0)


async def test_routes_without_a_token_stay_open(apps: dict[str, FastAPI]) -> None:
    for service, app in apps.items():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for path in ("/healthz", "/openapi.json", "/docs", "/redoc"):
                assert (await client.get(path)).status_code == 200, (service, path)
            assert (await client.get("/v1/no-such-route")).status_code == 404


def token(claims: dict[str, Any], *, key: str = DEV_KEY, headers: dict[str, Any] | None = None) -> str:
    """A token made by hand, signed with `key`: any claims, any header (PyJWT would refuse a kid that is
    not a string)."""
    now = int(time.time())
    payload = {
        "sub": "someone",
        "role": "admin",
        "iss": "canbao",
        "aud": "canbao",
        "iat": now,
        "exp": now + 3600,
    }
    header = {"alg": "HS256", "typ": "JWT", **(headers or {})}
    signing_input = b".".join(_b64(json.dumps(part).encode()) for part in (header, payload | claims))
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(signature)).decode()


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


async def status_of(h: Harness, token_text: str) -> tuple[int, str | None]:
    response = await h.client.get("/v1/dead-letters", headers=bearer(token_text))
    reason = None if response.status_code == 200 else problem(response)["details"]["reason"]
    return response.status_code, reason


async def test_an_authorization_header_over_8_kib_is_refused_unparsed(registry: Harness) -> None:
    """Validly signed, but too large: tokens are a few hundred bytes; a large one is refused undecoded."""
    regions = [f"{340100 + i:06d}" for i in range(1200)]
    big = dev_token(Role.ADMIN, regions=regions)
    assert len(big) > MAX_AUTHORIZATION_BYTES
    assert await status_of(registry, big) == (401, "token_too_large")
    fitting = dev_token(Role.ADMIN, regions=regions[:500])
    assert len(fitting) < MAX_AUTHORIZATION_BYTES - len("Bearer ")
    assert await status_of(registry, fitting) == (200, None)


@pytest.fixture
def two_keys(registry: Harness) -> Iterator[Harness]:
    """The registry while a key rotates: the development key and its successor."""
    settings = registry.app.state.settings
    registry.app.state.settings = settings.model_copy(
        update={"auth_keys": {DEV_KEY_ID: SecretStr(DEV_KEY), "2026-12": SecretStr("n" * 40)}}
    )
    yield registry
    registry.app.state.settings = settings


async def test_a_token_without_kid_is_refused_once_several_keys_are_configured(two_keys: Harness) -> None:
    assert await status_of(two_keys, token({})) == (401, "missing_key_id")
    assert await status_of(two_keys, token({}, headers={"kid": DEV_KEY_ID})) == (200, None)
    assert await status_of(two_keys, token({}, key="n" * 40, headers={"kid": "2026-12"})) == (200, None)
    # The other key's id on a token the first key signed.
    assert await status_of(two_keys, token({}, headers={"kid": "2026-12"})) == (401, "invalid_token")


async def test_with_one_key_a_token_without_kid_is_verified_with_it(registry: Harness) -> None:
    assert await status_of(registry, token({})) == (200, None)
    assert await status_of(registry, token({}, key="n" * 40)) == (401, "invalid_token")


@pytest.mark.parametrize("kid", [["dev"], {"k": "dev"}, 7, "", "x" * 5000])
async def test_a_malformed_kid_is_401(registry: Harness, kid: Any) -> None:
    status, reason = await status_of(registry, token({}, headers={"kid": kid}))
    assert status == 401
    assert reason in ("unknown_key", "invalid_token", "token_too_large")


@pytest.mark.parametrize(
    ("exp", "expected"),
    [
        (timedelta(hours=23), (200, None)),
        (timedelta(hours=24), (200, None)),
        (timedelta(hours=25), (401, "lifetime_too_long")),
        (timedelta(days=30), (401, "lifetime_too_long")),
        (10**20, (401, "lifetime_too_long")),
        (2**63, (401, "lifetime_too_long")),
        (10**400, (401, "lifetime_too_long")),
    ],
    ids=["23h", "24h", "25h", "30d", "1e20", "2^63", "1e400"],
)
async def test_a_token_further_ahead_than_the_maximum_lifetime_is_refused(
    registry: Harness, exp: timedelta | int, expected: tuple[int, str | None]
) -> None:
    """`exp` as a lifetime from now, or as the number itself."""
    if isinstance(exp, timedelta):
        exp = int(time.time() + exp.total_seconds())
    assert await status_of(registry, token({"exp": exp})) == expected


async def test_the_maximum_lifetime_is_a_setting(registry: Harness) -> None:
    week = int(time.time() + timedelta(days=6).total_seconds())
    assert await status_of(registry, token({"exp": week})) == (401, "lifetime_too_long")
    settings = registry.app.state.settings
    registry.app.state.settings = settings.model_copy(update={"auth_max_token_lifetime_s": 7 * 24 * 3600})
    try:
        assert await status_of(registry, token({"exp": week})) == (200, None)
    finally:
        registry.app.state.settings = settings


async def test_canbao_token_issues_no_token_the_services_refuse(registry: Harness) -> None:
    runner = CliRunner()
    too_long = runner.invoke(cli, ["token", "--role", "admin", "--subject", "ops", "--hours", "25"])
    assert too_long.exit_code == 2
    longest = runner.invoke(cli, ["token", "--role", "admin", "--subject", "ops", "--hours", "24"])
    assert longest.exit_code == 0, longest.output
    assert await status_of(registry, longest.output.strip()) == (200, None)


def real_now() -> str:
    return str(int(time.time()))


async def notify(h: Harness, headers: dict[str, Any], body: bytes = b"{}") -> httpx.Response:
    return await h.client.post(
        "/v1/channels/wechat/notifications",
        content=body,
        headers={"Content-Type": "application/json", **headers},
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        "²".encode("latin-1"),  # a superscript two: str.isdigit() says yes, int() says no
        "²".encode(),
        "١٢٣".encode(),  # Arabic-Indic digits, which int() would take
        b"1" * 400,
        b"9" * 5000,
        b"-1700000000",
        b"+1700000000",
        b" 1700000000",
        b"1e9",
        b"0x10",
        b"",
    ],
)
async def test_a_notification_timestamp_that_is_no_plain_number_answers_401(
    collection: Harness, timestamp: bytes
) -> None:
    secret = collection.app.state.settings.channel_secrets["wechat"].get_secret_value()
    body = b'{"notification_id": "N1", "bill_id": "b", "amount": "380.00"}'
    signature = sign(secret, timestamp.decode("latin-1"), body)
    response = await notify(
        collection, {"X-Canbao-Timestamp": timestamp, "X-Canbao-Signature": signature}, body
    )
    assert (response.status_code, problem(response)["code"]) == (401, "notification_expired")


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 16_000, "x" * 16_000, "sha256=é" * 100])
async def test_a_huge_or_malformed_signature_answers_401(collection: Harness, signature: str) -> None:
    response = await notify(
        collection, {"X-Canbao-Timestamp": real_now(), "X-Canbao-Signature": signature.encode()}
    )
    assert (response.status_code, problem(response)["code"]) == (401, "notification_signature_invalid")


async def test_a_signed_notification_still_needs_no_token(collection: Harness) -> None:
    """The channels authenticate by signature: no bearer token, and the body is read to check it."""
    secret = collection.app.state.settings.channel_secrets["wechat"].get_secret_value()
    body = json.dumps({"notification_id": "N9", "bill_id": "no-such-bill", "amount": "380.00"}).encode()
    stamp = real_now()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=collection.app), base_url="http://testserver"
    ) as anonymous:
        response = await anonymous.post(
            "/v1/channels/wechat/notifications",
            content=body,
            headers={"X-Canbao-Timestamp": stamp, "X-Canbao-Signature": sign(secret, stamp, body)},
        )
    # Verified, then refused for what it says: no bill of that id.
    assert (response.status_code, problem(response)["code"]) == (404, "bill_not_found")
