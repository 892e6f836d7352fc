"""Money as operators type it (``29.00 usd``) and as Stripe wants it (minor units)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from billing_cli.errors import UsageError

# Stripe's zero-decimal and three-decimal currencies; every other currency has two decimals.
_ZERO = "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf"
ZERO_DECIMAL = frozenset(_ZERO.split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())  # noqa: SIM905
# The ISO 4217 codes Stripe accepts for charges (its "supported presentment currencies").
_STRIPE = """
aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd
cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq
gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd
lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk
php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top
try ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xcg xof xpf yer zar zmw
"""
STRIPE_CURRENCIES = frozenset(_STRIPE.split())
# Only plain decimals are amounts: ASCII digits and one optional point. Decimal() alone would
# take "1e3", "1_000", "inf" and full-width digits ("１２").
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


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
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise UsageError(f"currency must be a three-letter ISO code like usd, not {currency!r}")
    if code not in STRIPE_CURRENCIES:
        raise UsageError(f"currency {code!r} is not an ISO 4217 code that Stripe supports")
    return code


def to_minor_units(amount: str, currency: str) -> int:
    """Parse ``"29.00"`` in ``usd`` to ``2900``; refuse more decimals than the currency has."""
    code = check_currency(currency)
    text = amount.strip()
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise UsageError(f"amount must be a plain decimal number like 29.00, not {amount!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise UsageError(
            f"amount must be a plain decimal number like 29.00, not {amount!r}"
        ) from None
    if value <= 0:
        raise UsageError(f"amount must be greater than zero, not {amount!r}")
    places = decimals(code)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        if places == 0:
            raise UsageError(
                f"{code.upper()} has no minor unit: give a whole amount, not {amount!r}"
            )
        raise UsageError(f"{code.upper()} takes at most {places} decimals; got {amount!r}")
    if minor > 99_999_999:
        raise UsageError(f"amount {amount} {code.upper()} is above Stripe's limit")
    return int(minor)


def major_units(minor: int, currency: str) -> str:
    """``2900, "usd"`` -> ``"29.00"``: the text :func:`to_minor_units` reads back to ``minor``."""
    return str(Decimal(minor).scaleb(-decimals(currency)))


def format_money(minor: int | None, currency: str | None) -> str:
    """``2900, "usd"`` -> ``"29.00 USD"``."""
    if minor is None or not currency:
        return ""
    places = decimals(currency)
    major = Decimal(minor).scaleb(-places)
    return f"{major:,.{places}f} {currency.upper()}"


# The fields of a view that hold Stripe minor units; they are read with the view's ``currency``.
MINOR_UNIT_FIELDS = frozenset(
    {
        "amount",
        "amount_captured",
        "amount_due",
        "amount_off",
        "amount_paid",
        "amount_refunded",
        "amount_remaining",
        "balance",
        "ending_balance",
        "proration_amount",
        "refundable",
        "starting_balance",
        "subtotal",
        "total",
    }
)
# A customer balance is signed the other way round from how people say it (negative is credit).
BALANCE_FIELDS = frozenset({"balance", "ending_balance", "starting_balance"})


def format_balance(balance: int, currency: str) -> str:
    """Stripe's customer balance as people say it: ``-500`` is ``5.00 USD credit``."""
    if balance < 0:
        return f"{format_money(-balance, currency)} credit"
    if balance > 0:
        return f"{format_money(balance, currency)} owed"
    return "none"


def _minor_text(key: str, value: Any, currency: Any) -> str | None:
    """``value`` of field ``key`` in major units, or None when it is not an amount."""
    if key not in MINOR_UNIT_FIELDS or not isinstance(currency, str) or not currency:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return (
        format_balance(value, currency) if key in BALANCE_FIELDS else format_money(value, currency)
    )


def in_major_units(view: Mapping[str, Any]) -> dict[str, Any]:
    """A view as a table shows it: each minor-unit amount in major units with its currency.

    A ``<field>_display`` the service already wrote wins and takes the field's place, so a
    person sees one row ``balance  5.00 USD credit``, never ``balance -500`` beside it. This is
    the one place a table turns minor units into money (render calls it for every view and
    every before/after diff), so no command formats amounts of its own.
    """
    shown = dict(view)
    currency = shown.get("currency")
    for key in MINOR_UNIT_FIELDS & shown.keys():
        twin = shown.pop(f"{key}_display", None)
        text = twin if twin is not None else _minor_text(key, shown[key], currency)
        if text is not None:
            shown[key] = text
    return shown


def with_display(data: Any) -> Any:
    """``--json`` data where every minor-unit amount has a ``<field>_display`` twin beside it.

    JSON keeps Stripe's integers (scripts compute with them) and says what they mean: each
    record that carries a ``currency`` gains ``amount_display: "5.50 USD"`` and the like, at
    any depth (a change's ``before``/``after``, an invoice inside a result).
    """
    if isinstance(data, list):
        return [with_display(item) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    currency = data.get("currency")
    for key, value in data.items():
        out[key] = with_display(value)
        text = _minor_text(key, value, currency)
        if text is not None and f"{key}_display" not in data:
            out[f"{key}_display"] = text
    return out
