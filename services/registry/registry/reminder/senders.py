"""Who delivers reminders. The embedded default writes them to a log file; a deployment names its own
gateway (SMS, WeChat template messages) as `module:factory`, a callable taking the registry settings."""

import asyncio
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shared.logging import mask_phone

if TYPE_CHECKING:
    from registry.settings import RegistrySettings


@dataclass(frozen=True)
class OutgoingReminder:
    reminder_id: str
    channel: str
    recipient: str
    text: str


class ReminderSender(Protocol):
    async def send(self, reminder: OutgoingReminder) -> None:
        """Deliver it or raise; a raised error is retried later."""
        ...


class LogFileSender:
    """Appends each reminder to a JSON-lines file, the phone number masked as in every log."""

    def __init__(self, path: Path):
        self.path = path

    async def send(self, reminder: OutgoingReminder) -> None:
        line = json.dumps(
            {
                "reminder_id": reminder.reminder_id,
                "channel": reminder.channel,
                "to": mask_phone(reminder.recipient),
                "text": reminder.text,
            },
            ensure_ascii=False,
        )
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def load_sender(settings: "RegistrySettings") -> ReminderSender:
    if settings.reminder_sender == "log":
        return LogFileSender(settings.reminder_log)
    module_name, _, factory_name = settings.reminder_sender.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    sender: ReminderSender = factory(settings)
    return sender
