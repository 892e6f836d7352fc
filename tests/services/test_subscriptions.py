"""The subscription lifecycle against the local Stripe sandbox (real HTTP, real state)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from billing_cli.errors import Conflict, DatabaseError, NotFound, UsageError
from billing_cli.gateway import DryRunGateway, Gateway
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.services.subscriptions import lifecycle as subscriptions
from billing_cli.services.tenants import rules as tenants
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, invocation, table_snapshot

pytestmark = pytest.mark.sandbox


@pytest.fixture
def plans(db: Database, gateway: Gateway) -> dict[str, str]:
    return {
        "starter": add_synced_plan(db, gateway, "starter", amount=1000),
        "pro": add_synced_plan(db, gateway, "pro", amount=3000),
    }


def subscribe(db: Database, gateway: Gateway, *, dry_run: bool = False, **options: object):  # type: ignore[no-untyped-def]
    return subscriptions.create_subscription(
        db,
        DryRunGateway(gateway) if dry_run else gateway,
        invocation=invocation(dry_run=dry_run),
        tenant_slug="acme",
        plan_slug=str(options.get("plan", "starter")),
        payment_method=options.get("payment_method", "pm_card_visa"),  # type: ignore[arg-type]
        trial_days=options.get("trial_days"),  # type: ignore[arg-type]
    )


def test_create_with_trial(db: Database, gateway: Gateway, plans: dict[str, str]) -> None:
    add_tenant(db, "acme")
    change = subscribe(db, gateway, trial_days=14)
    assert change.after is not None
    assert change.after["status"] == "trialing"
    assert change.after["plan"] == "starter"
    live = gateway.retrieve_subscription(change.after["stripe_subscription_id"])
    assert live.status == "trialing" and live.price_id == plans["starter"]
    assert live.trial_end is not None
    assert abs(live.trial_end - (utcnow() + timedelta(days=14))) < timedelta(minutes=5)
    customer = gateway.retrieve_customer(live.customer_id)
    assert customer.metadata["tenant"] == "acme"
    attached = [m.id for m in gateway.list_payment_methods(live.customer_id)]
    assert customer.default_payment_method in attached
    detail = tenants.show_tenant(db, slug="acme")
    assert detail.subscription is not None
    assert detail.subscription["stripe_subscription_id"] == live.id
    assert detail.audit[0]["outcome"] == "subscribed to starter (trialing)"


def test_second_subscription_is_refused_before_any_stripe_write(
    db: Database, gateway: Gateway, plans: dict[str, str], stripe_requests: StripeRequests
) -> None:
    add_tenant(db, "acme")
    first = subscribe(db, gateway)
    stripe_requests.sent.clear()
    with pytest.raises(
        Conflict, match=f"already has subscription {first.after['stripe_subscription_id']}"
    ):  # type: ignore[index]
        subscribe(db, gateway, plan="pro")
    assert stripe_requests.writes == []


def test_dry_run_makes_no_stripe_write_and_no_db_change(
    db: Database, gateway: Gateway, plans: dict[str, str], stripe_requests: StripeRequests
) -> None:
    add_tenant(db, "acme")
    before = table_snapshot(db)
    change = subscribe(db, gateway, dry_run=True, trial_days=7)
    assert change.dry_run and change.after is not None
    assert change.after["status"] == "trialing"
    assert [w["operation"] for w in change.stripe_writes] == [
        "create_customer",
        "attach_payment_method",
        "set_default_payment_method",
        "create_subscription",
    ]
    assert stripe_requests.posts == []
    assert table_snapshot(db) == before


def test_crash_after_stripe_write_then_rerun_leaves_one_subscription(
    db: Database, gateway: Gateway, plans: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local commit fails after Stripe said yes; the re-run must not subscribe twice."""
    add_tenant(db, "acme")
    from billing_cli.repository import audit as audit_repo

    real_add = audit_repo.add
    calls = {"n": 0}

    def fail_once(**kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise DatabaseError("database refused the change: connection lost")
        return real_add(**kwargs)

    monkeypatch.setattr(audit_repo, "add", fail_once)
    with pytest.raises(DatabaseError):
        subscribe(db, gateway)
    assert tenants.show_tenant(db, slug="acme").subscription is None  # nothing stored locally
    change = subscribe(db, gateway)
    assert change.after is not None
    customers = [c for c in gateway.list_customers(email="billing@acme.test") if not c.deleted]
    assert len(customers) == 1
    subs = gateway.list_subscriptions(customer_id=customers[0].id)
    assert [s.id for s in subs] == [change.after["stripe_subscription_id"]]


def test_upgrade_preview_then_change(
    db: Database, gateway: Gateway, plans: dict[str, str], stripe_requests: StripeRequests
) -> None:
    add_tenant(db, "acme")
    subscribe(db, gateway, trial_days=0)
    before = table_snapshot(db)
    stripe_requests.sent.clear()
    preview = subscriptions.upgrade_subscription(
        db,
        DryRunGateway(gateway),
        invocation=invocation(dry_run=True),
        tenant_slug="acme",
        plan_slug="pro",
        proration="always_invoice",
    )
    assert preview.preview is not None
    assert preview.preview.proration_amount > 0  # more expensive plan, mid-period
    assert preview.change.after is not None and preview.change.after["plan"] == "pro"
    # The preview is Stripe's read-only create_preview; nothing that writes was sent.
    assert [p for p in stripe_requests.posts if p != "/v1/invoices/create_preview"] == []
    assert table_snapshot(db) == before
    result = subscriptions.upgrade_subscription(
        db,
        gateway,
        invocation=invocation(),
        tenant_slug="acme",
        plan_slug="pro",
        proration="none",
    )
    assert result.change.changed
    live_id = result.change.after["stripe_subscription_id"]  # type: ignore[index]
    assert gateway.retrieve_subscription(live_id).price_id == plans["pro"]
    again = subscriptions.upgrade_subscription(
        db, gateway, invocation=invocation(), tenant_slug="acme", plan_slug="pro"
    )
    assert not again.change.changed and "already on pro" in again.change.message


def test_cancel_resume_cycle(db: Database, gateway: Gateway, plans: dict[str, str]) -> None:
    add_tenant(db, "acme")
    sub_id = subscribe(db, gateway).after["stripe_subscription_id"]  # type: ignore[index]
    cancel = subscriptions.cancel_subscription(
        db, gateway, invocation=invocation(), tenant_slug="acme", now=False
    )
    assert cancel.changed and gateway.retrieve_subscription(sub_id).cancel_at_period_end
    repeat = subscriptions.cancel_subscription(
        db, gateway, invocation=invocation(), tenant_slug="acme", now=False
    )
    assert not repeat.changed and "already cancels at period end" in repeat.message
    resumed = subscriptions.resume_subscription(
        db, gateway, invocation=invocation(), tenant_slug="acme"
    )
    assert resumed.changed and not gateway.retrieve_subscription(sub_id).cancel_at_period_end
    assert tenants.show_tenant(db, slug="acme").tenant["status"] == "active"


def test_cancel_now_suspends_and_blocks_resume(
    db: Database, gateway: Gateway, plans: dict[str, str]
) -> None:
    add_tenant(db, "acme")
    sub_id = subscribe(db, gateway).after["stripe_subscription_id"]  # type: ignore[index]
    subscriptions.cancel_subscription(
        db, gateway, invocation=invocation(), tenant_slug="acme", now=True
    )
    assert gateway.retrieve_subscription(sub_id).status == "canceled"
    tenant = tenants.show_tenant(db, slug="acme").tenant
    assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "billing")
    with pytest.raises(Conflict, match="cannot be resumed"):
        subscriptions.resume_subscription(db, gateway, invocation=invocation(), tenant_slug="acme")
    # A new subscription after the old one ended is allowed, is a new object, becomes the
    # tenant's subscription, and lifts the billing suspension that the cancellation caused.
    # Stripe stamps subscriptions to the second and the order key ranks subscriptions by that
    # stamp (see policy.py): start the new one in a later second, as any real re-subscription is.
    time.sleep(max(0.0, 1.05 - (time.time() % 1)))
    fresh = subscribe(db, gateway)
    assert fresh.after is not None and fresh.after["stripe_subscription_id"] != sub_id
    assert fresh.after["status"] == "active"
    tenant = tenants.show_tenant(db, slug="acme").tenant
    assert (tenant["status"], tenant["suspended_by"]) == ("active", None)


def test_show_side_by_side_flags_drift(
    db: Database, gateway: Gateway, plans: dict[str, str]
) -> None:
    add_tenant(db, "acme")
    sub_id = subscribe(db, gateway).after["stripe_subscription_id"]  # type: ignore[index]
    assert subscriptions.show_subscription(db, gateway, tenant_slug="acme")["differences"] == []
    gateway.set_cancel_at_period_end(sub_id, True, idempotency_key="test:drift")
    shown = subscriptions.show_subscription(db, gateway, tenant_slug="acme")
    assert "cancel_at_period_end" in shown["differences"]
    assert shown["stripe"]["cancel_at_period_end"] is True


def test_bad_input(db: Database, gateway: Gateway, plans: dict[str, str]) -> None:
    add_tenant(db, "acme")
    with pytest.raises(UsageError, match="pm_"):
        subscribe(db, gateway, payment_method="4242424242424242")
    with pytest.raises(UsageError, match="trial-days"):
        subscribe(db, gateway, trial_days=-1)
    with pytest.raises(NotFound, match="no plan 'gold'"):
        subscribe(db, gateway, plan="gold")
    with pytest.raises(NotFound, match="has no subscription"):
        subscriptions.cancel_subscription(
            db, gateway, invocation=invocation(), tenant_slug="acme", now=False
        )


def test_a_late_older_webhook_cannot_undo_a_support_change(
    db: Database, gateway: Gateway, plans: dict[str, str]
) -> None:
    """CLI writes go through the webhook engine's registers: an event about the state before
    the upgrade, delivered after it, changes nothing; a newer event still applies."""
    from billing_cli.services.webhooks import WebhookEngine
    from tests.events import subscription_event

    add_tenant(db, "acme")
    created = subscribe(db, gateway).after
    assert created is not None
    sub_id, customer_id = created["stripe_subscription_id"], created["stripe_customer_id"]
    subscriptions.upgrade_subscription(
        db,
        gateway,
        invocation=invocation(),
        tenant_slug="acme",
        plan_slug="pro",
        proration="none",
    )
    live = gateway.retrieve_subscription(sub_id)
    assert live.created is not None
    sub_created = int(live.created.timestamp())

    def event(created_at: int, price: str, event_id: str) -> dict[str, object]:
        return subscription_event(
            "customer.subscription.updated",
            event_id=event_id,
            created=created_at,
            subscription_id=sub_id,
            customer_id=customer_id,
            status="active",
            price_id=price,
            subscription_created=sub_created,
        )

    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    now = int(time.time())
    stale = engine.process(event(now - 30, plans["starter"], "evt_stale"), source="endpoint")
    assert stale.status == "processed"
    assert tenants.show_tenant(db, slug="acme").subscription["plan"] == "pro"  # type: ignore[index]
    newer = engine.process(event(now + 30, plans["starter"], "evt_newer"), source="endpoint")
    assert newer.status == "processed"
    assert tenants.show_tenant(db, slug="acme").subscription["plan"] == "starter"  # type: ignore[index]
