from pydantic import BaseModel, Field

from shared.money import Yuan


class AccountBalance(BaseModel):
    account: str = Field(examples=["department_receivable:县民政局"])
    balance: Yuan = Field(description="Debits minus credits")


class BalanceList(BaseModel):
    items: list[AccountBalance]


class Mismatch(BaseModel):
    account: str
    ledger: Yuan = Field(description="The account's balance in the ledger")
    books: Yuan = Field(description="What the bills and payments say it should be")


class LedgerCheck(BaseModel):
    ok: bool = Field(description="Every transaction balances and every account agrees with the books")
    transactions: int
    entries: int
    unbalanced_transactions: list[str]
    mismatches: list[Mismatch]
