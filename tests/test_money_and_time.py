"""Parsing money and times as operators type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_cli.errors import UsageError
from billing_cli.money import format_money, in_major_units, to_minor_units, with_display
from billing_cli.timeparse import iso, parse_when


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("29.00", "usd", 2900), ("12.5", "EUR", 1250), ("500", "jpy", 500), ("1.234", "kwd", 1234)],
)
def test_to_minor_units(amount: str, currency: str, minor: int) -> None:
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("12.345", "usd", "at most 2 decimals"),
        ("10.5", "jpy", "JPY has no minor unit: give a whole amount"),
        ("0.5", "krw", "KRW has no minor unit"),
        ("1e3", "usd", "plain decimal"),
        ("1_000", "usd", "plain decimal"),
        ("１２", "usd", "plain decimal"),
        ("inf", "usd", "plain decimal"),
        ("NaN", "usd", "plain decimal"),
        (" 12.5\n", "xyz", "not an ISO 4217 code that Stripe supports"),
        ("12", "ｕｓｄ", "three-letter ISO code"),
        ("-3", "usd", "greater than zero"),
        ("abc", "usd", "number"),
        ("1", "dollars", "currency"),
    ],
)
def test_bad_amounts_are_usage_errors(amount: str, currency: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        to_minor_units(amount, currency)


def test_format_money() -> None:
    assert format_money(2900, "usd") == "29.00 USD"
    assert format_money(123456, "eur") == "1,234.56 EUR"
    assert format_money(500, "jpy") == "500 JPY"


def test_parse_when_ages_and_dates() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_when("48h", now=now) == now - timedelta(hours=48)
    assert parse_when("7d", now=now) == now - timedelta(days=7)
    assert parse_when("2026-11-01", now=now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert iso(parse_when("2026-11-01T10:00:00+02:00")) == "2026-11-01T08:00:00Z"
    with pytest.raises(UsageError, match="cannot read"):
        parse_when("yesterday-ish")
    with pytest.raises(UsageError, match="cannot read"):
        parse_when("１２h")  # full-width digits are not an age
    with pytest.raises(UsageError, match="too far back"):
        parse_when("99999999999d")


def test_tables_read_minor_units_as_money_and_a_negative_balance_as_credit() -> None:
    shown = in_major_units(
        {"balance": -500, "amount_due": 550, "amount_paid": 0, "currency": "usd", "attempts": 3}
    )
    assert shown == {
        "balance": "5.00 USD credit",
        "amount_due": "5.50 USD",
        "amount_paid": "0.00 USD",
        "currency": "usd",
        "attempts": 3,
    }
    assert in_major_units({"balance": 1200, "currency": "jpy"})["balance"] == "1,200 JPY owed"
    assert in_major_units({"amount": 550})["amount"] == 550  # no currency: not money
    twin = in_major_units({"amount": 550, "amount_display": "x", "currency": "usd"})
    assert twin == {"amount": "x", "currency": "usd"}


def test_json_keeps_minor_units_and_names_them_at_any_depth() -> None:
    data = {"after": {"refundable": 700, "currency": "usd"}, "rows": [{"total": 5, "x": 1}]}
    assert with_display(data) == {
        "after": {"refundable": 700, "currency": "usd", "refundable_display": "7.00 USD"},
        "rows": [{"total": 5, "x": 1}],
    }
