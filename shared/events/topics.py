"""Versioned topic names. Every event is keyed by enrollment id so one enrollment's events stay in order."""

REGISTRY_ENROLLMENTS = "registry.enrollments.v1"
COLLECTION_PAYMENTS = "collection.payments.v1"
