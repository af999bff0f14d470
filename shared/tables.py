"""The tables every service keeps besides its domains' own — the outbox, the inbox, dead letters and the audit
trail — defined once, on each service's own declarative base, so that both services' stay alike."""

from typing import NamedTuple, TypeVar, cast

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from shared.audit import AuditMixin
from shared.db import NAMING_CONVENTION
from shared.inbox import DeadLetterMixin, InboxMixin
from shared.outbox import OutboxMixin

_Mixin = TypeVar("_Mixin")


def service_metadata() -> MetaData:
    """A service's metadata, naming constraints the way its migrations refer to them."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class ServiceTables(NamedTuple):
    outbox: type[OutboxMixin]
    inbox: type[InboxMixin]
    dead_letters: type[DeadLetterMixin]
    audit: type[AuditMixin]


def service_tables(base: type[DeclarativeBase]) -> ServiceTables:
    """The outbox, inbox, dead-letter and audit tables mapped on `base` (classes OutboxMessage, InboxMessage,
    DeadLetter and AuditEvent of the base's module)."""
    return ServiceTables(
        outbox=_mapped(base, OutboxMixin, "OutboxMessage", "outbox"),
        inbox=_mapped(base, InboxMixin, "InboxMessage", "inbox"),
        dead_letters=_mapped(base, DeadLetterMixin, "DeadLetter", "dead_letters"),
        audit=_mapped(base, AuditMixin, "AuditEvent", "audit_events"),
    )


def _mapped(base: type[DeclarativeBase], mixin: type[_Mixin], name: str, table: str) -> type[_Mixin]:
    # Built with type(): a class statement cannot take a base known only at run time past the type checker.
    namespace = {"__tablename__": table, "__module__": base.__module__, "__qualname__": name}
    return cast(type[_Mixin], type(name, (mixin, base), namespace))
