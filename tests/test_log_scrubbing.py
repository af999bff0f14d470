"""What the log processors cut from a text (shared.logging): each kind of quoted value and each number, alone
and together, and texts with none of them left as they are."""

import pytest

from shared.logging import mask_pii, scrub_values

ID_NUMBER = "34010419900101123X"
MOBILE = "13812345678"


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("/v1/enrollments", "/v1/enrollments"),
        ("CBOA559FC16345671449BD", "CBOA559FC16345671449BD"),
        (f"person {ID_NUMBER} phone {MOBILE}", "person 3401**********123X phone 138****5678"),
        ("[parameters: ('张三', 5)]", "[parameters: hidden]"),
        (
            "[type=string_too_long, input_value='张三', input_type=str]",
            "[type=string_too_long, input_value=hidden, input_type=str]",
        ),
        (f"Key (id_number)=({ID_NUMBER}) already exists", "Key (id_number)=(hidden)"),
        ("Failing row contains (a, 张三).", "Failing row contains (hidden)"),
        ("invalid input for query argument $3: '张三'", "invalid input for query argument $3: hidden"),
        (f"{MOBILE} then [parameters: ('张三',)]", "138****5678 then [parameters: hidden]"),
    ],
)
def test_quoted_values_are_cut_and_numbers_masked(text: str, scrubbed: str) -> None:
    assert scrub_values(text) == scrubbed


def test_masking_keeps_lengths_and_leaves_texts_without_numbers() -> None:
    text = f'{{"id_number": "{ID_NUMBER}", "mobile": "{MOBILE}", "ref": "1234567890"}}'
    masked = mask_pii(text)
    assert len(masked) == len(text)
    assert ID_NUMBER not in masked
    assert MOBILE not in masked
    assert "1234567890" in masked
    assert mask_pii("no numbers here") == "no numbers here"
