"""The ledger's accounts, named by what they hold. An account with a subject (a funder, a channel) is
`kind:subject`, e.g. `department_receivable:县民政局`."""

import enum

RESIDENT_RECEIVABLE = "resident_receivable"  # what residents still owe on open bills
FISCAL_ACCOUNT = "resident_insurance_fiscal"  # 城乡居民医保财政专户: the contributions the fund is due
TREASURY = "treasury"  # 国库: money collected and remitted


# Here, beside the accounts: each channel but the agent and the subsidy holds the money it took in its own
# clearing account until it settles into the treasury.
class Channel(enum.StrEnum):
    """缴费渠道: the ways a resident's contribution reaches the tax bureau."""

    WECHAT = "wechat"
    ALIPAY = "alipay"
    PROVINCIAL_APP = "provincial_app"  # 皖事通 / 安徽医保公共服务平台
    TAX_HALL = "tax_hall"  # 办税服务厅 counter
    CASH = "cash"  # cash for the elderly
    BANK = "bank"
    AGENT = "agent"  # township or village collecting on residents' behalf (代收代缴)
    SUBSIDY = "subsidy"  # nothing left for the person to pay: settled by the funders' obligation


def department_receivable(funder: str) -> str:
    """What a funding department (or the medical-assistance fund, 医疗救助资金) owes for its subsidy lines."""
    return f"department_receivable:{funder}"


def agent_cash(agent_id: str) -> str:
    """Cash a township or village agent collected (代收) and owes the treasury until it remits it."""
    return f"agent_cash:{agent_id}"


def money_in(channel: Channel, agent_id: str | None) -> str:
    """Where a payment's money sits until it reaches the treasury: agent cash, or the channel's clearing."""
    return agent_cash(agent_id) if agent_id else channel_clearing(channel)


def channel_clearing(channel: Channel) -> str:
    """Money a channel has taken from residents and not yet settled into the treasury."""
    return f"channel_clearing:{channel.value}"
