"""One-off charges, payment methods and tenant removal, against the local Stripe sandbox."""

from __future__ import annotations

import pytest
import stripe

from billing_cli.config import Settings
from billing_cli.errors import CardDeclined, Conflict, DatabaseError, NotFound
from billing_cli.gateway import DryRunGateway, Gateway
from billing_cli.repository import Database
from billing_cli.services import audit
from billing_cli.services.payments import charges as payments
from billing_cli.services.subscriptions import lifecycle as subscriptions
from billing_cli.services.tenants import offboarding
from billing_cli.services.tenants import rules as tenants
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, invocation, row_counts, table_snapshot

pytestmark = pytest.mark.sandbox


def attach(db: Database, gateway: Gateway, method: str = "pm_card_visa") -> None:
    payments.attach_method(
        db,
        gateway,
        invocation=invocation(),
        tenant_slug="acme",
        payment_method=method,
        make_default=True,
    )


def charge(db: Database, gateway: Gateway, *, amount: int = 1250, dry_run: bool = False):  # type: ignore[no-untyped-def]
    return payments.charge(
        db,
        DryRunGateway(gateway) if dry_run else gateway,
        invocation=invocation(dry_run=dry_run),
        tenant_slug="acme",
        amount=amount,
        currency="usd",
        description="Extra seats",
    )


def intents(settings: Settings) -> list[stripe.PaymentIntent]:
    client = stripe.StripeClient(
        settings.stripe_secret_key, base_addresses={"api": settings.stripe_api_base}
    )
    return list(client.v1.payment_intents.list({"limit": 100}).data)


def test_charge_default_method(db: Database, gateway: Gateway, sandbox_settings: Settings) -> None:
    add_tenant(db, "acme")
    attach(db, gateway)
    methods = payments.list_methods(db, gateway, tenant_slug="acme")
    assert [(m["brand"], m["last4"], m["default"]) for m in methods] == [("visa", "4242", True)]
    change = charge(db, gateway)
    assert change.after is not None and change.after["status"] == "succeeded"
    assert [(i.amount, i.status) for i in intents(sandbox_settings)] == [(1250, "succeeded")]
    assert audit.list_entries(db, tenant_slug="acme", since=None, limit=1)[0]["outcome"] == (
        "charged 12.50 USD (succeeded)"
    )


def test_rerun_after_crash_charges_once(
    db: Database, gateway: Gateway, sandbox_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_tenant(db, "acme")
    attach(db, gateway)
    from billing_cli.repository import audit as audit_repo

    real_add = audit_repo.add
    state = {"fail": True}

    def fail_first(**kwargs):  # type: ignore[no-untyped-def]
        if state.pop("fail", False):
            raise DatabaseError("database refused the change: connection lost")
        return real_add(**kwargs)

    monkeypatch.setattr(audit_repo, "add", fail_first)
    with pytest.raises(DatabaseError):
        charge(db, gateway)
    charge(db, gateway)
    assert len(intents(sandbox_settings)) == 1
    # A deliberate second charge (after the first was recorded) is a new charge.
    charge(db, gateway)
    assert len(intents(sandbox_settings)) == 2


def test_decline_is_a_clear_error_and_is_audited(db: Database, gateway: Gateway) -> None:
    add_tenant(db, "acme")
    attach(db, gateway, "pm_card_chargeCustomerFail")
    with pytest.raises(CardDeclined, match="card declined: generic_decline"):
        charge(db, gateway)
    last = audit.list_entries(db, tenant_slug="acme", since=None, limit=1)[0]
    assert last["outcome"].startswith("charge of 12.50 USD failed: card declined")


def test_charge_without_customer_is_refused(db: Database, gateway: Gateway) -> None:
    add_tenant(db, "acme")
    with pytest.raises(Conflict, match="no Stripe customer"):
        charge(db, gateway)


def test_dry_run_charge_sends_nothing(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    add_tenant(db, "acme")
    attach(db, gateway)
    before = table_snapshot(db)
    stripe_requests.sent.clear()
    change = charge(db, gateway, dry_run=True)
    assert change.dry_run and [w["operation"] for w in change.stripe_writes] == ["create_payment"]
    assert stripe_requests.posts == []
    assert table_snapshot(db) == before


def test_remove_tenant(db: Database, gateway: Gateway, stripe_requests: StripeRequests) -> None:
    add_synced_plan(db, gateway, "starter")
    add_tenant(db, "acme")
    created = subscriptions.create_subscription(
        db,
        gateway,
        invocation=invocation(),
        tenant_slug="acme",
        plan_slug="starter",
        payment_method="pm_card_visa",
    )
    assert created.after is not None
    sub_id, customer_id = (
        created.after["stripe_subscription_id"],
        created.after["stripe_customer_id"],
    )
    before = table_snapshot(db)
    stripe_requests.sent.clear()
    preview = offboarding.remove_tenant(
        db, DryRunGateway(gateway), invocation=invocation(dry_run=True), slug="acme"
    )
    assert "cancel subscription" in preview.message and "delete customer" in preview.message
    assert stripe_requests.writes == [] and table_snapshot(db) == before

    offboarding.remove_tenant(db, gateway, invocation=invocation(), slug="acme")
    assert gateway.retrieve_subscription(sub_id).status == "canceled"
    assert gateway.retrieve_customer(customer_id).deleted
    counts = row_counts(db)
    assert (counts["tenant"], counts["tenant_subscription"], counts["notification"]) == (0, 0, 0)
    assert audit.list_entries(db, tenant_slug="acme", since=None, limit=1)[0]["outcome"].startswith(
        "removed"
    )
    with pytest.raises(NotFound):
        tenants.show_tenant(db, slug="acme")
