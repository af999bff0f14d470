"""Tokens of an external OpenID Connect provider (shared/oidc.py): keys generated here, published as a JWKS
document by a real HTTP server on a free port, fetched by the services over HTTP; RS256 and ES256 tokens
accepted by both services with their claims mapped to a role, regions and categories; everything else
refused; keys cached, fetched again when rotated, and never fetched in a flood."""

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from collection.main import create_app as create_collection_app
from collection.settings import CollectionSettings
from registry.main import create_app as create_registry_app
from registry.settings import RegistrySettings
from shared.auth import Role, Unauthenticated, dev_token
from shared.errors import ServiceUnavailable
from shared.oidc import MAX_JWKS_BYTES, Jwks, OidcClaimMapping, OidcVerifier
from tests.conftest import DEFAULT_NOW, Harness, _harness
from tests.support import eventually, free_port, problem

ISSUER = "https://sso.ah.example.gov.cn/realms/ybj"
AUDIENCE = "canbao"
# As a Keycloak realm would send them: roles nested, the account name in preferred_username.
MAPPING = OidcClaimMapping(
    subject="preferred_username",
    role="realm_access.roles",
    role_values={"ybj-jbry": Role.STAFF, "sw-zsy": Role.TAX_OFFICER, "ybj-admin": Role.ADMIN},
    regions="canbao_regions",
    categories="canbao_categories",
)
YAOHAI: dict[str, Any] = {"region_code": "340102", "coverage_year": 2024}


class Provider:
    """The provider's side: its signing keys and the JWKS document a tiny HTTP server publishes."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.published: list[dict[str, Any]] = [self.jwk(self.rsa, "rsa-1"), self.jwk(self.ec, "ec-1")]
        self.requests = 0
        self.broken = False
        self.document: Any = None  # when set, served instead of the key set (a provider's mistake)
        self.trickle = False  # when set, the answer comes a byte at a time, without end
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests += 1
                if provider.broken:
                    self.send_response(500)
                    self.end_headers()
                    return
                if provider.trickle:
                    self.send_response(200)
                    self.send_header("Content-Length", str(MAX_JWKS_BYTES))
                    self.end_headers()
                    while provider.trickle:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                document = {"keys": provider.published} if provider.document is None else provider.document
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/protocol/openid-connect/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
        if isinstance(key, rsa.RSAPrivateKey):
            public: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return public | {"kid": kid, "use": "sig"}

    def token(
        self,
        roles: list[str],
        *,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
        kid: str | None = "rsa-1",
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "sub": str(uuid.uuid4()),
            "preferred_username": "zhang.wei",
            "name": "张伟",
            "sid": "the-providers-own-session",
            "realm_access": {"roles": ["offline_access", *roles]},
            "canbao_regions": ["340102"],
        } | claims
        signer = key or self.rsa
        algorithm = "ES256" if isinstance(signer, ec.EllipticCurvePrivateKey) else "RS256"
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(payload, signer, algorithm=algorithm, headers=headers)


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    running = Provider()
    yield running
    running.server.shutdown()


def _oidc(provider: Provider, **extra: Any) -> dict[str, Any]:
    return {
        "oidc_issuer": ISSUER,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_url": provider.url,
        "oidc_claims": MAPPING,
    } | extra


@pytest.fixture
async def registry_with_provider(
    provider: Provider, migrated_urls: Any, tmp_path: Path
) -> AsyncIterator[Harness]:
    provider.published = [provider.jwk(provider.rsa, "rsa-1"), provider.jwk(provider.ec, "ec-1")]
    provider.broken, provider.document, provider.trickle = False, None, False
    settings = RegistrySettings(
        environment="test",
        database_url="sqlite+aiosqlite://",
        clock_start=DEFAULT_NOW,
        roster_dir=tmp_path / "rosters",
        reminder_log=tmp_path / "reminders.log",
        **_oidc(provider),
    )
    async for harness in _harness(
        "registry", create_registry_app(settings), "sqlite", migrated_urls, {}, tmp_path
    ):
        yield harness


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_rs256_and_es256_tokens_are_accepted_with_their_claims_mapped(
    registry_with_provider: Harness, provider: Provider
) -> None:
    h = registry_with_provider
    before = provider.requests
    staff = provider.token(["ybj-jbry"])
    assert (await h.client.get("/dashboard", params=YAOHAI, headers=_bearer(staff))).status_code == 200
    outside = await h.client.get(
        "/dashboard", params={"region_code": "340104", "coverage_year": 2024}, headers=_bearer(staff)
    )
    assert problem(outside)["code"] == "outside_area"
    admin = provider.token(
        ["ybj-admin"], key=provider.ec, kid="ec-1", canbao_regions=[], preferred_username="ops"
    )
    body = {
        "username": "li.na",
        "display_name": "李娜",
        "role": "auditor",
        "password": "correct-horse-battery",
    }
    created = await h.client.post("/v1/accounts", json=body, headers=_bearer(admin))
    assert created.status_code == 201, created.text
    # Both keys came in one fetch of the key set.
    assert provider.requests - before == 1
    # The audit trail names the provider's account name; its own session id is not one of ours.
    audit = (await h.client.get("/v1/audit-events", params={"actor": "ops"})).json()["items"]
    assert [(e["role"], e["record"]) for e in audit] == [("admin", f"account:{created.json()['account_id']}")]
    # The development key path stays (make run, the front-ends' resident tokens).
    assert (await h.client.get("/v1/accounts", headers=_bearer(dev_token(Role.ADMIN)))).status_code == 200


async def test_collection_accepts_the_providers_tokens_too(
    provider: Provider, migrated_urls: Any, tmp_path: Path
) -> None:
    settings = CollectionSettings(
        environment="test",
        database_url="sqlite+aiosqlite://",
        clock_start=DEFAULT_NOW,
        reconciliation_dir=tmp_path / "reconciliation",
        **_oidc(provider),
    )
    app = create_collection_app(settings)
    async for h in _harness("collection", app, "sqlite", migrated_urls, {}, tmp_path):
        officer = provider.token(["sw-zsy"], canbao_regions=[])
        due = await h.client.get(
            "/v1/bills/organisation-due", params={"organisation": "x"} | YAOHAI, headers=_bearer(officer)
        )
        assert due.status_code == 200, due.text
        staff = provider.token(["ybj-jbry"])
        assert (
            problem(
                await h.client.get(
                    "/v1/bills/organisation-due",
                    params={"organisation": "x"} | YAOHAI,
                    headers=_bearer(staff),
                )
            )["code"]
            == "role_not_allowed"
        )


def _forged_hs256(provider: Provider) -> str:
    """Algorithm confusion: an HS256 token keyed with the provider's public key, which anyone can fetch
    (PyJWT refuses to make one, so it is made by hand)."""
    secret = provider.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60, "sub": "x", "role": "admin"}

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = (
        part(b'{"alg":"HS256","typ":"JWT","kid":"rsa-1"}') + b"." + part(json.dumps(payload).encode())
    )
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + part(signature)).decode()


def _relabelled(token: str, algorithm: str, kid: str) -> str:
    """A token with its header changed to name another algorithm and key (its signature left as it was)."""
    header = json.dumps({"alg": algorithm, "kid": kid, "typ": "JWT"}).encode()
    _, payload, signature = token.split(".")
    return ".".join([base64.urlsafe_b64encode(header).rstrip(b"=").decode(), payload, signature])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.token(["ybj-jbry"], iss="https://elsewhere.example/realms/x"), "invalid_token"),
        (lambda p: p.token(["ybj-jbry"], aud="another-app"), "invalid_token"),
        (lambda p: p.token(["ybj-jbry"], exp=int(time.time()) - 3600), "expired"),
        (lambda p: p.token(["ybj-jbry"], exp=int(time.time()) + 7 * 86400), "lifetime_too_long"),
        # Signed by a key that is not the provider's, under the provider's key id.
        (
            lambda p: p.token(
                ["ybj-jbry"], key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ),
            "invalid_token",
        ),
        (lambda p: _forged_hs256(p), "unknown_key"),
        (
            lambda p: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x"}, "", algorithm="none"),
            "algorithm_not_allowed",
        ),
        (lambda p: p.token(["offline_access"]), "role_not_mapped"),
        (lambda p: p.token(["ybj-jbry", "ybj-admin"]), "several_roles"),
        (lambda p: p.token(["ybj-jbry"], canbao_regions=["not-a-region"]), "claims_invalid"),
        # An algorithm of another family than the key named: refused, never an error.
        (lambda p: _relabelled(p.token(["ybj-jbry"]), "ES256", "rsa-1"), "invalid_token"),
        (
            lambda p: _relabelled(p.token(["ybj-jbry"], key=p.ec, kid="ec-1"), "RS256", "ec-1"),
            "invalid_token",
        ),
    ],
    ids=[
        "issuer",
        "audience",
        "expired",
        "too-long",
        "foreign-key",
        "hs256-with-public-key",
        "none",
        "no-role",
        "two-roles",
        "bad-region",
        "es256-with-the-rsa-key",
        "rs256-with-the-ec-key",
    ],
)
async def test_tokens_not_made_for_us_are_refused(
    registry_with_provider: Harness, provider: Provider, make: Any, reason: str
) -> None:
    response = await registry_with_provider.client.get("/dashboard", headers=_bearer(make(provider)))
    assert (response.status_code, problem(response)["details"]["reason"]) == (401, reason)


def _verifier(
    provider: Provider,
    *,
    ttl_s: float,
    min_refetch_interval_s: float,
    url: str | None = None,
    timeout_s: float = 5.0,
) -> OidcVerifier:
    provider.broken, provider.document, provider.trickle = False, None, False
    return OidcVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["RS256", "ES256"],
        mapping=MAPPING,
        jwks=Jwks(
            url or provider.url,
            ttl_s=ttl_s,
            min_refetch_interval_s=min_refetch_interval_s,
            timeout_s=timeout_s,
        ),
        max_lifetime=timedelta(hours=24),
    )


async def test_keys_are_cached_and_a_rotated_key_is_fetched(provider: Provider) -> None:
    provider.published = [provider.jwk(provider.rsa, "rsa-1")]
    provider.broken = False
    verifier = _verifier(provider, ttl_s=3600, min_refetch_interval_s=0)
    for _ in range(3):
        assert (await verifier.verify(provider.token(["ybj-jbry"]))).role is Role.STAFF
    assert verifier.jwks.fetches == 1
    # The provider rotates to a new key: the first token naming it has the keys fetched again.
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.published = [provider.jwk(rotated, "rsa-2")]
    principal = await verifier.verify(provider.token(["ybj-jbry"], key=rotated, kid="rsa-2"))
    assert (principal.subject, principal.regions, verifier.jwks.fetches) == (
        "zhang.wei",
        frozenset({"340102"}),
        2,
    )
    # A key set past its time to live is fetched again; a provider failing meanwhile leaves the keys in use.
    stale = _verifier(provider, ttl_s=0, min_refetch_interval_s=0)
    await stale.verify(provider.token(["ybj-jbry"], key=rotated, kid="rsa-2"))
    provider.broken = True
    await stale.verify(provider.token(["ybj-jbry"], key=rotated, kid="rsa-2"))
    assert stale.jwks.fetches == 2


async def test_unknown_key_ids_cannot_make_the_services_flood_the_provider(provider: Provider) -> None:
    provider.published = [provider.jwk(provider.rsa, "rsa-1")]
    provider.broken = False
    verifier = _verifier(provider, ttl_s=3600, min_refetch_interval_s=3600)
    await verifier.verify(provider.token(["ybj-jbry"]))
    for n in range(50):
        with pytest.raises(Unauthenticated) as refused:
            await verifier.verify(provider.token(["ybj-jbry"], kid=f"made-up-{n}"))
        assert refused.value.details == {"reason": "unknown_key"}
    assert verifier.jwks.fetches == 1


async def test_an_unreachable_provider_answers_503_until_its_keys_are_had(provider: Provider) -> None:
    verifier = _verifier(
        provider, ttl_s=3600, min_refetch_interval_s=0, url=f"http://127.0.0.1:{free_port()}/certs"
    )
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(provider.token(["ybj-jbry"]))


async def test_a_long_display_name_is_cut_not_refused(
    registry_with_provider: Harness, provider: Provider
) -> None:
    """The provider's display name (an office's full title, say) is shown, not checked: it cannot lock anyone
    out."""
    title = "安徽省合肥市瑶海区医疗保障局城乡居民基本医疗保险参保征缴工作专班经办窗口工作人员" * 2
    staff = provider.token(["ybj-jbry"], name=title)
    response = await registry_with_provider.client.get("/dashboard", params=YAOHAI, headers=_bearer(staff))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("document", [{"keys": []}, {}, {"keys": None}, {"keys": "rsa-1"}, [1, 2]])
async def test_a_key_set_with_no_key_in_it_is_a_failed_fetch(provider: Provider, document: Any) -> None:
    """A provider answering 200 with an empty or broken key set (a deployment gone wrong) neither signs
    everybody out nor breaks the service: the keys held stay in use, and with none the answer is 503."""
    provider.published = [provider.jwk(provider.rsa, "rsa-1")]
    verifier = _verifier(provider, ttl_s=0, min_refetch_interval_s=0)  # stale at once: fetched every time
    assert (await verifier.verify(provider.token(["ybj-jbry"]))).role is Role.STAFF
    provider.document = document
    assert (await verifier.verify(provider.token(["ybj-jbry"]))).role is Role.STAFF
    assert verifier.jwks.fetches == 2
    fresh = _verifier(provider, ttl_s=3600, min_refetch_interval_s=0)
    provider.document = document
    with pytest.raises(ServiceUnavailable):
        await fresh.verify(provider.token(["ybj-jbry"]))


async def test_a_provider_trickling_its_answer_cannot_hold_the_services(provider: Provider) -> None:
    """Each read of a byte at a time is within the client's timeout; the fetch as a whole has a deadline.
    Meanwhile a token signed by a key already held is verified with it, without waiting for the fetch."""
    provider.published = [provider.jwk(provider.rsa, "rsa-1")]
    starved = _verifier(provider, ttl_s=3600, min_refetch_interval_s=0, timeout_s=0.5)
    provider.trickle = True
    try:
        with pytest.raises(ServiceUnavailable):
            # The guard only keeps a failing run from hanging: without the deadline the fetch never ends.
            await asyncio.wait_for(starved.verify(provider.token(["ybj-jbry"])), 60)
        stale = _verifier(provider, ttl_s=0, min_refetch_interval_s=0, timeout_s=60)
        assert (await stale.verify(provider.token(["ybj-jbry"]))).role is Role.STAFF
        provider.trickle = True
        fetching = asyncio.create_task(stale.verify(provider.token(["ybj-jbry"])))

        async def fetching_again() -> bool | None:
            return stale.jwks.fetches == 2 or None

        await eventually(fetching_again)
        assert (await stale.verify(provider.token(["ybj-jbry"]))).role is Role.STAFF
        assert not fetching.done()
        fetching.cancel()
    finally:
        provider.trickle = False


def test_a_provider_is_configured_whole_and_over_https_in_production() -> None:
    with pytest.raises(ValidationError, match="go together"):
        RegistrySettings(environment="test", database_url="sqlite+aiosqlite://", oidc_issuer=ISSUER)
    with pytest.raises(ValidationError, match="https"):
        RegistrySettings(
            environment="production",
            database_url="postgresql+asyncpg://u@db/x",
            auth_keys={"k": "s" * 40},
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="svc",
            kafka_sasl_password="p" * 20,
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            oidc_jwks_url="http://sso.internal/certs",
        )
    production = {
        "environment": "production",
        "database_url": "postgresql+asyncpg://u@db/x",
        "auth_keys": {"k": "s" * 40},
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": "svc",
        "kafka_sasl_password": "p" * 20,
        "oidc_issuer": ISSUER,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_url": "https://sso.internal/certs",
    }
    # A provider's role named like ours is not ours in production unless the mapping says so.
    with pytest.raises(ValidationError, match="role_values"):
        RegistrySettings.model_validate(production)
    mapped = {**production, "oidc_claims": {"role_values": {"ybj-jbry": "staff"}}}
    assert RegistrySettings.model_validate(mapped).oidc_claims.role_values == {"ybj-jbry": Role.STAFF}
    mapping = RegistrySettings.model_validate(
        {
            "database_url": "sqlite+aiosqlite://",
            "oidc_claims": {"role": "groups", "role_values": {"g1": "staff"}},
        }
    ).oidc_claims
    assert (mapping.role, mapping.role_values, mapping.regions) == ("groups", {"g1": Role.STAFF}, "regions")
