"""人民币大写: the amount in capital numerals, as Chinese receipts print it."""

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿", "万亿")


def _section(n: int) -> str:
    """0 < n < 10000, with inner zeros read once (1020: 壹仟零贰拾)."""
    text, zero = "", False
    for power in range(3, -1, -1):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(text)
        else:
            text += ("零" if zero else "") + _DIGITS[digit] + _UNITS[power]
            zero = False
    return text


def _whole(n: int) -> str:
    sections = []
    while n:
        n, rest = divmod(n, 10_000)
        sections.append(rest)
    text, gap = "", False
    for index in range(len(sections) - 1, -1, -1):
        value = sections[index]
        if value == 0:
            gap = bool(text)
            continue
        if text and (gap or value < 1000):
            text += "零"
        text += _section(value) + _SECTIONS[index]
        gap = False
    return text


def in_words(fen: int) -> str:
    """38000 -> 叁佰捌拾元整; 102050 -> 壹仟零贰拾元伍角; 0 -> 零元整."""
    if fen < 0:
        return "负" + in_words(-fen)
    yuan, cents = divmod(fen, 100)
    jiao, fen_ = divmod(cents, 10)
    text = _whole(yuan) + "元" if yuan else ("" if cents else "零元")
    if not cents:
        return text + "整"
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif yuan:
        text += "零"
    if fen_:
        text += _DIGITS[fen_] + "分"
    return text
