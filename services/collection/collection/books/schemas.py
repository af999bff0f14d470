from pydantic import BaseModel, Field

from shared.money import Yuan


class Mismatch(BaseModel):
    account: str
    ledger: Yuan = Field(description="The account's balance in the ledger")
    books: Yuan = Field(description="What the bills and payments say it should be")


class BillRefundProblem(BaseModel):
    bill_id: str
    problem: str = Field(
        description="`refunds_exceed_payment`, `refunded_bill_not_refunded_in_full` or "
        "`bill_refunded_total_differs` (the bill's refunded total is not the sum of its refunds)"
    )
    paid: Yuan
    refunded: Yuan


class LedgerCheck(BaseModel):
    ok: bool = Field(
        description="Every transaction balances, every account agrees with the books, every payment "
        "belongs to the bills it settled, every paid bill to one payment, and no bill is refunded more than "
        "was paid or a refunded one less"
    )
    transactions: int
    entries: int
    unbalanced_transactions: list[str]
    mismatches: list[Mismatch]
    payments_not_matching_items: list[str] = Field(description="Payments whose items do not add up to them")
    bills_not_settled_once: list[str] = Field(
        description="Bills paid by several payments or by none, or holding a payment while unpaid or "
        "cancelled (money kept for an enrollment that ended without its refund)"
    )
    bill_refund_problems: list[BillRefundProblem] = Field(
        description="Bills whose refunds disagree with what was paid on them"
    )
