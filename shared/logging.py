"""Structured logging (structlog) with personal data masked before anything is written."""

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# 18-character resident ID numbers and mainland mobile numbers, wherever they appear in a log line.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{3})([0-9]{10})([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
# Standalone only: a run of digits inside an identifier or reference (CBOA559FC16345671449BD…) is not a phone.
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9A-Za-z])")


def mask_id_number(id_number: str) -> str:
    """3401**********123X: region prefix and the last four characters stay readable."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """138****5678: the network prefix and the last four digits stay readable."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_pii(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(3), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def _mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {k: mask_pii(v) if isinstance(v, str) else v for k, v in event_dict.items()}


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper(), force=True)
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
