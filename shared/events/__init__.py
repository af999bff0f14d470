"""Event contracts: the CloudEvents envelope, topic names, and every payload both services exchange."""

from shared.events.envelope import Envelope, EventData, new_envelope
from shared.events.payloads import (
    EVENT_TYPES,
    EnrollmentCancelled,
    EnrollmentCreated,
    EnrollmentLapsed,
    EnrollmentRepriced,
    PaymentConfirmed,
    PaymentRefunded,
    SubsidyLineData,
)
from shared.events.topics import COLLECTION_PAYMENTS, REGISTRY_ENROLLMENTS, dead_letter_topic

__all__ = [
    "COLLECTION_PAYMENTS",
    "EVENT_TYPES",
    "REGISTRY_ENROLLMENTS",
    "EnrollmentCancelled",
    "EnrollmentCreated",
    "EnrollmentLapsed",
    "EnrollmentRepriced",
    "Envelope",
    "EventData",
    "PaymentConfirmed",
    "PaymentRefunded",
    "SubsidyLineData",
    "dead_letter_topic",
    "new_envelope",
]
