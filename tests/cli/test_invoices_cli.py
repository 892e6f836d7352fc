"""``billing invoices``: list, show, retry now, void, mark uncollectible, against the sandbox.

A failed invoice is made the way it happens in life: a subscription whose card declines at
renewal (the sandbox's clock control renews it). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from billing_cli.gateway import Gateway
from billing_cli.models import Invocation
from billing_cli.repository import Database
from billing_cli.services import audit
from billing_cli.services.tenants import rules as tenant_rules
from stripe_sandbox import Sandbox
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, row_counts
from tests.faults import Fault, FaultProxy

from .conftest import Billing

pytestmark = pytest.mark.sandbox


@pytest.fixture
def ready(db_env: Database, gateway: Gateway) -> Database:
    add_tenant(db_env, "acme")
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    return db_env


def failed_renewal(billing: Billing, sandbox: Sandbox) -> tuple[str, str]:
    """acme subscribed with a good card, then a card that declines made the default and the
    subscription renewed: returns (subscription id, the open renewal invoice id)."""
    created = billing.json(
        "subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa"
    )
    sub_id = created["after"]["stripe_subscription_id"]
    bad = billing.json("payments", "methods", "attach", "acme", "pm_card_chargeCustomerFail")
    assert (
        billing("payments", "methods", "default", "acme", bad["after"]["payment_method"]).exit_code
        == 0
    )
    renewal = sandbox.renew(sub_id)
    invoice_id = str(renewal.get("latest_invoice") or renewal.get("invoice", {}).get("id"))
    return sub_id, invoice_id


def open_invoice(billing: Billing) -> dict[str, Any]:
    (invoice,) = billing.json("invoices", "list", "acme", "--status", "open")
    return dict(invoice)


def outcomes(db: Database, prefix: str) -> list[str]:
    entries = audit.list_entries(db, tenant_slug="acme", since=None, limit=1000)
    return [e["outcome"] for e in entries if e["outcome"].startswith(prefix)]


def suspend_by(db: Database, by: str) -> None:
    with db.transaction() as session:
        tenant = tenant_rules.require_tenant(session, "acme", for_update=True)
        tenant_rules.suspend(
            session,
            tenant,
            reason=f"{by}: test",
            by=by,
            invocation=Invocation(operator="test", command="test"),
        )


def tenant_status(billing: Billing) -> tuple[str, str | None]:
    tenant = billing.json("tenants", "show", "acme")["tenant"]
    return tenant["status"], tenant["suspended_by"]


def good_card(billing: Billing) -> str:
    attached = billing.json("payments", "methods", "attach", "acme", "pm_card_mastercard")
    return str(attached["after"]["payment_method"])


def test_list_and_show_a_failed_invoice(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    failed_renewal(billing, sandbox)
    invoices = billing.json("invoices", "list", "acme")
    assert [i["status"] for i in invoices] == ["open", "paid"]  # newest first
    failed = invoices[0]
    assert failed["amount_due"] == 1000 and failed["amount_remaining_display"] == "10.00 USD"
    assert failed["attempt_count"] == 1 and failed["next_payment_attempt"]
    assert failed["billing_reason"] == "subscription_cycle"

    shown = billing.json("invoices", "show", failed["id"])
    assert shown["tenant"] == "acme" and shown["id"] == failed["id"]
    assert [line["amount"] for line in shown["lines"]] == [1000]
    table = billing("invoices", "show", failed["id"])
    assert table.exit_code == 0 and failed["id"] in table.stdout and "Lines" in table.stdout

    assert billing.json("invoices", "list", "acme", "--status", "void") == []
    assert len(billing.json("invoices", "list", "acme", "--limit", "1")) == 1


def test_refusals_are_one_line(billing: Billing, ready: Database, sandbox: Sandbox) -> None:
    failed_renewal(billing, sandbox)
    paid = billing.json("invoices", "list", "acme", "--status", "paid")[0]["id"]
    unknown = billing("invoices", "pay", "in_doesnotexist")
    assert unknown.exit_code == 1 and "\n" not in unknown.stderr.strip()
    again = billing("invoices", "pay", paid)
    assert again.exit_code == 1 and "is paid" in again.stderr
    assert billing("invoices", "void", paid, "--yes").exit_code == 1
    bad_id = billing("invoices", "show", "pi_123")
    assert bad_id.exit_code == 2 and "in_" in bad_id.stderr


def test_pay_with_a_declining_card_is_one_line_and_audited(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    failed_renewal(billing, sandbox)
    invoice = open_invoice(billing)
    result = billing("invoices", "pay", invoice["id"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: declined:") or "declined:" in result.stderr
    assert "\n" not in result.stderr.strip()
    assert open_invoice(billing)["attempt_count"] == 2  # Stripe counted the retry
    assert len(outcomes(ready, "payment of invoice")) == 1


def test_dry_run_sends_nothing_and_writes_nothing(
    billing: Billing, ready: Database, sandbox: Sandbox, stripe_requests: StripeRequests
) -> None:
    failed_renewal(billing, sandbox)
    suspend_by(ready, "billing")
    invoice = open_invoice(billing)
    card = good_card(billing)
    before = row_counts(ready)
    stripe_requests.sent.clear()
    result = billing.json("invoices", "pay", invoice["id"], "--payment-method", card, "--dry-run")
    assert stripe_requests.writes == []
    assert row_counts(ready) == before
    assert result["dry_run"] and "would attempt to collect 10.00 USD" in result["message"]
    assert [w["operation"] for w in result["stripe_writes"]] == ["pay_invoice"]
    assert any("reactivate" in effect for effect in result["side_effects"])
    assert open_invoice(billing)["status"] == "open"
    assert tenant_status(billing) == ("suspended", "billing")


def test_retry_with_a_good_card_reactivates_a_billing_suspension(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    failed_renewal(billing, sandbox)
    billing("subs", "refresh", "acme")  # harmless if absent: the pay itself applies Stripe's answer
    suspend_by(ready, "billing")
    invoice = open_invoice(billing)
    result = billing.json("invoices", "pay", invoice["id"], "--payment-method", good_card(billing))
    assert result["message"].startswith("paid: collected 10.00 USD")
    assert result["after"]["invoice"]["status"] == "paid"
    assert result["after"]["subscription"]["status"] == "active"
    assert result["after"]["subscription"]["failed_payment_attempts"] == 0
    assert tenant_status(billing) == ("active", None)
    assert billing.json("invoices", "list", "acme", "--status", "open") == []
    assert len(outcomes(ready, "collected 10.00 USD")) == 1
    assert len(outcomes(ready, "reactivated")) == 1


def test_retry_never_lifts_a_manual_hold(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    failed_renewal(billing, sandbox)
    suspend_by(ready, "manual")
    invoice = open_invoice(billing)
    result = billing.json("invoices", "pay", invoice["id"], "--payment-method", good_card(billing))
    assert result["after"]["invoice"]["status"] == "paid"
    assert result["side_effects"] == []
    assert tenant_status(billing) == ("suspended", "manual")


def test_void_and_mark_uncollectible_ask_first(
    billing: Billing, ready: Database, sandbox: Sandbox
) -> None:
    failed_renewal(billing, sandbox)
    invoice = open_invoice(billing)["id"]
    declined = billing("invoices", "void", invoice, input="n\n")
    assert declined.exit_code == 1 and open_invoice(billing)["status"] == "open"
    written_off = billing("invoices", "mark-uncollectible", invoice, input="y\n")
    assert written_off.exit_code == 0, written_off.stderr
    shown = billing.json("invoices", "show", invoice)
    assert shown["status"] == "uncollectible" and shown["next_payment_attempt"] is None
    voided = billing.json("invoices", "void", invoice, "--yes")
    assert voided["after"]["status"] == "void"
    assert len(outcomes(ready, "marked uncollectible")) == 1
    assert len(outcomes(ready, "voided")) == 1


def test_pay_rerun_after_a_lost_answer_collects_once(
    billing: Billing, ready: Database, sandbox: Sandbox, proxy: FaultProxy
) -> None:
    failed_renewal(billing, sandbox)
    suspend_by(ready, "billing")
    invoice = open_invoice(billing)["id"]
    card = good_card(billing)
    proxy.arm(Fault("cut", "after", "POST", f"/v1/invoices/{invoice}/pay"))
    first = billing("invoices", "pay", invoice, "--payment-method", card)
    assert first.exit_code == 1 and "re-run the same command" in first.stderr
    assert tenant_status(billing) == ("suspended", "billing")  # nothing applied yet

    proxy.clear()
    second = billing("invoices", "pay", invoice, "--payment-method", card)
    assert second.exit_code == 0, second.stderr
    assert proxy.writes_to(f"/v1/invoices/{invoice}/pay") == 1  # the re-run saw it paid
    shown = billing.json("invoices", "show", invoice)
    assert (shown["status"], shown["attempt_count"]) == ("paid", 2)
    assert len(outcomes(ready, "collected 10.00 USD")) == 1
    assert tenant_status(billing) == ("active", None)


def test_webhooks_delivered_after_the_retry_change_nothing(
    billing: Billing, ready: Database, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pay applied Stripe's answer as ``invoice.paid`` would: replaying every event of the
    story afterwards (the old failures included, in Stripe's order) leaves the same state."""
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_test_replay")
    failed_renewal(billing, sandbox)
    suspend_by(ready, "billing")
    invoice = open_invoice(billing)["id"]
    billing.json("invoices", "pay", invoice, "--payment-method", good_card(billing))
    settled = billing.json("tenants", "show", "acme")["subscription"]
    assert (settled["status"], settled["failed_payment_attempts"]) == ("active", 0)

    replay = billing("webhooks", "replay", "--since", "1h", "--force")
    assert replay.exit_code == 0, replay.stderr
    after = billing.json("tenants", "show", "acme")["subscription"]
    assert (after["status"], after["failed_payment_attempts"]) == ("active", 0)
    assert tenant_status(billing) == ("active", None)


def test_every_support_write_has_a_dry_run_that_sends_and_writes_nothing(
    billing: Billing, ready: Database, sandbox: Sandbox, stripe_requests: StripeRequests
) -> None:
    failed_renewal(billing, sandbox)
    invoice = open_invoice(billing)["id"]
    card = good_card(billing)
    payment = billing.json("payments", "list", "acme")[-1]["id"]  # the first, paid invoice
    before = row_counts(ready)
    stripe_requests.sent.clear()
    for args, writes in (
        (("invoices", "void", invoice), ["void_invoice"]),
        (("invoices", "mark-uncollectible", invoice), ["mark_invoice_uncollectible"]),
        (("invoices", "pay", invoice), ["pay_invoice"]),
        (("payments", "refund", payment, "--amount", "1.00"), ["create_refund"]),
        (
            ("payments", "methods", "default", "acme", card),
            ["set_default_payment_method", "set_subscription_payment_method"],
        ),
        (("payments", "methods", "detach", "acme", card), ["detach_payment_method"]),
        (("tenants", "update", "acme", "--name", "Acme Two"), ["update_customer"]),
    ):
        result = billing.json(*args, "--dry-run")
        assert result["dry_run"] is True and result["message"].startswith("would "), args
        assert [w["operation"] for w in result["stripe_writes"]] == writes, args
    assert stripe_requests.writes == []
    assert row_counts(ready) == before
    assert open_invoice(billing)["status"] == "open"
