"""The event contracts in docs/events are the ones the code uses; money never goes through floats."""

import json
import subprocess

import pytest
from pydantic import ValidationError

from shared.events import EVENT_TYPES, Envelope
from shared.money import format_fen, parse_yuan
from tests.support import CANBAO, ROOT


def test_documented_event_schemas_are_current(tmp_path: object) -> None:
    out = ROOT / "var" / "schemas-check"
    subprocess.run([str(CANBAO), "schemas", "--out", str(out)], check=True, cwd=ROOT, capture_output=True)
    documented = ROOT / "docs" / "events"
    generated = sorted(p.name for p in out.glob("*.json"))
    assert generated == sorted(p.name for p in documented.glob("*.json"))
    assert len(generated) == len(EVENT_TYPES) + 1
    for name in generated:
        assert json.loads((out / name).read_text()) == json.loads((documented / name).read_text()), (
            f"docs/events/{name} is stale: run `make schemas`"
        )


def test_envelope_carries_the_cloudevents_attributes() -> None:
    required = set(Envelope.model_json_schema()["required"])
    assert {"id", "source", "type", "time", "subject", "data"} <= required


@pytest.mark.parametrize(("time", "valid"), [("2023-10-08T02:00:00Z", True), ("2023-10-08T10:00:00", False)])
def test_an_events_time_names_a_moment(time: str, valid: bool) -> None:
    """A time without its offset is refused (dead-lettered by a consumer), not read in the process's zone."""
    event = {"id": "e1", "source": "/canbao/registry", "type": "t", "time": time, "subject": "s", "data": {}}
    if valid:
        assert Envelope.model_validate(event).time.utcoffset() is not None
    else:
        with pytest.raises(ValidationError, match="timezone"):
            Envelope.model_validate(event)


@pytest.mark.parametrize(
    ("text", "fen"), [("380.00", 38000), ("380", 38000), ("0.5", 50), ("0.05", 5), ("1020.10", 102010)]
)
def test_yuan_strings_parse_to_fen_and_back(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen
    assert parse_yuan(format_fen(fen)) == fen


@pytest.mark.parametrize("text", ["", "1e3", "380.001", "-1", "0380", " 380", "380.", "NaN", "３８０"])
def test_malformed_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_yuan(text)


def test_negative_fen_formats_with_sign() -> None:
    assert format_fen(-5) == "-0.05"
