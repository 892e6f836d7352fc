"""The webhook engine on SQLite and PostgreSQL: handlers on both payload shapes, the tenant
policy, the ledger (at most once, failures, retries), refusals and dry runs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from billing_cli.errors import WebhookError
from billing_cli.repository import Database
from billing_cli.repository import audit as audit_repo
from billing_cli.repository import events as events_repo
from billing_cli.repository import notifications as notifications_repo
from billing_cli.services.tenants import rules as tenants
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.factories import invocation, row_counts, table_snapshot
from tests.services.webhooks.conftest import PRICE_BASIC, PRICE_PRO, Acme, state

SHAPES = pytest.mark.parametrize("shape", ["current", "legacy"])
T0 = 1_767_225_600


def manual_suspend(db: Database, slug: str) -> None:
    tenants.suspend_tenant(db, invocation=invocation(), slug=slug, reason="fraud review")


def sub_event(
    type_: str, created: int, shape: ev.Shape = "current", **fields: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "subscription_id": "sub_acme",
        "customer_id": "cus_acme",
        "status": "active",
        "price_id": PRICE_BASIC,
        "period_start": T0,
        "period_end": T0 + 30 * 86_400,
    }
    values.update(fields)
    return ev.subscription_event(type_, created=created, shape=shape, **values)


def inv_event(
    type_: str, created: int, shape: ev.Shape = "current", **fields: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "subscription_id": "sub_acme",
        "customer_id": "cus_acme",
        "attempt_count": 1,
        "paid": type_ != "invoice.payment_failed",
    }
    values.update(fields)
    return ev.invoice_event(type_, created=created, shape=shape, **values)


def notifications(db: Database) -> list[str]:
    """The kinds of the notices owed, oldest first (withdrawn ones are kept, but not owed)."""
    with db.read() as session:
        rows = reversed(notifications_repo.list_recent(session=session))
        return [n.kind for n, _ in rows if n.withdrawn_at is None]


def ledger(db: Database, event_id: str) -> dict[str, Any]:
    with db.read() as session:
        row = events_repo.get(session=session, event_id=event_id)
        assert row is not None
        return {"status": row.status, "attempts": row.attempts, "error": row.error}


# -- handlers, on both shapes ---------------------------------------------------------------


@SHAPES
def test_subscription_created_and_updated_upsert_the_row(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    trial_end = T0 + 14 * 86_400
    created = sub_event(
        "customer.subscription.created", T0, shape, status="trialing", trial_end=trial_end
    )
    assert engine.process(created, source="endpoint").status == "processed"
    sub = state(db)["subscription"]
    assert (sub["status"], sub["plan"], sub["trial_end"]) == (
        "trialing",
        "basic",
        "2026-01-15T00:00:00Z",
    )
    assert sub["current_period_start"] == "2026-01-01T00:00:00Z"
    assert sub["current_period_end"] == "2026-01-31T00:00:00Z"
    updated = sub_event(
        "customer.subscription.updated",
        T0 + 60,
        shape,
        price_id=PRICE_PRO,
        cancel_at_period_end=True,
        period_start=T0 + 86_400,
        period_end=T0 + 31 * 86_400,
    )
    outcome = engine.process(updated, source="endpoint")
    assert outcome.status == "processed"
    sub = state(db)["subscription"]
    assert (sub["status"], sub["plan"], sub["cancel_at_period_end"]) == ("active", "pro", True)
    assert sub["current_period_end"] == "2026-02-01T00:00:00Z"
    assert sub["last_event_created"] == T0 + 60
    assert outcome.changes[0].before is not None and outcome.changes[0].after is not None
    assert outcome.changes[0].before["status"] == "trialing"
    assert outcome.changes[0].after["status"] == "active"


@SHAPES
def test_subscription_found_by_metadata_tenant_gets_a_row(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    from tests.factories import add_tenant

    add_tenant(db, "globex")
    event = sub_event(
        "customer.subscription.created",
        T0,
        shape,
        subscription_id="sub_globex",
        customer_id="cus_globex",
        tenant="globex",
    )
    assert engine.process(event, source="replay").status == "processed"
    sub = state(db, "globex")["subscription"]
    assert (sub["stripe_subscription_id"], sub["stripe_customer_id"], sub["status"]) == (
        "sub_globex",
        "cus_globex",
        "active",
    )


@SHAPES
def test_deleted_cancels_and_suspends_with_audit_and_notification(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    engine.process(sub_event("customer.subscription.created", T0, shape), source="endpoint")
    deleted = sub_event(
        "customer.subscription.deleted", T0 + 100, shape, status="canceled", canceled_at=T0 + 100
    )
    outcome = engine.process(deleted, source="endpoint")
    found = state(db)
    assert found["subscription"]["status"] == "canceled"
    assert found["subscription"]["canceled_at"] == "2026-01-01T00:01:40Z"
    assert (found["tenant"]["status"], found["tenant"]["suspended_by"]) == ("suspended", "billing")
    assert found["tenant"]["suspension_reason"] == "billing: subscription canceled"
    assert [c.action for c in outcome.changes] == ["customer.subscription.deleted", "suspend"]
    assert notifications(db) == ["suspended"]
    with db.read() as session:
        entry = audit_repo.list_recent(session=session, tenant_slug="acme", limit=1)[0]
        assert entry.operator == f"webhook:{deleted['id']}"
        assert entry.command == "webhook customer.subscription.deleted"


@SHAPES
def test_trial_will_end_and_upcoming_invoice_notify(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    trialing = {"status": "trialing", "trial_end": T0 + 3 * 86_400}
    engine.process(
        sub_event("customer.subscription.created", T0, shape, **trialing), source="endpoint"
    )
    ending = sub_event("customer.subscription.trial_will_end", T0 + 10, shape, **trialing)
    assert engine.process(ending, source="endpoint").status == "processed"
    upcoming = inv_event("invoice.upcoming", T0 + 20, shape, attempt_count=0, paid=False)
    assert upcoming["data"]["object"]["id"] is None
    assert engine.process(upcoming, source="endpoint").status == "processed"
    assert notifications(db) == ["trial_will_end", "upcoming_invoice"]
    assert state(db)["subscription"]["status"] == "trialing"


@SHAPES
def test_three_failed_payments_suspend_and_a_payment_reactivates(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    engine.process(sub_event("customer.subscription.created", T0, shape), source="endpoint")
    for attempt in (1, 2):
        failed = inv_event("invoice.payment_failed", T0 + attempt, shape, attempt_count=attempt)
        engine.process(failed, source="endpoint")
        found = state(db)
        assert found["subscription"]["status"] == "past_due"
        assert found["subscription"]["failed_payment_attempts"] == attempt
        assert found["tenant"]["status"] == "active"
    third = inv_event("invoice.payment_failed", T0 + 3, shape, attempt_count=3)
    outcome = engine.process(third, source="endpoint")
    assert outcome.changes[-1].action == "suspend"
    found = state(db)
    assert (found["tenant"]["status"], found["tenant"]["suspended_by"]) == ("suspended", "billing")
    # still suspended by billing: A's deletion did it, B's three failures keep it so
    assert (found["tenant"]["status"], found["tenant"]["suspended_by"]) == ("suspended", "billing")

    paid = inv_event("invoice.payment_succeeded", T0 + 4, shape, attempt_count=4)
    outcome = engine.process(paid, source="endpoint")
    assert outcome.changes[-1].action == "reactivate"
    found = state(db)
    assert found["tenant"]["status"] == "active"
    assert found["subscription"]["status"] == "active"
    assert found["subscription"]["failed_payment_attempts"] == 0
    assert notifications(db) == [*["payment_failed"] * 3, "suspended", "reactivated"]


@SHAPES
def test_attempts_come_from_the_invoice_not_from_counting_events(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    failed = inv_event("invoice.payment_failed", T0, shape, attempt_count=2)
    engine.process(failed, source="endpoint")
    engine.process(failed, source="endpoint", force=True)
    engine.process({**failed, "id": "evt_redelivered_copy"}, source="replay")
    assert state(db)["subscription"]["failed_payment_attempts"] == 2
    assert state(db)["tenant"]["status"] == "active"


@SHAPES
def test_a_manual_suspension_is_never_lifted_by_a_payment(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    manual_suspend(db, "acme")
    engine.process(
        inv_event("invoice.payment_failed", T0, shape, attempt_count=3), source="endpoint"
    )
    engine.process(inv_event("invoice.paid", T0 + 10, shape), source="endpoint")
    tenant = state(db)["tenant"]
    assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "manual")
    assert state(db)["subscription"]["status"] == "active"


@SHAPES
def test_customer_updated_syncs_and_deleted_forgets_the_customer(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    updated = ev.customer_event(
        "customer.updated", created=T0, customer_id="cus_acme", email="ap@acme.example", shape=shape
    )
    outcome = engine.process(updated, source="endpoint")
    assert [c.action for c in outcome.changes] == ["sync"]
    assert state(db)["tenant"]["email"] == "ap@acme.example"
    assert state(db)["tenant"]["name"] == "Acme"  # no name in Stripe: ours stays
    created = ev.customer_event("customer.created", created=T0 - 10, customer_id="cus_acme")
    assert engine.process(created, source="endpoint").status == "processed"
    deleted = ev.customer_event("customer.deleted", created=T0 + 5, customer_id="cus_acme")
    assert engine.process(deleted, source="endpoint").status == "processed"
    assert state(db)["subscription"]["stripe_customer_id"] is None
    stale = ev.customer_event(
        "customer.updated",
        created=T0 - 1,
        customer_id="cus_acme",
        email="x@y.example",
        tenant="acme",
    )
    assert "older" in engine.process(stale, source="file").reason
    assert state(db)["tenant"]["email"] == "ap@acme.example"
    later = ev.customer_event(
        "customer.updated",
        created=T0 + 9,
        customer_id="cus_acme",
        email="new@acme.example",
        tenant="acme",
    )
    engine.process(later, source="file")
    assert state(db)["subscription"]["stripe_customer_id"] is None  # a deletion is final
    assert state(db)["tenant"]["email"] == "new@acme.example"


# -- order ----------------------------------------------------------------------------------


def test_an_older_event_never_overwrites_newer_state(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(
        sub_event("customer.subscription.updated", T0 + 100, price_id=PRICE_PRO), source="endpoint"
    )
    outcome = engine.process(sub_event("customer.subscription.created", T0), source="endpoint")
    assert outcome.status == "processed" and "older" in outcome.reason
    assert state(db)["subscription"]["plan"] == "pro"


def test_an_older_plan_change_still_applies_after_a_newer_payment(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(sub_event("customer.subscription.created", T0), source="endpoint")
    engine.process(inv_event("invoice.paid", T0 + 200), source="endpoint")
    engine.process(
        sub_event("customer.subscription.updated", T0 + 100, price_id=PRICE_PRO), source="endpoint"
    )
    sub = state(db)["subscription"]
    assert (sub["plan"], sub["status"]) == ("pro", "active")


def test_an_update_delivered_after_the_deletion_does_not_revive(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    deleted = sub_event("customer.subscription.deleted", T0, status="canceled", canceled_at=T0)
    engine.process(deleted, source="endpoint")
    engine.process(sub_event("customer.subscription.updated", T0), source="endpoint")
    engine.process(inv_event("invoice.paid", T0 + 50), source="endpoint")
    found = state(db)
    assert found["subscription"]["status"] == "canceled"
    assert found["tenant"]["status"] == "suspended"


# -- the ledger -----------------------------------------------------------------------------


def test_a_duplicate_is_skipped_and_force_reprocesses(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    event = sub_event("customer.subscription.created", T0)
    assert engine.process(event, source="endpoint").status == "processed"
    again = engine.process(event, source="endpoint")
    assert (again.status, again.reason) == ("skipped", "already processed")
    forced = engine.process(event, source="replay", force=True)
    assert forced.status == "processed"
    assert ledger(db, event["id"]) == {"status": "processed", "attempts": 2, "error": None}


def test_unhandled_types_are_ignored_and_recorded(db: Database, engine: WebhookEngine) -> None:
    event = ev.event("price.created", {"id": "price_x", "object": "price"})
    outcome = engine.process(event, source="endpoint")
    assert (outcome.status, outcome.reason) == ("ignored", "unhandled event type price.created")
    assert ledger(db, event["id"])["status"] == "ignored"
    assert engine.process(event, source="endpoint").status == "skipped"


@SHAPES
def test_an_unknown_customer_is_parked_with_the_reason(
    db: Database, acme: Acme, engine: WebhookEngine, shape: ev.Shape
) -> None:
    event = inv_event("invoice.paid", T0, shape, subscription_id="sub_other", customer_id="cus_x")
    outcome = engine.process(event, source="endpoint")
    assert outcome.status == "deferred"
    assert "unknown subscription sub_other" in outcome.reason and "cus_x" in outcome.reason
    assert ledger(db, event["id"]) == {"status": "deferred", "attempts": 1, "error": outcome.reason}
    assert engine.process(event, source="endpoint").status == "skipped"


def test_a_handler_error_is_recorded_failed_then_a_retry_applies_it(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    good = sub_event("customer.subscription.created", T0)
    bad: dict[str, Any] = {**good, "data": {"object": {**good["data"]["object"], "status": None}}}
    before = table_snapshot(db)
    outcome = engine.process(bad, source="endpoint")
    assert (outcome.status, outcome.reason) == ("failed", "ValueError: subscription has no status")
    assert ledger(db, good["id"]) == {
        "status": "failed",
        "attempts": 1,
        "error": "ValueError: subscription has no status",
    }
    after = table_snapshot(db)
    assert {k: v for k, v in after.items() if k != "webhook_event"} == {
        k: v for k, v in before.items() if k != "webhook_event"
    }
    assert engine.process(bad, source="endpoint").status == "failed"
    assert ledger(db, good["id"])["attempts"] == 2
    assert engine.process(good, source="replay").status == "processed"
    assert ledger(db, good["id"]) == {"status": "processed", "attempts": 3, "error": None}
    assert state(db)["subscription"]["status"] == "active"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([1, 2], "not a JSON object"),
        ({"type": "invoice.paid", "created": 1, "livemode": False}, "no id"),
        ({"id": "evt_1", "created": 1, "livemode": False, "data": {"object": {}}}, "no type"),
        ({"id": "evt_1", "type": "x", "livemode": False, "data": {"object": {}}}, "no created"),
        ({"id": "evt_1", "type": "x", "created": 1, "livemode": False}, "no data.object"),
        ({"id": "evt_1", "type": "x", "created": 1, "data": {"object": {}}}, "no livemode"),
    ],
)
def test_a_malformed_event_is_refused_and_nothing_stored(
    db: Database, engine: WebhookEngine, event: Any, message: str
) -> None:
    before = table_snapshot(db)
    with pytest.raises(WebhookError, match=message):
        engine.process(event, source="endpoint")
    assert table_snapshot(db) == before


def test_an_event_from_the_other_mode_is_refused_and_nothing_stored(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    before = table_snapshot(db)
    live = sub_event("customer.subscription.created", T0, livemode=True)
    with pytest.raises(WebhookError, match="live-mode event but this tool runs in test mode"):
        engine.process(live, source="endpoint")
    live_engine = WebhookEngine(db, live_mode=True, max_failed_attempts=3)
    with pytest.raises(WebhookError, match="test-mode event"):
        live_engine.process(sub_event("customer.subscription.created", T0), source="endpoint")
    assert table_snapshot(db) == before


def test_dry_run_writes_nothing_and_shows_the_changes(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(sub_event("customer.subscription.created", T0), source="endpoint")
    before = table_snapshot(db)
    deleted = sub_event("customer.subscription.deleted", T0 + 1, status="canceled")
    outcome = engine.process(deleted, source="replay", dry_run=True)
    assert outcome.status == "processed"
    assert [(c.action, c.dry_run) for c in outcome.changes] == [
        ("customer.subscription.deleted", True),
        ("suspend", True),
    ]
    failing = {**deleted, "id": "evt_failing", "data": {"object": {"id": "sub_acme"}}}
    assert engine.process(failing, source="replay", dry_run=True).status == "failed"
    assert table_snapshot(db) == before


def test_concurrent_deliveries_of_one_new_event_apply_it_once(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    event = inv_event("invoice.payment_failed", T0, attempt_count=1)
    barrier = threading.Barrier(4)
    results: list[str] = []

    def deliver() -> None:
        barrier.wait()
        results.append(engine.process(event, source="endpoint").status)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["processed", "skipped", "skipped", "skipped"], results
    assert notifications(db) == ["payment_failed"]
    assert row_counts(db)["webhook_event"] == 1


# -- a new subscription after a canceled one -------------------------------------------------


def _sub_b(type_: str, created: int, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"subscription_id": "sub_b", "subscription_created": T0 + 1_000}
    values.update(fields)
    return sub_event(type_, created, **values)


def test_a_new_subscription_outranks_the_canceled_one_and_reactivates(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(sub_event("customer.subscription.created", T0), source="endpoint")
    failed = inv_event("invoice.payment_failed", T0 + 10, attempt_count=2)
    engine.process(failed, source="endpoint")
    deleted = sub_event("customer.subscription.deleted", T0 + 20, status="canceled")
    engine.process(deleted, source="endpoint")
    assert state(db)["tenant"]["status"] == "suspended"

    outcome = engine.process(_sub_b("customer.subscription.created", T0 + 1_000), source="file")
    assert [c.action for c in outcome.changes] == ["customer.subscription.created", "reactivate"]
    found = state(db)
    assert found["subscription"]["stripe_subscription_id"] == "sub_b"
    assert (found["subscription"]["status"], found["tenant"]["status"]) == ("active", "active")
    assert found["subscription"]["failed_payment_attempts"] == 0  # A's failures stay with A

    late = sub_event("customer.subscription.updated", T0 + 2_000, price_id=PRICE_PRO)
    outcome = engine.process(late, source="file")  # about A, delivered late: refused
    assert "older than the tenant's subscription sub_b" in outcome.reason
    assert state(db)["subscription"]["plan"] == "basic"
    late_invoice = inv_event("invoice.payment_failed", T0 + 15, attempt_count=3)
    engine.process(late_invoice, source="file")
    found = state(db)
    assert (found["subscription"]["status"], found["tenant"]["status"]) == ("active", "active")
    assert found["subscription"]["failed_payment_attempts"] == 0


def test_an_invoice_of_the_new_subscription_before_its_snapshot_counts_once_it_arrives(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(sub_event("customer.subscription.created", T0), source="endpoint")
    engine.process(
        sub_event("customer.subscription.deleted", T0 + 20, status="canceled"), source="endpoint"
    )
    early = inv_event(
        "invoice.payment_failed", T0 + 1_100, subscription_id="sub_b", attempt_count=3
    )
    outcome = engine.process(early, source="endpoint")
    assert outcome.status == "processed" and "counts only once" in outcome.reason
    found = state(db)
    assert found["subscription"]["stripe_subscription_id"] == "sub_acme"
    assert (found["subscription"]["status"], found["subscription"]["failed_payment_attempts"]) == (
        "canceled",
        0,
    )
    engine.process(_sub_b("customer.subscription.created", T0 + 1_000), source="endpoint")
    found = state(db)
    assert (found["subscription"]["status"], found["subscription"]["failed_payment_attempts"]) == (
        "past_due",
        3,
    )
    # still suspended by billing: A's deletion did it, B's three failures keep it so
    assert (found["tenant"]["status"], found["tenant"]["suspended_by"]) == ("suspended", "billing")


def test_the_endpoint_engine_leaves_changes_out_and_writes_the_same(
    db: Database, acme: Acme
) -> None:
    endpoint = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    outcome = endpoint.process(sub_event("customer.subscription.created", T0), source="endpoint")
    assert (outcome.status, outcome.changes) == ("processed", ())
    deleted = sub_event("customer.subscription.deleted", T0 + 1, status="canceled")
    assert endpoint.process(deleted, source="endpoint", dry_run=True).changes  # dry runs show
    assert endpoint.process(deleted, source="endpoint").changes == ()
    found = state(db)
    assert (found["subscription"]["status"], found["tenant"]["status"]) == (
        "canceled",
        "suspended",
    )
    assert endpoint.for_replay().collect_changes
