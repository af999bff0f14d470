"""The verified-token cache (shared.auth.VerifiedTokens): a token is served from it only until its `exp`,
and it holds a bounded number of tokens."""

import time

from shared.auth import Principal, Role, VerifiedTokens


def principal(subject: str) -> Principal:
    return Principal(subject=subject, role=Role.STAFF, regions=frozenset({"340104"}))


def test_a_token_is_held_until_it_expires() -> None:
    tokens = VerifiedTokens()
    tokens.put("live", principal("a"), time.time() + 60)
    tokens.put("expired", principal("b"), time.time() - 1)
    assert tokens.get("live") == principal("a")
    assert tokens.get("expired") is None  # verified again, and refused if it is past its leeway
    assert tokens.get("unknown") is None


def test_past_its_size_the_oldest_token_is_dropped() -> None:
    tokens = VerifiedTokens(size=2)
    for name in ("first", "second", "third"):
        tokens.put(name, principal(name), time.time() + 60)
    assert tokens.get("first") is None
    assert tokens.get("second") == principal("second")
    assert tokens.get("third") == principal("third")
