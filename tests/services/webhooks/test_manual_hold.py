"""Issue 8, reproduction 4: a person's suspension of a tenant billing already suspended becomes a
manual hold that billing events never lift; only ``tenants reactivate`` does, and says so.
On SQLite and PostgreSQL."""

from __future__ import annotations

from billing_cli.repository import Database
from billing_cli.services.tenants import rules as tenants
from billing_cli.services.webhooks import WebhookEngine
from tests.factories import invocation
from tests.services.webhooks.conftest import Acme, state
from tests.services.webhooks.test_engine import T0, inv_event, sub_event


def _suspended_by_billing(engine: WebhookEngine) -> None:
    engine.process(sub_event("customer.subscription.created", T0), source="endpoint")
    for attempt in (1, 2, 3):
        failed = inv_event("invoice.payment_failed", T0 + attempt, attempt_count=attempt)
        engine.process(failed, source="endpoint")


def test_suspending_a_billing_suspension_makes_a_manual_hold_that_payments_do_not_lift(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    _suspended_by_billing(engine)
    assert state(db)["tenant"]["suspended_by"] == "billing"

    hold = tenants.suspend_tenant(db, invocation=invocation(), slug="acme", reason="chargeback")
    assert hold.changed and hold.after is not None
    assert (hold.after["status"], hold.after["suspended_by"]) == ("suspended", "manual")
    assert hold.after["suspension_reason"] == "chargeback"
    assert "billing events no longer lift it" in hold.message
    audit = tenants.show_tenant(db, slug="acme").audit
    assert audit[0]["outcome"] == "manual hold over a billing suspension"
    assert audit[0]["before"]["suspended_by"] == "billing"

    paid = engine.process(inv_event("invoice.paid", T0 + 60, attempt_count=4), source="endpoint")
    assert paid.status == "processed"
    found = state(db)
    assert found["subscription"]["status"] == "active"
    assert (found["tenant"]["status"], found["tenant"]["suspended_by"]) == ("suspended", "manual")

    back = tenants.reactivate_tenant(db, invocation=invocation(), slug="acme")
    assert back.changed and "lifted the manual hold: chargeback" in back.message
    assert state(db)["tenant"]["status"] == "active"


def test_a_dry_run_hold_changes_nothing(db: Database, acme: Acme, engine: WebhookEngine) -> None:
    _suspended_by_billing(engine)
    hold = tenants.suspend_tenant(
        db, invocation=invocation(dry_run=True), slug="acme", reason="chargeback"
    )
    assert hold.message.startswith("would hold")
    assert state(db)["tenant"]["suspended_by"] == "billing"
