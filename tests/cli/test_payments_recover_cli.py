"""``billing payments recover`` (issue 18, point 2), through the CLI against the sandbox.

Each test starts from a subscription whose own card has died (see test_card_that_pays) and the
tenant suspended by billing or held by hand. The re-run tests put the fault proxy between the
CLI and the sandbox and lose Stripe's answer after Stripe acted, at each step of the recovery:
the re-run finishes it, with one attachment and one payment. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
import stripe

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services import audit
from stripe_sandbox import Sandbox
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, row_counts, suspend
from tests.faults import Fault, FaultProxy

from . import dead_card
from .conftest import Billing
from .dead_card import DEAD, dead_card_subscription, subscription_card

pytestmark = pytest.mark.sandbox
ready = dead_card.ready
stripe_client = dead_card.stripe_client
GOOD = "pm_card_mastercard"


def tenant_status(billing: Billing) -> tuple[str, str | None]:
    tenant = billing.json("tenants", "show", "acme")["tenant"]
    return tenant["status"], tenant["suspended_by"]


def outcomes(db: Database, prefix: str) -> list[str]:
    entries = audit.list_entries(db, tenant_slug="acme", since=None, limit=1000)
    return [e["outcome"] for e in entries if e["outcome"].startswith(prefix)]


def cards_of(client: stripe.StripeClient, sub_id: str) -> list[str]:
    customer = str(client.v1.subscriptions.retrieve(sub_id).customer)
    found = client.v1.payment_methods.list({"customer": customer, "type": "card"}).data
    return sorted(f"{m.card.brand} {m.card.last4}" for m in found if m.card)


def succeeded_payments(client: stripe.StripeClient, sub_id: str) -> int:
    customer = str(client.v1.subscriptions.retrieve(sub_id).customer)
    found = client.v1.payment_intents.list({"customer": customer, "limit": 100}).data
    return sum(1 for p in found if p.status == "succeeded")


def test_recover_attaches_pays_and_lifts_a_billing_suspension(
    billing: Billing, ready: Database, sandbox: Sandbox, stripe_client: stripe.StripeClient
) -> None:
    sub_id, dead, invoice = dead_card_subscription(billing, sandbox)
    suspend(ready, by="billing")
    result = billing.json("payments", "recover", "acme", "--payment-method", GOOD)
    card = result["after"]["card"]
    assert result["before"] == {
        "card": dead,
        "status": "suspended",
        "suspended_by": "billing",
        "unpaid": "10.00 USD",
    }
    assert (result["after"]["status"], result["after"]["suspended_by"]) == ("active", None)
    assert result["after"]["unpaid"] == "0.00 USD"
    assert [i["id"] for i in result["after"]["paid"]] == [invoice]
    assert result["message"] == (
        f"recovered acme: {card} is the card that pays; 1 open invoice(s), 10.00 USD; "
        "reactivated acme"
    )
    # Stripe, the database and the screen agree.
    assert subscription_card(stripe_client, sub_id) == card
    assert stripe_client.v1.invoices.retrieve(invoice).status == "paid"
    assert tenant_status(billing) == ("active", None)
    assert billing.json("tenants", "show", "acme")["default_card"]["id"] == card
    assert billing.json("invoices", "list", "acme", "--status", "open") == []
    assert outcomes(ready, "recovered with") == [f"recovered with {card}: 1 invoice(s) paid"]
    assert len(outcomes(ready, "reactivated")) == 1


def test_open_invoices_are_paid_oldest_first(
    billing: Billing, ready: Database, sandbox: Sandbox, gateway: Gateway
) -> None:
    """A failed renewal, then a plan change invoiced at once that fails too: two open."""
    _sub, _dead, renewal = dead_card_subscription(billing, sandbox)
    add_synced_plan(ready, gateway, "pro", amount=3000)
    moved = billing("subs", "upgrade", "acme", "--plan", "pro", "--proration", "always_invoice")
    assert moved.exit_code == 0, moved.stderr
    newest, oldest = billing.json("invoices", "list", "acme", "--status", "open")
    assert oldest["id"] == renewal
    suspend(ready, by="billing")
    result = billing.json("payments", "recover", "acme", "--payment-method", GOOD)
    assert [i["id"] for i in result["after"]["paid"]] == [oldest["id"], newest["id"]]
    assert result["before"]["unpaid"] == "30.00 USD"
    collected = [o.rsplit(" for invoice ", 1)[1] for o in outcomes(ready, "collected")]
    assert collected == [newest["number"], oldest["number"]]  # the audit lists newest first
    assert tenant_status(billing) == ("active", None)


def test_recover_never_lifts_a_manual_hold(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    dead_card_subscription(billing, sandbox)
    suspend(ready, by="manual")
    result = billing("payments", "recover", "acme", "--payment-method", GOOD)
    assert result.exit_code == 0, result.stderr
    assert "acme stays suspended: a manual hold is lifted only by a person" in result.stdout
    assert tenant_status(billing) == ("suspended", "manual")
    assert billing.json("invoices", "list", "acme", "--status", "open") == []


def test_dry_run_lists_every_step_and_writes_nothing(
    billing: Billing,
    ready: Database,
    sandbox: Sandbox,
    stripe_client: stripe.StripeClient,
    stripe_requests: StripeRequests,
) -> None:
    sub_id, dead, invoice = dead_card_subscription(billing, sandbox)
    suspend(ready, by="billing")
    before = row_counts(ready)
    stripe_requests.sent.clear()
    dry = billing.json("payments", "recover", "acme", "--payment-method", GOOD, "--dry-run")
    assert stripe_requests.writes == [] and row_counts(ready) == before
    assert [w["operation"] for w in dry["stripe_writes"]] == [
        "attach_payment_method",
        "set_default_payment_method",
        "set_subscription_payment_method",
        "pay_invoice",
    ]
    steps = dry["side_effects"]
    assert steps[0] == f"would attach {GOOD} to acme"
    assert steps[1].startswith("would make it the card that pays (customer cus_")
    assert steps[1].endswith(f" and subscription {sub_id})")
    assert steps[2].startswith("would attempt to collect 10.00 USD for invoice ")
    assert steps[3] == "would reactivate acme"
    assert dry["message"].startswith("would recover acme") and "10.00 USD" in dry["message"]
    people = billing("payments", "recover", "acme", "--payment-method", GOOD, "--dry-run")
    assert people.exit_code == 0 and "would reactivate acme" in people.stdout
    assert subscription_card(stripe_client, sub_id) == dead
    assert stripe_client.v1.invoices.retrieve(invoice).status == "open"
    assert tenant_status(billing) == ("suspended", "billing")


def test_a_decline_stops_with_one_line_and_the_card_stays(
    billing: Billing, ready: Database, sandbox: Sandbox, stripe_client: stripe.StripeClient
) -> None:
    sub_id, _dead, invoice = dead_card_subscription(billing, sandbox)
    suspend(ready, by="billing")
    # This card attaches, then declines every charge.
    result = billing("payments", "recover", "acme", "--payment-method", DEAD)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "declined: invoice " in line and "of acme (10.00 USD)" in line
    assert "stays attached and is the card that pays" in line
    new = subscription_card(stripe_client, sub_id)
    assert new is not None and new in line
    assert cards_of(stripe_client, sub_id) == ["visa 0341", "visa 0341"]
    assert stripe_client.v1.invoices.retrieve(invoice).status == "open"
    assert tenant_status(billing) == ("suspended", "billing")
    assert len(outcomes(ready, "recovery stopped: declined")) == 1
    # A new attempt is a new recovery: the card is found attached, not attached again.
    again = billing("payments", "recover", "acme", "--payment-method", new)
    assert again.exit_code == 1
    assert cards_of(stripe_client, sub_id) == ["visa 0341", "visa 0341"]


def test_bad_input_is_one_line_and_writes_nothing(billing: Billing, ready: Database) -> None:
    before = row_counts(ready)
    bad = billing("payments", "recover", "acme", "--payment-method", "card_123")
    assert bad.exit_code == 2 and "pm_" in bad.stderr and "\n" not in bad.stderr.strip()
    unknown = billing("payments", "recover", "nobody", "--payment-method", GOOD)
    assert unknown.exit_code == 1 and "no tenant" in unknown.stderr
    no_customer = billing("payments", "recover", "acme", "--payment-method", GOOD)
    assert no_customer.exit_code == 1 and "no Stripe customer" in no_customer.stderr
    assert row_counts(ready) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/v1/payment_methods/{GOOD}/attach"),
        ("POST", "/v1/customers/"),
        ("POST", "/v1/subscriptions/"),
        ("POST", "/v1/invoices/"),
    ],
    ids=["attach", "customer-default", "subscription-default", "pay"],
)
def test_rerun_after_a_lost_answer_finishes_once(
    billing: Billing,
    ready: Database,
    sandbox: Sandbox,
    stripe_client: stripe.StripeClient,
    proxy: FaultProxy,
    method: str,
    path: str,
) -> None:
    sub_id, dead, invoice = dead_card_subscription(billing, sandbox)
    suspend(ready, by="billing")
    proxy.arm(Fault("status", "after", method, path, status=500))
    first = billing("payments", "recover", "acme", "--payment-method", GOOD)
    assert first.exit_code == 1 and "re-run the same command" in first.stderr
    proxy.clear()
    second = billing.json("payments", "recover", "acme", "--payment-method", GOOD)
    assert second["before"]["card"] == dead  # what the first run found, not its own work
    assert second["after"]["status"] == "active"
    assert cards_of(stripe_client, sub_id) == ["mastercard 4444", "visa 0341"]
    assert stripe_client.v1.invoices.retrieve(invoice).status == "paid"
    assert succeeded_payments(stripe_client, sub_id) == 1
    assert tenant_status(billing) == ("active", None)
    assert len(outcomes(ready, "recovered with")) == 1
    assert len(outcomes(ready, "collected 10.00 USD")) == 1


def test_intents_resume_finishes_an_interrupted_recovery(
    billing: Billing,
    ready: Database,
    sandbox: Sandbox,
    stripe_client: stripe.StripeClient,
    proxy: FaultProxy,
) -> None:
    sub_id, _dead, invoice = dead_card_subscription(billing, sandbox)
    proxy.arm(Fault("status", "after", "POST", "/v1/subscriptions/", status=500))
    assert billing("payments", "recover", "acme", "--payment-method", GOOD).exit_code == 1
    proxy.clear()
    (open_intent,) = billing.json("intents", "list", "--open")
    assert open_intent["operation"] == "payment.recover"
    resumed = billing.json("intents", "resume", open_intent["id"])
    assert resumed["action"] == "recover" and resumed["after"]["paid"][0]["id"] == invoice
    assert cards_of(stripe_client, sub_id) == ["mastercard 4444", "visa 0341"]
    assert subscription_card(stripe_client, sub_id) == resumed["after"]["card"]
