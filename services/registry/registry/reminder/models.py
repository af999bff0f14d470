import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime, enum_column


class ReminderChannel(enum.StrEnum):
    SMS = "sms"  # 短信
    WECHAT = "wechat"  # 微信模板消息, to the account bound to the phone number


class ReminderStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # the sender refused it MAX_ATTEMPTS times


class Reminder(Base):
    """参保提醒: a notification outbox row. Written in the transaction that decides to remind; a dispatcher
    hands it to the configured sender and records the outcome."""

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("screening_cases.id"), index=True)
    channel: Mapped[ReminderChannel] = mapped_column(enum_column(ReminderChannel))
    recipient: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(String(512))
    status: Mapped[ReminderStatus] = mapped_column(enum_column(ReminderStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_by: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(String(256), default=None)


class ReminderThrottle(Base):
    """When a person was last reminded. One row per person, updated under a row lock, so two reminders can
    never both pass the interval check however many requests race."""

    __tablename__ = "reminder_throttles"

    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
