from pydantic import BaseModel, Field

from shared.money import Yuan


class AccountBalance(BaseModel):
    account: str = Field(examples=["department_receivable:县民政局"])
    balance: Yuan = Field(description="Debits minus credits")


class BalanceList(BaseModel):
    items: list[AccountBalance]
