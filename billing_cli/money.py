"""Money as operators type it (``29.00 usd``) and as Stripe wants it (minor units)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from billing_cli.errors import UsageError

# Stripe's zero-decimal and three-decimal currencies; every other currency has two decimals.
_ZERO = "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf"
ZERO_DECIMAL = frozenset(_ZERO.split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())  # noqa: SIM905


def decimals(currency: str) -> int:
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def check_currency(currency: str) -> str:
    """A three-letter ISO code, lower-cased as Stripe stores it."""
    code = currency.strip().lower()
    if len(code) != 3 or not code.isalpha():
        raise UsageError(f"currency must be a three-letter ISO code like usd, not {currency!r}")
    return code


def to_minor_units(amount: str, currency: str) -> int:
    """Parse ``"29.00"`` in ``usd`` to ``2900``; refuse more decimals than the currency has."""
    code = check_currency(currency)
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise UsageError(f"amount must be a number like 29.00, not {amount!r}") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"amount must be greater than zero, not {amount!r}")
    places = decimals(code)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise UsageError(f"{code.upper()} takes at most {places} decimals; got {amount!r}")
    if minor > 99_999_999:
        raise UsageError(f"amount {amount} {code.upper()} is above Stripe's limit")
    return int(minor)


def format_money(minor: int | None, currency: str | None) -> str:
    """``2900, "usd"`` -> ``"29.00 USD"``."""
    if minor is None or not currency:
        return ""
    places = decimals(currency)
    major = Decimal(minor).scaleb(-places)
    return f"{major:,.{places}f} {currency.upper()}"
