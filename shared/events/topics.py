"""Versioned topic names. Every event is keyed by enrollment id so one enrollment's events stay in order."""

REGISTRY_ENROLLMENTS = "registry.enrollments.v1"
COLLECTION_PAYMENTS = "collection.payments.v1"


def dead_letter_topic(topic: str) -> str:
    """Where a consumer of `topic` sets aside what it cannot process, as received (also in its table)."""
    return f"{topic}.dlq"
