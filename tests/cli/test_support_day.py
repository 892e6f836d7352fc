"""A scripted support day (issue 18), every step a CLI command against the sandbox.

A customer's card dies: three declines (the renewal and Stripe's two retries), the webhook
events suspend the tenant; support runs ``payments recover`` with the customer's new card; the
tenant is active again; late events change nothing; ``reconcile`` finds no drift. At each stage
Stripe (the sandbox), the database and the screen are checked against each other. Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
import stripe

from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services.tenants import rules as tenant_rules
from stripe_sandbox import Sandbox

from . import dead_card
from .conftest import Billing
from .dead_card import dead_card_subscription, subscription_card

pytestmark = pytest.mark.sandbox
ready = dead_card.ready
stripe_client = dead_card.stripe_client


def local(db: Database) -> tuple[str, str | None, str | None, int]:
    """The tenant's status and suspender, its subscription's status and failed attempts."""
    with db.read() as session:
        tenant = tenant_rules.require_tenant(session, "acme")
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        assert row is not None
        return tenant.status, tenant.suspended_by, row.status, row.failed_payment_attempts


def replay(billing: Billing) -> None:
    result = billing("webhooks", "replay", "--since", "1h")
    assert result.exit_code == 0, result.stderr


def test_three_declines_suspension_recover_reactivation_no_drift(
    billing: Billing, ready: Database, sandbox: Sandbox, stripe_client: stripe.StripeClient
) -> None:
    sub_id, dead, invoice = dead_card_subscription(billing, sandbox)  # decline 1
    sandbox.renew(sub_id)  # Stripe's retries of the open invoice: declines 2 and 3
    sandbox.renew(sub_id)
    assert stripe_client.v1.invoices.retrieve(invoice).attempt_count == 3
    replay(billing)
    assert local(ready) == ("suspended", "billing", "past_due", 3)
    shown = billing("tenants", "show", "acme")
    assert shown.exit_code == 0 and "suspended" in shown.stdout
    assert "visa ending 0341" in shown.stdout + shown.stderr  # the dead card pays, for now

    recovered = billing("payments", "recover", "acme", "--payment-method", "pm_card_mastercard")
    assert recovered.exit_code == 0, recovered.stderr
    assert "reactivated acme" in recovered.stdout

    # Stripe: the new card pays the subscription and the invoice is paid.
    card = subscription_card(stripe_client, sub_id)
    assert card is not None and card != dead
    assert card in recovered.stdout
    assert stripe_client.v1.invoices.retrieve(invoice).status == "paid"
    assert stripe_client.v1.subscriptions.retrieve(sub_id).status == "active"
    # The database follows, and late webhook events do not undo it.
    assert local(ready) == ("active", None, "active", 0)
    replay(billing)
    assert local(ready) == ("active", None, "active", 0)
    # The screen says the same.
    detail = billing.json("tenants", "show", "acme")
    assert detail["tenant"]["status"] == "active"
    assert detail["default_card"]["id"] == card and detail["default_card"]["last4"] == "4444"
    listed = {m["id"]: m["default"] for m in billing.json("payments", "methods", "list", "acme")}
    assert listed == {dead: False, card: True}
    assert billing.json("subs", "show", "acme")["stripe"]["card"] == (
        f"mastercard ending 4444 ({card})"
    )
    assert billing.json("invoices", "list", "acme", "--status", "open") == []

    report = billing("reconcile")
    assert report.exit_code == 0, report.stdout + report.stderr
    assert "no drift" in report.stdout
    assert billing.json("reconcile")["drift_found"] is False
