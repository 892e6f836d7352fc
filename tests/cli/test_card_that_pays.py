"""The card that pays (issue 18, point 1), through the CLI against the sandbox.

A subscription created with ``--payment-method`` has that card as its *own* default, which
Stripe charges before the customer's invoice default. These tests start from a subscription
whose own card has died (created on a trial with a card that declines, then billed) and check
that the support desk's commands make a new card the one Stripe actually charges, that every
screen calling a card "the default" shows that card, and that Stripe (the sandbox), the
database and the screen agree. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import audit
from billing_cli.services.tenants import rules as tenant_rules
from stripe_sandbox import Sandbox
from tests.conftest import StripeRequests
from tests.factories import row_counts, suspend

from . import dead_card
from .conftest import Billing
from .dead_card import customer_card, dead_card_subscription, subscription_card

pytestmark = pytest.mark.sandbox
ready = dead_card.ready
stripe_client = dead_card.stripe_client


def test_attach_default_makes_the_new_card_pay_and_retry_charges_it(
    billing: Billing, ready: Database, sandbox: Sandbox, stripe_client: stripe.StripeClient
) -> None:
    sub_id, dead, invoice = dead_card_subscription(billing, sandbox)
    assert subscription_card(stripe_client, sub_id) == dead

    attached = billing.json("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    visa = attached["after"]["payment_method"]
    assert attached["before"]["default"] == dead  # the previous card, not an empty "before"
    assert attached["after"]["default"] == visa
    assert attached["message"] == (
        f"attached pm_card_visa to acme as the default card, also of subscription {sub_id}"
    )
    # Stripe now charges the new card first, for this invoice and every renewal.
    assert subscription_card(stripe_client, sub_id) == visa
    assert customer_card(stripe_client, sub_id) == visa

    paid = billing.json("invoices", "pay", invoice)
    assert paid["after"]["invoice"]["status"] == "paid", paid
    assert f"from visa ending 4242 ({visa})" in paid["message"]


def test_the_table_shows_the_previous_default(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    _sub, dead, _invoice = dead_card_subscription(billing, sandbox)
    result = billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    assert result.exit_code == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "│ default " in line]
    assert dead in row and "pm_" in row.split(dead, 1)[1]


def test_screens_show_the_card_that_pays(
    billing: Billing, ready: Database, sandbox: Sandbox, stripe_client: stripe.StripeClient
) -> None:
    """The customer's default and the subscription's differ: every screen names the latter."""
    sub_id, dead, _invoice = dead_card_subscription(billing, sandbox)
    customer = str(stripe_client.v1.subscriptions.retrieve(sub_id).customer)
    other = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
    stripe_client.v1.customers.update(
        customer, {"invoice_settings": {"default_payment_method": other.id}}
    )

    methods = {m["id"]: m["default"] for m in billing.json("payments", "methods", "list", "acme")}
    assert methods == {dead: True, other.id: False}
    assert billing.json("tenants", "show", "acme")["default_card"]["id"] == dead
    shown = billing.json("subs", "show", "acme")
    assert shown["stripe"]["card"].endswith(f"({dead})")
    assert "card" not in shown["differences"]
    declined = billing("invoices", "pay", str(_invoice))
    assert declined.exit_code == 1 and f"by visa ending 0341 ({dead})" in declined.stderr

    # The customer's default is already `other`: making it the default still has work to do.
    made = billing.json("payments", "methods", "default", "acme", other.id)
    assert (made["before"]["default"], made["after"]["default"]) == (dead, other.id)
    assert subscription_card(stripe_client, sub_id) == other.id
    assert billing.json("tenants", "show", "acme")["default_card"]["id"] == other.id


def test_attach_default_dry_run_plans_both_defaults_and_sends_nothing(
    billing: Billing,
    ready: Database,
    sandbox: Sandbox,
    stripe_client: stripe.StripeClient,
    stripe_requests: StripeRequests,
) -> None:
    sub_id, dead, _invoice = dead_card_subscription(billing, sandbox)
    before = row_counts(ready)
    stripe_requests.sent.clear()
    dry = billing.json(
        "payments", "methods", "attach", "acme", "pm_card_visa", "--default", "--dry-run"
    )
    assert stripe_requests.writes == [] and row_counts(ready) == before
    assert [(w["operation"], w["target"]) for w in dry["stripe_writes"]] == [
        ("attach_payment_method", "pm_card_visa"),
        ("set_default_payment_method", dry["after"]["customer"]),
        ("set_subscription_payment_method", sub_id),
    ]
    assert dry["before"]["default"] == dead
    assert subscription_card(stripe_client, sub_id) == dead


def test_a_real_pay_says_the_tenant_was_reactivated(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    _sub, _dead, invoice = dead_card_subscription(billing, sandbox)
    suspend(ready, by="billing")
    billing.json("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    result = billing("invoices", "pay", invoice)
    assert result.exit_code == 0, result.stderr
    first: Any = result.stdout.splitlines()[0]
    assert first.startswith("paid: collected 10.00 USD") and first.endswith("; acme reactivated")
    entries = audit.list_entries(ready, tenant_slug="acme", since=None, limit=100)
    assert [e["outcome"] for e in entries].count("reactivated") == 1


def test_a_subscription_gone_from_stripe_leaves_the_customers_card(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    _sub, dead, _invoice = dead_card_subscription(billing, sandbox)
    with ready.transaction() as session:
        tenant = tenant_rules.require_tenant(session, "acme")
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        assert row is not None
        row.stripe_subscription_id = "sub_gone"
        session.add(row)
    assert billing.json("tenants", "show", "acme")["default_card"]["id"] == dead
    listed = billing.json("payments", "methods", "list", "acme")
    assert [(m["id"], m["default"]) for m in listed] == [(dead, True)]
