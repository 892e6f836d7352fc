"""Invoices across tenants, payments since a time, and refunds by invoice (issue 18.7),
against the sandbox through real HTTP, on SQLite and PostgreSQL.

The refund by invoice is interrupted by the fault proxy after Stripe refunded, then re-run:
exactly one refund in Stripe, one audit entry.
"""

from __future__ import annotations

import pytest
import stripe

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from stripe_sandbox import Sandbox
from tests.factories import add_synced_plan, add_tenant, row_counts
from tests.faults import Fault, FaultProxy

from .conftest import Billing
from .test_invoices_cli import failed_renewal
from .test_payments_support_cli import outcomes, refunds_of, stripe_client

__all__ = ["stripe_client"]  # a fixture shared with the payments tests
pytestmark = pytest.mark.sandbox


@pytest.fixture
def ready(db_env: Database, gateway: Gateway) -> Database:
    for slug in ("acme", "beta"):
        add_tenant(db_env, slug)
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    return db_env


def subscribe(billing: Billing, slug: str) -> str:
    """``slug`` subscribed with a good card; returns its first (paid) invoice id."""
    args = ("subs", "create", slug, "--plan", "starter", "--payment-method", "pm_card_visa")
    assert billing(*args).exit_code == 0
    (invoice,) = billing.json("invoices", "list", slug)
    assert invoice["status"] == "paid"
    return str(invoice["id"])


def test_open_invoices_of_all_tenants_with_their_tenant(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    _, failed = failed_renewal(billing, sandbox)  # acme: one paid, one open
    subscribe(billing, "beta")
    open_now = billing.json("invoices", "list", "--status", "open", "--since", "24h")
    assert [(i["tenant"], i["id"], i["status"]) for i in open_now] == [("acme", failed, "open")]
    every = billing.json("invoices", "list")
    assert sorted(i["tenant"] for i in every) == ["acme", "acme", "beta"]
    assert billing.json("invoices", "list", "--status", "open", "--since", "2999-01-01") == []
    table = billing("invoices", "list", "--status", "open")
    assert table.exit_code == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if " id " in line)
    assert header.split()[1] == "tenant" and "acme" in table.stdout and "beta" not in table.stdout


def test_payments_since(billing: Billing, ready: Database) -> None:
    subscribe(billing, "acme")
    assert len(billing.json("payments", "list", "acme", "--since", "1h")) == 1
    assert billing.json("payments", "list", "acme", "--since", "2999-01-01") == []
    bad = billing("payments", "list", "acme", "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "cannot read" in bad.stderr


def test_refund_by_invoice_dry_run_then_real(
    billing: Billing, ready: Database, stripe_client: stripe.StripeClient
) -> None:
    invoice = subscribe(billing, "acme")
    payment = billing.json("invoices", "show", invoice)["payment"]
    counts = row_counts(ready)
    dry = billing.json("payments", "refund", "--invoice", invoice, "--amount", "4.00", "--dry-run")
    assert dry["dry_run"] is True and dry["target"] == f"payment:{payment}"
    assert dry["message"] == f"would refund 4.00 USD of {payment} (acme); 6.00 USD left refundable"
    assert refunds_of(stripe_client, payment) == [] and row_counts(ready) == counts
    done = billing.json("payments", "refund", "--invoice", invoice, "--amount", "4.00")
    assert done["after"]["amount_refunded"] == 400
    assert refunds_of(stripe_client, payment) == [400]
    assert outcomes(ready, "refunded") == [f"refunded 4.00 USD of {payment}"]


def test_refund_by_invoice_refusals_are_one_line(billing: Billing, ready: Database) -> None:
    invoice = subscribe(billing, "acme")
    neither = billing("payments", "refund")
    assert neither.exit_code == 2 and neither.stderr.count("\n") == 1
    both = billing("payments", "refund", "pi_123", "--invoice", invoice)
    assert both.exit_code == 2 and "--invoice" in both.stderr
    bad = billing("payments", "refund", "--invoice", "pi_123")
    assert bad.exit_code == 2 and "in_..." in bad.stderr


def test_refund_by_invoice_rerun_after_a_lost_answer_refunds_once(
    billing: Billing, ready: Database, proxy: FaultProxy, stripe_client: stripe.StripeClient
) -> None:
    invoice = subscribe(billing, "acme")
    payment = billing.json("invoices", "show", invoice)["payment"]
    proxy.arm(Fault("status", "after", "POST", "/v1/refunds", status=500))
    first = billing("payments", "refund", "--invoice", invoice)
    assert first.exit_code == 1 and "re-run the same command" in first.stderr
    assert refunds_of(stripe_client, payment) == [1000]  # Stripe did act
    proxy.clear()
    second = billing("payments", "refund", "--invoice", invoice)
    assert second.exit_code == 0, second.stderr
    assert refunds_of(stripe_client, payment) == [1000]
    assert outcomes(ready, "refunded") == [f"refunded 10.00 USD of {payment}"]
