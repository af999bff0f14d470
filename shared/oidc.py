"""Tokens from the bureau's own identity provider (统一身份认证平台), through OpenID Connect.

Both services accept, besides their HS256 tokens, RS256/ES256 tokens that an external OpenID Connect provider
signs: verified with the keys the provider publishes at its JWKS URL, for the configured issuer and audience,
within the services' longest token lifetime. The keys are cached for `oidc_jwks_ttl_s` and fetched again when
a token names a key the cache does not hold (the provider rotated its keys), but never more often than every
`oidc_jwks_refetch_min_interval_s`: tokens with made-up key ids cannot turn the services into a flood of
requests to the provider. A fetch has a deadline for the whole answer (a provider trickling bytes cannot hold
it open), follows no redirect and reads at most MAX_JWKS_BYTES; meanwhile tokens signed by a key already
held are verified with it, not made to wait. A fetch that fails — an error, a timeout, or a document with no
key to verify with — leaves the keys already held in use; with none, callers get 503.

The provider's claims become a role, regions and categories through `OidcClaimMapping` (docs/operations.md):
which claim holds each, and how the provider's role values translate. Residents do not sign in here (their
tokens come from the front-ends), and the provider's own session ids are not the registry's sign-in sessions:
an account disabled at the provider stops when its short-lived tokens expire.
"""

import asyncio
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.auth import CLOCK_SKEW, Principal, Role, TokenClaims, Unauthenticated, principal_of
from shared.errors import ServiceUnavailable

if TYPE_CHECKING:
    from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

# A provider's key set is a few kilobytes; anything much larger is not one.
MAX_JWKS_BYTES = 512 * 1024
# The key type each family of algorithms verifies with: a token naming one family is never checked with a key
# of another (the provider's RSA key offered to ES256 is a refusal, not an error).
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


class OidcClaimMapping(BaseModel):
    """Which of the provider's claims say who the caller is and what they may do. A claim is named by its
    key, or by a dotted path into nested objects (Keycloak keeps roles in `realm_access.roles`). A claim
    holding several values may be a JSON list or one string separated by spaces or commas."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(default="sub", description="The caller's account name (the audit trail's actor)")
    name: str | None = Field(
        default="name", description="The caller's display name, if the provider sends it"
    )
    role: str = Field(default="roles", description="The claim holding the caller's role or roles")
    role_values: dict[str, Role] = Field(
        default_factory=dict,
        description="The provider's role values and the Canbao role each means, e.g. "
        '{"ybj-jbry": "staff"}; values not listed are ignored. Empty: the values are Canbao role names',
    )
    regions: str = Field(default="regions", description="Region codes a staff member or department works in")
    categories: str = Field(default="categories", description="A department's subsidy categories")


def _claim(payload: dict[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise Unauthenticated({"reason": "claims_invalid"})


def map_claims(payload: dict[str, Any], mapping: OidcClaimMapping) -> TokenClaims:
    """The provider's claims as Canbao's: exactly one role other than resident, or Unauthenticated."""
    found = _values(_claim(payload, mapping.role))
    if mapping.role_values:
        roles = {mapping.role_values[v] for v in found if v in mapping.role_values}
    else:
        roles = {Role(v) for v in found if v in {r.value for r in Role}}
    roles.discard(Role.RESIDENT)
    if len(roles) != 1:
        reason = "role_not_mapped" if not roles else "several_roles"
        raise Unauthenticated({"reason": reason})
    name = _claim(payload, mapping.name) if mapping.name else None
    try:
        return TokenClaims(
            sub=_claim(payload, mapping.subject),
            role=roles.pop(),
            regions=_values(_claim(payload, mapping.regions)),
            categories=_values(_claim(payload, mapping.categories)),
            # Only shown on pages: a long one is cut, not a reason to refuse anyone.
            name=(name.strip()[:64] or None) if isinstance(name, str) else None,
        )
    except ValidationError as exc:
        raise Unauthenticated({"reason": "claims_invalid"}) from exc


class Jwks:
    """The provider's signing keys by key id, fetched from its JWKS URL and cached (see the module's doc)."""

    def __init__(self, url: str, *, ttl_s: float, min_refetch_interval_s: float, timeout_s: float = 5.0):
        self.url = url
        self.ttl_s = ttl_s
        self.min_refetch_interval_s = min_refetch_interval_s
        self.timeout_s = timeout_s
        self.fetches = 0  # successful and failed: what the rate limit bounds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._fetched_at is not None and time.monotonic() - self._fetched_at < self.ttl_s

    def _find(self, key_id: str | None) -> jwt.PyJWK | None:
        if key_id is None:
            # A provider with one key may leave the key id out of its tokens.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(key_id)

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        known = self._find(key_id)
        if known is not None and (self._fresh() or self._lock.locked()):
            return known  # stale, and being fetched again: still the provider's key until that succeeds
        async with self._lock:  # one fetch at a time; whoever waited finds its result
            known = self._find(key_id)
            if known is not None and self._fresh():
                return known
            now = time.monotonic()
            if self._attempted_at is None or now - self._attempted_at >= self.min_refetch_interval_s:
                self._attempted_at = now
                await self._refresh()
                known = self._find(key_id)
        if known is not None:
            return known  # stale keys are still the provider's until a fetch succeeds
        if self._fetched_at is None:
            raise ServiceUnavailable({"reason": "identity_provider_unavailable"})
        raise Unauthenticated({"reason": "unknown_key" if key_id is not None else "missing_key_id"})

    async def _refresh(self) -> None:
        self.fetches += 1
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole answer, however slowly it comes
                document = await self._fetch()
            keys = _signing_keys(document)
        except (httpx.HTTPError, ValueError, TimeoutError) as exc:
            log.warning("jwks_fetch_failed", url=self.url, error=type(exc).__name__)
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("jwks_fetched", url=self.url, keys=sorted(keys))

    async def _fetch(self) -> dict[str, Any]:
        body = bytearray()
        async with (
            httpx.AsyncClient(timeout=self.timeout_s) as client,
            client.stream("GET", self.url, headers={"Accept": "application/json"}) as response,
        ):
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("the JWKS document is too large")
        document = httpx.Response(200, content=bytes(body)).json()
        if not isinstance(document, dict):
            raise ValueError("a JWKS document is a JSON object")
        return document


def _signing_keys(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS document by key id; ValueError when it has none to verify with (a provider
    answering `{}` or an empty set by mistake must not take away the keys in use)."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("a JWKS document has a list of keys")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[str(entry.get("kid", ""))] = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:  # a key type or curve we do not verify with
            log.warning("jwks_key_skipped", kid=str(entry.get("kid"))[:64], error=str(exc))
    if not keys:
        raise ValueError("the JWKS document holds no signing key")
    return keys


class OidcVerifier:
    """Verifies the provider's tokens (shared.auth's ExternalTokens)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        mapping: OidcClaimMapping,
        jwks: Jwks,
        max_lifetime: timedelta,
    ):
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.mapping = mapping
        self.jwks = jwks
        self.max_lifetime = max_lifetime

    @classmethod
    def of(cls, settings: "ServiceSettings") -> "OidcVerifier | None":
        """The verifier the settings describe; None when no provider is configured."""
        if settings.oidc_issuer is None or settings.oidc_audience is None or settings.oidc_jwks_url is None:
            return None
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            algorithms=list(settings.oidc_algorithms),
            mapping=settings.oidc_claims,
            jwks=Jwks(
                settings.oidc_jwks_url,
                ttl_s=settings.oidc_jwks_ttl_s,
                min_refetch_interval_s=settings.oidc_jwks_refetch_min_interval_s,
            ),
            max_lifetime=timedelta(seconds=settings.auth_max_token_lifetime_s),
        )

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated({"reason": "invalid_token"}) from exc
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise Unauthenticated({"reason": "algorithm_not_allowed"})
        key_id = header.get("kid")
        key = await self.jwks.key(None if key_id is None else str(key_id))
        if key.key_type != KEY_TYPES.get(str(algorithm)[:2]):
            raise Unauthenticated({"reason": "invalid_token"})
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=CLOCK_SKEW,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated({"reason": "expired"}) from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated({"reason": "invalid_token"}) from exc
        if int(payload["exp"]) > time.time() + (self.max_lifetime + CLOCK_SKEW).total_seconds():
            raise Unauthenticated({"reason": "lifetime_too_long"})
        return principal_of(map_claims(payload, self.mapping))
