"""``billing payments list/refund`` and ``payments methods detach/default`` against the sandbox.

Refunds are counted in the sandbox itself (past the CLI), and one refund is interrupted by the
fault proxy after Stripe acted, then re-run: exactly one refund, one audit entry. Runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import pytest
import stripe

from billing_cli.repository import Database
from billing_cli.services import audit
from tests.conftest import StripeRequests
from tests.factories import row_counts
from tests.faults import Fault, FaultProxy

from . import dead_card
from .conftest import Billing

pytestmark = pytest.mark.sandbox
CHARGE = ("payments", "charge", "acme", "--amount", "12.50", "--currency", "usd")


ready = dead_card.ready
stripe_client = dead_card.stripe_client


def charged(billing: Billing) -> str:
    """acme with a default card and one 12.50 USD charge; returns the PaymentIntent id."""
    assert (
        billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default").exit_code == 0
    )
    result = billing.json(*CHARGE, "--description", "setup fee", "--reason", "ticket 42")
    return str(result["after"]["payment_intent"])


def outcomes(db: Database, prefix: str) -> list[str]:
    entries = audit.list_entries(db, tenant_slug="acme", since=None, limit=1000)
    return [e["outcome"] for e in entries if e["outcome"].startswith(prefix)]


def refunds_of(client: stripe.StripeClient, payment: str) -> list[int]:
    return [r.amount for r in client.v1.refunds.list({"payment_intent": payment}).data]


def test_history_shows_charges_declines_and_refunds(billing: Billing, ready: Database) -> None:
    payment = charged(billing)
    billing("payments", "methods", "attach", "acme", "pm_card_chargeCustomerFail", "--default")
    assert billing(*CHARGE, "--description", "second try").exit_code == 1
    assert billing("payments", "refund", payment, "--amount", "2.50").exit_code == 0

    history = billing.json("payments", "list", "acme")
    assert [(p["description"], p["status"]) for p in history] == [
        ("second try", "requires_payment_method"),
        ("setup fee", "succeeded"),
    ]
    declined, ok = history
    assert declined["decline_code"] == "generic_decline" and declined["refundable"] == 0
    assert (ok["id"], ok["amount"], ok["amount_refunded"], ok["refundable"]) == (
        payment,
        1250,
        250,
        1000,
    )
    table = billing("payments", "list", "acme")
    assert table.exit_code == 0 and "generic_decline" in table.stdout and "2.50 USD" in table.stdout


def test_charge_reason_is_kept_in_the_audit(billing: Billing, ready: Database) -> None:
    charged(billing)
    (entry,) = [
        e
        for e in audit.list_entries(ready, tenant_slug="acme", since=None, limit=100)
        if e["outcome"].startswith("charged")
    ]
    assert entry["arguments"]["reason"] == "ticket 42"


def test_partial_then_full_refund_and_the_refusals(
    billing: Billing, ready: Database, stripe_client: stripe.StripeClient
) -> None:
    payment = charged(billing)
    part = billing.json("payments", "refund", payment, "--amount", "5.00", "--reason", "duplicate")
    assert part["message"].endswith("7.50 USD left refundable")
    assert part["after"]["reason"] == "duplicate"

    over = billing("payments", "refund", payment, "--amount", "8.00")
    assert over.exit_code == 1 and "more than is left" in over.stderr and "7.50 USD" in over.stderr
    assert "\n" not in over.stderr.strip()

    rest = billing.json("payments", "refund", payment)
    assert rest["after"]["amount_refunded"] == 1250 and rest["after"]["refundable"] == 0
    nothing = billing("payments", "refund", payment)
    assert nothing.exit_code == 1 and "nothing left to refund" in nothing.stderr

    assert sorted(refunds_of(stripe_client, payment)) == [500, 750]
    assert outcomes(ready, "refunded") == [
        "refunded 7.50 USD of " + payment,
        "refunded 5.00 USD of " + payment + " (duplicate)",
    ]
    entries = audit.list_entries(ready, tenant_slug="acme", since=None, limit=100)
    assert any(e["arguments"].get("reason") == "duplicate" for e in entries)
    bad = billing("payments", "refund", payment, "--reason", "because")
    assert bad.exit_code == 2


def test_refund_dry_run_shows_the_balance_and_sends_nothing(
    billing: Billing, ready: Database, stripe_requests: StripeRequests
) -> None:
    payment = charged(billing)
    before = row_counts(ready)
    stripe_requests.sent.clear()
    result = billing.json("payments", "refund", payment, "--amount", "2.00", "--dry-run")
    assert stripe_requests.writes == []
    assert row_counts(ready) == before
    assert result["dry_run"]
    assert (
        result["message"] == f"would refund 2.00 USD of {payment} (acme); 10.50 USD left refundable"
    )
    assert [w["operation"] for w in result["stripe_writes"]] == ["create_refund"]
    over = billing("payments", "refund", payment, "--amount", "20.00", "--dry-run")
    assert over.exit_code == 1 and "more than is left" in over.stderr


def test_refund_rerun_after_a_lost_answer_refunds_once(
    billing: Billing, ready: Database, proxy: FaultProxy, stripe_client: stripe.StripeClient
) -> None:
    payment = charged(billing)
    proxy.arm(Fault("status", "after", "POST", "/v1/refunds", status=500))
    first = billing("payments", "refund", payment, "--amount", "3.00")
    assert first.exit_code == 1 and "re-run the same command" in first.stderr
    assert refunds_of(stripe_client, payment) == [300]  # Stripe did act
    proxy.clear()
    second = billing("payments", "refund", payment, "--amount", "3.00")
    assert second.exit_code == 0, second.stderr
    assert refunds_of(stripe_client, payment) == [300]
    assert outcomes(ready, "refunded") == [f"refunded 3.00 USD of {payment}"]


def test_detach_and_default(billing: Billing, ready: Database) -> None:
    billing("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    (visa,) = billing.json("payments", "methods", "list", "acme")
    other = billing.json("payments", "methods", "attach", "acme", "pm_card_mastercard")
    master = other["after"]["payment_method"]

    refused = billing("payments", "methods", "detach", "acme", visa["id"])
    assert (
        refused.exit_code == 1 and "--force" in refused.stderr and "default card" in refused.stderr
    )
    unknown = billing("payments", "methods", "detach", "acme", "pm_unknown")
    assert unknown.exit_code == 1 and "not one of acme's saved cards" in unknown.stderr

    dry = billing.json("payments", "methods", "default", "acme", master, "--dry-run")
    assert [w["operation"] for w in dry["stripe_writes"]] == [
        "set_default_payment_method",
        "set_subscription_payment_method",
    ]
    made = billing.json("payments", "methods", "default", "acme", master)
    assert "and of subscription sub_" in made["message"]
    card = billing.json("tenants", "show", "acme")["default_card"]
    assert (card["id"], card["brand"], card["last4"], card["expires"]) == (
        master,
        "mastercard",
        "4444",
        "12/2034",
    )
    detached = billing.json("payments", "methods", "detach", "acme", visa["id"])
    assert detached["after"]["attached"] is False
    assert [m["id"] for m in billing.json("payments", "methods", "list", "acme")] == [master]
    forced = billing.json("payments", "methods", "detach", "acme", master, "--force")
    assert "it was the default" in forced["message"]
    assert billing.json("tenants", "show", "acme")["default_card"] is None
    assert len(outcomes(ready, "detached")) == 2
    assert len(outcomes(ready, "default card")) == 1


def test_intents_resume_finishes_an_interrupted_refund(
    billing: Billing, ready: Database, proxy: FaultProxy, stripe_client: stripe.StripeClient
) -> None:
    payment = charged(billing)
    proxy.arm(Fault("cut", "after", "POST", "/v1/refunds"))
    assert billing("payments", "refund", payment, "--amount", "4.00").exit_code == 1
    proxy.clear()
    (intent,) = billing.json("intents", "list", "--open")
    assert intent["operation"] == "payment.refund"
    resumed = billing("intents", "resume", intent["id"])
    assert resumed.exit_code == 0, resumed.stderr
    assert refunds_of(stripe_client, payment) == [400]
    assert outcomes(ready, "refunded") == [f"refunded 4.00 USD of {payment}"]
    assert billing.json("intents", "list", "--open") == []
