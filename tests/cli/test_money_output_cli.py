"""Money as a person reads it in the before/after tables and in ``invoices show`` (issue 18.6).

Tables say ``5.50 USD`` and ``2.50 USD credit``, never ``550`` or ``balance 0 -> -250``;
``--json`` keeps Stripe's minor units and gives each its ``<field>_display`` beside it.
Against the sandbox, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest

from billing_cli.repository import Database
from stripe_sandbox import Sandbox

from .conftest import Billing
from .test_invoices_cli import failed_renewal
from .test_payments_support_cli import charged, ready

__all__ = ["ready"]  # acme and a synced starter plan, as in the payments tests

pytestmark = pytest.mark.sandbox
SUBSCRIBE = ("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")


def row(stdout: str, field: str) -> str:
    """The table row that starts with ``field``, its cells joined by single spaces."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0] == field:
            return " ".join(cells)
    raise AssertionError(f"no row {field!r} in:\n{stdout}")


def test_a_credit_reads_as_a_credit(billing: Billing, ready: Database) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    args = ("tenants", "credit", "acme", "--amount", "2.50", "--currency", "usd", "--reason", "x")
    shown = billing(*args)
    assert shown.exit_code == 0, shown.stderr
    assert row(shown.stdout, "balance") == "balance none 2.50 USD credit"
    assert "balance_display" not in shown.stdout and "-250" not in shown.stdout
    as_json = billing.json(*args)
    assert as_json["after"]["balance"] == -500  # Stripe's sign and minor units stay in JSON
    assert as_json["after"]["balance_display"] == "5.00 USD credit"


def test_a_refund_table_shows_major_units(billing: Billing, ready: Database) -> None:
    payment = charged(billing)  # 12.50 USD
    shown = billing("payments", "refund", payment, "--amount", "5.50", "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    assert row(shown.stdout, "amount_refunded") == "amount_refunded 0.00 USD 5.50 USD"
    assert row(shown.stdout, "refundable") == "refundable 12.50 USD 7.00 USD"
    assert "550" not in shown.stdout and "1250" not in shown.stdout
    as_json = billing.json("payments", "refund", payment, "--amount", "5.50")
    assert as_json["after"]["amount_refunded"] == 550
    assert as_json["after"]["amount_refunded_display"] == "5.50 USD"
    assert as_json["before"]["refundable_display"] == "12.50 USD"


def test_coupon_create_shows_the_amount_off_in_major_units(
    billing: Billing, ready: Database
) -> None:
    args = ("coupons", "create", "FIVE", "--amount-off", "5.50", "--currency", "usd")
    shown = billing(*args, "--duration", "once")
    assert shown.exit_code == 0, shown.stderr
    assert row(shown.stdout, "amount_off") == "amount_off 5.50 USD"
    assert "550" not in shown.stdout


def test_invoice_show_and_pay_show_major_units_and_the_payment(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    _, invoice_id = failed_renewal(billing, sandbox)
    shown = billing("invoices", "show", invoice_id)
    assert shown.exit_code == 0, shown.stderr
    assert row(shown.stdout, "amount_due") == "amount_due 10.00 USD"
    assert row(shown.stdout, "amount_remaining") == "amount_remaining 10.00 USD"
    assert "1000" not in shown.stdout and "amount_due_display" not in shown.stdout
    detail = billing.json("invoices", "show", invoice_id)
    assert (detail["amount_due"], detail["amount_due_display"]) == (1000, "10.00 USD")
    assert str(detail["payment"]).startswith("pi_")
    assert row(shown.stdout, "payment") == f"payment {detail['payment']}"
    pay = billing("invoices", "pay", invoice_id, "--dry-run")
    assert pay.exit_code == 0, pay.stderr
    assert row(pay.stdout, "invoice.amount_remaining") == (
        "invoice.amount_remaining 10.00 USD 0.00 USD"
    )
