"""Exact money: Decimal only, parsed from decimal strings, rounded HALF_UP (M1, M2)."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

RATED_PLACES = Decimal("0.0001")  # M2: rated amounts are kept to 4 decimal places
SHOWN_PLACES = Decimal("0.01")  # M2: invoice lines and totals are shown to 2 decimal places
ZERO = Decimal("0")

# An explicit limit: no single amount in this ledger is anywhere near a trillion.
MAX_ABS_AMOUNT = Decimal("1000000000000")


def parse_money(value: object, field: str) -> Decimal:
    """Parse a decimal string such as "10.00" or "-2.5" into an exact Decimal.

    JSON numbers are refused on purpose: a float has already lost exactness (M1).
    Raises ValueError with a reason that names the field.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f'{field} must be a decimal string such as "10.00", got {type(value).__name__}'
        )
    text = value.strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{field} is not a decimal number: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"{field} must be a finite decimal number, got {value!r}")
    if abs(amount) >= MAX_ABS_AMOUNT:
        raise ValueError(f"{field} must be less than 1000000000000 (10^12) in size, got {value!r}")
    return amount


def rated(amount: Decimal) -> Decimal:
    """Round a computed amount to the 4 places a rated amount keeps (M2, HALF_UP)."""
    # The rounding given by position: by keyword, Python parses it for each call (a third of
    # the call, and the ledger rounds several amounts an event).
    return amount.quantize(RATED_PLACES, ROUND_HALF_UP)


def shown(amount: Decimal) -> Decimal:
    """Round an amount to the 2 places an invoice line shows (M2, HALF_UP); never "-0.00"."""
    rounded = amount.quantize(SHOWN_PLACES, ROUND_HALF_UP)
    return rounded if rounded else rounded.copy_abs()


def money_text(amount: Decimal) -> str:
    """The canonical decimal string of a rated amount, e.g. "25.0000" (JSON carries strings)."""
    return str(rated(amount))


# The text of no amount, "0.0000": an outcome whose balance did not move says so.
ZERO_TEXT = money_text(ZERO)
