"""Structured logging (structlog) with personal data masked before anything is written.

Log policy: no line carries a full ID number, a mobile number or a person's name. ID and mobile numbers are
masked wherever they appear (`mask_pii`). Names cannot be recognised by a pattern, so they are kept out at
the source: database statements' parameters are hidden (`hide_parameters`, shared.db), the values a
validation error or a database error quotes are cut from every line (`scrub_values`), the access log names a
query's parameters without their values, and event payloads are never logged. Every line goes through these
processors: structlog's own and the standard library's (uvicorn, SQLAlchemy, aiokafka, warnings), tracebacks
included.
"""

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# 18-character resident ID numbers and mainland mobile numbers, wherever they appear in a log line.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{3})([0-9]{10})([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
# Standalone only: a run of digits inside an identifier or reference (CBOA559FC16345671449BD…) is not a phone.
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9A-Za-z])")
# Both need eleven digits in a row: one search spares the substitutions on texts without (most of them).
_DIGIT_RUN = re.compile(r"[0-9]{11}")


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
    if _DIGIT_RUN.search(text) is None:
        return text
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(3), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


# Where errors quote the values they refused. Each keeps what says where and why, and drops the value.
_QUOTED_VALUES = [
    # SQLAlchemy's statement parameters (hidden anyway: hide_parameters), to the end of the line.
    (re.compile(r"\[parameters: [^\n]*"), "[parameters: hidden]"),
    # pydantic: `[type=string_too_long, input_value='…', input_type=str]`.
    (re.compile(r"input_value=[^\n]*, input_type="), "input_value=hidden, input_type="),
    # PostgreSQL details: `Key (id_number)=(…) already exists`, `Failing row contains (…)`.
    (re.compile(r"(Key \([^)\n]*\)=)\([^\n]*"), r"\1(hidden)"),
    (re.compile(r"Failing row contains \([^\n]*"), "Failing row contains (hidden)"),
    # asyncpg, refusing an argument before it reaches the server: `invalid input for query argument $3: …`.
    (re.compile(r"(invalid input for query argument \$\d+:)[^\n]*"), r"\1 hidden"),
]


# What each of the patterns above begins with: one search spares their substitutions on texts without.
_QUOTING = re.compile(
    r"\[parameters: |input_value=|Key \(|Failing row contains \(|invalid input for query argument"
)


def scrub_values(text: str) -> str:
    """`text` with personal data masked and the values quoted by errors cut out."""
    if _QUOTING.search(text) is None:
        return mask_pii(text)
    for pattern, replacement in _QUOTED_VALUES:
        text = pattern.sub(replacement, text)
    return mask_pii(text)


def _mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {k: _scrubbed(v) for k, v in event_dict.items()}


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_values(value)
    if isinstance(value, BaseException):
        return scrub_values(repr(value))
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    return value


def _add_pid(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # A service run with WORKERS > 1 has its processes write to one stderr: each line says which wrote it.
    event_dict["pid"] = os.getpid()
    return event_dict


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Lines from the standard library's loggers (uvicorn's errors with their tracebacks, SQLAlchemy, aiokafka,
    # asyncio, warnings) are rendered by the same processors as structlog's own.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _add_pid,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _mask_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for existing in root.handlers[:]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_pid,
            structlog.processors.format_exc_info,
            _mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
