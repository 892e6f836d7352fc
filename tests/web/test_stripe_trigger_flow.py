"""What the README's "Local testing with the Stripe CLI" says happens, run as written against
the sandbox: a ``stripe trigger``-like lifecycle (a customer made outside the tool, with no
``metadata.tenant``, subscribed and paying) reaches ``billing webhooks serve`` as the sandbox's
own signed deliveries, is parked ``deferred``, and is applied once the customer is linked with
``billing payments methods attach`` or ``billing subs refresh`` (either finds the customer
by its tag); a ``subs refresh`` afterwards finds nothing left to change."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
import stripe

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services.tenants import rules as tenants
from stripe_sandbox import Sandbox
from tests.cli.conftest import Billing
from tests.factories import add_synced_plan, add_tenant
from tests.web import SECRET, ServeProcess, wait_until

pytestmark = pytest.mark.sandbox


def _ledger(db: Database) -> dict[str, str]:
    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT type, status FROM webhook_event ORDER BY id"))
        return {str(t): str(s) for t, s in rows}


@pytest.mark.parametrize(
    "link",
    [
        ("payments", "methods", "attach", "acme", "pm_card_visa", "--yes"),
        ("subs", "refresh", "acme"),
    ],
    ids=["payments methods attach", "subs refresh"],
)
def test_a_trigger_like_lifecycle_is_parked_then_applied_when_the_customer_is_linked(
    db_env: Database, sandbox: Sandbox, gateway: Gateway, link: tuple[str, ...]
) -> None:
    db = db_env
    billing = Billing()
    add_tenant(db, "acme")  # e-mail billing@acme.test
    price = add_synced_plan(db, gateway, "basic", amount=2000)
    env = {
        "BILLING_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "STRIPE_WEBHOOK_SECRET": SECRET,
    }
    with ServeProcess(env) as server:
        # `stripe listen --forward-to ...`: the deliveries of the account, signed, to the endpoint
        sandbox.register_webhook(f"{server.url}/webhooks/stripe/", SECRET)
        # `stripe trigger customer.subscription.created`: a customer and a subscription made
        # outside the tool, with no metadata.tenant
        client = stripe.StripeClient(
            sandbox.secret_key, base_addresses={"api": sandbox.api_base}, max_network_retries=0
        )
        customer = client.v1.customers.create({"email": "billing@acme.test"})
        method = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
        client.v1.customers.update(
            customer.id, {"invoice_settings": {"default_payment_method": method.id}}
        )
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": price}]}
        )

        def parked() -> bool:
            ledger = _ledger(db)
            return ledger.get("customer.subscription.created") == "deferred" and (
                ledger.get("invoice.payment_succeeded") == "deferred"
            )

        wait_until(parked, timeout=15, what="the deliveries to be parked")
        assert tenants.show_tenant(db, slug="acme").subscription is None

        # the Dashboard step: tag the customer with the tenant (metadata.tenant=acme) ...
        client.v1.customers.update(customer.id, {"metadata": {"tenant": "acme"}})
        # ... and the tool finds it by the tag: the link applies the parked events
        linked = billing(*link)
        assert linked.exit_code == 0, linked.stderr
        ledger = _ledger(db)
        assert ledger["customer.subscription.created"] == "processed", ledger
        assert ledger["invoice.payment_succeeded"] == "processed", ledger
        row: dict[str, Any] | None = tenants.show_tenant(db, slug="acme").subscription
        assert row is not None
        assert (row["stripe_customer_id"], row["stripe_subscription_id"]) == (
            customer.id,
            subscription.id,
        )
        assert row["status"] == "active"

        refreshed = billing.json("subs", "refresh", "acme")
        assert refreshed["remaining"] == []
        assert server.terminate() == 0
