"""The sandbox state issue 18's tests start from: a subscription whose own card has died.

Shared by test_card_that_pays, test_payments_recover_cli and test_support_day: the tenant
``acme`` on the ``starter`` plan (10.00 USD), subscribed on a trial with a card that attaches
but declines every charge, then billed, so one invoice is open after one decline.
"""

from __future__ import annotations

import pytest
import stripe

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from stripe_sandbox import Sandbox
from tests.factories import add_synced_plan, add_tenant

from .conftest import Billing

DEAD = "pm_card_chargeCustomerFail"  # attaches, then declines every charge


@pytest.fixture
def ready(db_env: Database, gateway: Gateway) -> Database:
    add_tenant(db_env, "acme")
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    return db_env


@pytest.fixture
def stripe_client(sandbox: Sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.api_base}, max_network_retries=0
    )


def dead_card_subscription(billing: Billing, sandbox: Sandbox) -> tuple[str, str, str]:
    """acme subscribed on a trial with a card that declines, then billed: returns (the
    subscription, its dead card, the open invoice)."""
    created = billing.json(
        "subs", "create", "acme", "--plan", "starter", "--payment-method", DEAD, "--trial-days", "7"
    )
    sub_id = created["after"]["stripe_subscription_id"]
    billed = sandbox.end_trial(sub_id)
    (dead,) = [m["id"] for m in billing.json("payments", "methods", "list", "acme")]
    invoice = str(billed["latest_invoice"])
    return sub_id, dead, invoice


def subscription_card(client: stripe.StripeClient, sub_id: str) -> str | None:
    found = client.v1.subscriptions.retrieve(sub_id).default_payment_method
    return found if found is None or isinstance(found, str) else str(found.id)


def customer_card(client: stripe.StripeClient, sub_id: str) -> str | None:
    customer = str(client.v1.subscriptions.retrieve(sub_id).customer)
    found = client.v1.customers.retrieve(customer).invoice_settings.default_payment_method
    return found if found is None or isinstance(found, str) else str(found.id)
