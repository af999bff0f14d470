"""缴费单据: every payment has a receipt a resident can look up and print."""

import pytest

from collection.receipts.words import in_words
from tests.collection.helpers import open_bill, pay_online
from tests.conftest import Harness
from tests.support import problem


async def test_a_family_payment_has_one_receipt_in_json_and_as_a_printable_page(collection: Harness) -> None:
    collection.at("2023-12-31T23:30:00+08:00")  # Beijing time: still the 31st on the receipt
    bills = [await open_bill(collection, 38000), await open_bill(collection, 3800)]
    paid = await pay_online(collection, [b["bill_id"] for b in bills], "wechat")
    receipt_no = paid["receipt_no"]

    receipt = (await collection.client.get(f"/v1/receipts/{receipt_no}")).json()
    assert (receipt["payment_id"], receipt["amount"], receipt["amount_in_words"]) == (
        paid["payment_id"],
        "418.00",
        "肆佰壹拾捌元整",
    )
    assert (receipt["paid_on"], receipt["channel_name"], receipt["agent_name"]) == (
        "2023-12-31",
        "微信",
        None,
    )
    assert [(line["amount"], line["coverage_year"]) for line in receipt["lines"]] == [
        ("380.00", 2024),
        ("38.00", 2024),
    ]
    assert all("*" in line["id_number_masked"] for line in receipt["lines"])

    page = await collection.client.get(f"/v1/receipts/{receipt_no}/print")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "城乡居民基本医疗保险缴费凭证" in html
    # The business clock runs on from 23:30:00 while the test pays: the seconds are whatever they became.
    for shown in (receipt_no, "肆佰壹拾捌元整", "2023年12月31日 23:30:", "418.00"):
        assert shown in html
    assert receipt["lines"][0]["id_number_masked"] in html
    assert bills[0]["bill_id"] not in html  # internal ids are not printed


async def test_an_unknown_receipt_is_404(collection: Harness) -> None:
    for path in ("/v1/receipts/CB20231231NOSUCH", "/v1/receipts/CB20231231NOSUCH/print"):
        response = await collection.client.get(path)
        assert (response.status_code, problem(response)["code"]) == (404, "payment_not_found")


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (38000, "叁佰捌拾元整"),
        (3800, "叁拾捌元整"),
        (102050, "壹仟零贰拾元伍角"),
        (10000000, "壹拾万元整"),
        (1000500, "壹万零伍元整"),
        (100000005, "壹佰万元零伍分"),
        (50, "伍角"),
        (0, "零元整"),
    ],
)
def test_amounts_in_capital_numerals(fen: int, words: str) -> None:
    assert in_words(fen) == words
