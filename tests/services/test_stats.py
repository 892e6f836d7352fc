"""``compute_stats`` and ``run_checks`` on both databases, over rows written with known times.

The rows are the ones production writes (ledger rows with ``processing_ms``, audit entries of
`subs create`, `payments charge` and suspensions, outbox rows, counters), inserted directly so
that each figure can be checked against a number worked out by hand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
import sqlalchemy as sa

from billing_cli.config import Settings
from billing_cli.models import AuditEntry, Notification, WebhookEvent, utcnow
from billing_cli.repository import Database
from billing_cli.services.observe import counters as observe
from billing_cli.services.observe.stats import compute_stats, run_checks
from tests.factories import add_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY1, DAY2 = NOW - timedelta(days=1), NOW - timedelta(hours=1)
_ids = count(1)


def ledger_row(
    db: Database,
    at: datetime,
    *,
    type: str = "customer.subscription.updated",
    status: str = "processed",
    ms: float | None = 1.0,
    source: str = "endpoint",
) -> None:
    table = WebhookEvent.metadata.tables["webhook_event"]
    with db.transaction() as session:
        session.connection().execute(
            table.insert(),
            {
                "stripe_event_id": f"evt_{next(_ids)}",
                "type": type,
                "created": int(at.timestamp()),
                "livemode": False,
                "source": source,
                "status": status,
                "attempts": 1,
                "received_at": at,
                "processed_at": at,
                "processing_ms": ms,
            },
        )


def audit(db: Database, at: datetime, command: str, outcome: str, **kwargs: Any) -> None:
    with db.transaction() as session:
        session.add(
            AuditEntry(
                at=at,
                operator="t",
                command=command,
                target=kwargs.pop("target", "x"),
                outcome=outcome,
                **kwargs,
            )
        )


def fill(db: Database) -> None:
    for n in range(1, 101):  # day 1: 1..100 ms
        ledger_row(db, DAY1, ms=float(n))
    for _ in range(10):  # day 2: ten at 10 ms, two failed
        ledger_row(db, DAY2, ms=10.0)
    ledger_row(db, DAY2, status="failed", ms=500.0)
    ledger_row(db, DAY2, status="failed", ms=700.0)
    ledger_row(db, DAY2, status="ignored", ms=None)
    for _ in range(3):
        ledger_row(db, DAY1, type="invoice.payment_succeeded")
    ledger_row(db, DAY1, type="invoice.paid")  # not counted again
    ledger_row(db, DAY2, type="invoice.payment_failed")
    ledger_row(db, NOW - timedelta(days=40), type="invoice.payment_failed")  # outside
    audit(db, DAY1, "subs create", "subscribed to pro (active)", after={"status": "active"})
    audit(db, DAY2, "subs create", "subscribed to pro (trialing)", after={"status": "trialing"})
    audit(db, DAY2, "subs create", "subscribed (incomplete)", after={"status": "incomplete"})
    audit(db, DAY2, "subs create", "dry", after={"status": "active"}, dry_run=True)
    audit(db, DAY1, "payments charge", "charged 5.00 USD", after={"status": "succeeded"})
    audit(db, DAY2, "payments charge", "charge of 5.00 USD failed: card declined")
    audit(db, DAY1, "webhook invoice.payment_failed", "suspended (billing)")
    audit(db, DAY2, "tenants suspend", "suspended (manual)")
    audit(db, DAY2, "tenants suspend", "suspended (manual)", dry_run=True)
    for slug in ("acme", "globex", "initech", "hooli"):
        add_tenant(db, slug)
    with db.transaction() as session:
        for tenant_id in (1, 1, 2):
            session.add(Notification(tenant_id=tenant_id, kind="payment_failed", created_at=DAY2))
    counter = observe.RejectionCounter()
    for reason in ("bad_signature", "bad_signature", "bad_signature", "body_too_large"):
        counter.note(reason, at=DAY2)
    assert counter.flush(db) == 4
    observe.record_stripe_error(
        db, operation="subscription.create", error_class="RateLimited", at=DAY2
    )
    with db.transaction() as session:  # inside a caller's transaction, as the intent journal does
        observe.record_stripe_error(
            session, operation="subscription.create", error_class="RateLimited", at=DAY2
        )


def test_stats_per_day_and_in_total(db: Database) -> None:
    fill(db)
    stats = compute_stats(db, since=NOW - timedelta(days=30), by="day", now=NOW)
    m = stats["metrics"]

    assert m["subscription_creation"]["total"] == {
        "attempts": 3,
        "succeeded": 2,
        "success_rate": 0.6667,
    }
    assert m["payments"]["total"] == {
        "invoices_succeeded": 3,
        "invoices_failed": 1,
        "invoice_success_rate": 0.75,
        "charges_attempted": 2,
        "charges_succeeded": 1,
        "charge_success_rate": 0.5,
    }
    processing = m["webhook_processing"]
    assert processing["total"]["outcomes"] == {"failed": 2, "ignored": 1, "processed": 115}
    by_day = {row["period"]: row for row in processing["series"]}
    day1 = by_day["2026-11-19"]
    assert day1["events"] == 104
    # 100 rows at 1..100 ms and 4 invoice rows at 1 ms: nearest rank over 104 values
    assert (day1["p50"], day1["p95"], day1["p99"]) == (48.0, 95.0, 99.0)
    day2 = by_day["2026-11-20"]
    assert (day2["p50"], day2["p95"], day2["p99"]) == (10.0, 700.0, 700.0)
    assert len(processing["series"]) == 31 and by_day["2026-11-01"]["events"] == 0
    assert m["failed_payments"]["total"] == {"failed_attempts": 1, "tenants": 2}
    assert m["suspensions"]["total"] == {
        "billing": 1,
        "manual": 1,
        "total": 2,
        "tenants_suspended": 1,  # both rows name target "x", a tenant not active now
        "tenants_active_in_window": 5,
        "rate": 0.2,
    }
    rejected = m["rejected_deliveries"]["total"]
    assert (rejected["total"], rejected["bad_signature"], rejected["body_too_large"]) == (4, 3, 1)
    assert m["stripe_errors"]["total"] == {
        "total": 2,
        "by_kind": [{"operation": "subscription.create", "error_class": "RateLimited", "count": 2}],
    }
    weekly = compute_stats(db, since=NOW - timedelta(days=30), by="week", now=NOW)
    weeks = weekly["metrics"]["webhook_processing"]["series"]
    assert [w["period"] for w in weeks][-2:] == ["2026-11-09", "2026-11-16"]  # Mondays
    assert weeks[-1]["events"] == 118


def test_the_rejection_counter_stays_one_row_per_minute_and_reason(db: Database) -> None:
    counter = observe.RejectionCounter()
    for n in range(5000):
        counter.note("bad_signature", at=DAY2 + timedelta(seconds=n % 50))
    counter.flush(db)
    for _ in range(3):
        counter.note("bad_signature", at=DAY2)
        counter.flush(db)
    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT reason, count FROM rejected_delivery")).all()
    assert [tuple(r) for r in rows] == [("bad_signature", 5003)]


def test_a_flush_that_fails_keeps_its_counts_for_the_next(db: Database, tmp_path: Any) -> None:
    from billing_cli.errors import DatabaseError

    counter = observe.RejectionCounter()
    counter.note("missing_signature", at=DAY2)
    with pytest.raises(DatabaseError):
        counter.flush(Database("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    assert counter.pending == 1
    assert counter.flush(db) == 1


# -- billing check: each rule fires and clears ------------------------------------------------

SETTINGS = Settings()


def fired(db: Database, settings: Settings = SETTINGS, now: datetime = NOW) -> set[str]:
    return {r.rule for r in run_checks(db, settings, now=now) if r.fired}


def test_signature_failures_in_the_last_hour(db: Database) -> None:
    counter = observe.RejectionCounter()
    for _ in range(11):
        counter.note("stale_timestamp", at=NOW - timedelta(minutes=30))
    counter.note("body_too_large", at=NOW - timedelta(minutes=30))  # not a signature failure
    counter.flush(db)
    results = {r.rule: r for r in run_checks(db, SETTINGS, now=NOW)}
    assert results["signature_failures"].fired
    assert results["signature_failures"].message == (
        "11 webhook signature failures in the last hour (threshold 10)"
    )
    assert "signature_failures" not in fired(db, replace(SETTINGS, alert_signature_failures=11))
    assert "signature_failures" not in fired(db, now=NOW + timedelta(hours=1))


def test_payment_failure_rate_over_a_day(db: Database) -> None:
    for _ in range(4):
        ledger_row(db, NOW - timedelta(hours=2), type="invoice.payment_failed")
    audit(db, NOW - timedelta(hours=3), "payments charge", "charge failed: declined")
    results = {r.rule: r for r in run_checks(db, SETTINGS, now=NOW)}
    assert results["payment_failure_rate"].fired
    assert results["payment_failure_rate"].message == (
        "payment failure rate 100% over 24 h (5 of 5 attempts) (threshold 20%)"
    )
    for _ in range(20):
        ledger_row(db, NOW - timedelta(hours=1), type="invoice.payment_succeeded")
    assert "payment_failure_rate" not in fired(db)  # 5 of 25 = 20%, not above
    assert "payment_failure_rate" not in fired(db, now=NOW + timedelta(days=2))


def test_too_few_payments_are_not_judged(db: Database) -> None:
    ledger_row(db, NOW - timedelta(hours=2), type="invoice.payment_failed")
    assert "payment_failure_rate" not in fired(db)
    assert "payment_failure_rate" in fired(db, replace(SETTINGS, alert_payment_min_attempts=1))


def test_stripe_errors_in_the_last_hour(db: Database) -> None:
    for _ in range(6):
        observe.record_stripe_error(
            db, operation="payment.create", error_class="StripeUnreachable", at=NOW
        )
    assert "stripe_errors" in fired(db)
    assert "stripe_errors" not in fired(db, now=NOW + timedelta(hours=2))


def test_failed_ledger_rows(db: Database) -> None:
    ledger_row(db, NOW - timedelta(days=3), status="failed")
    assert "failed_events" in fired(db)
    with db.connect() as connection, connection.begin():
        connection.execute(sa.text("UPDATE webhook_event SET status = 'processed'"))
    assert "failed_events" not in fired(db)


def test_a_silent_endpoint_while_subscriptions_are_live(db: Database) -> None:
    from tests.services.webhooks.conftest import link_customer

    assert "dead_endpoint" not in fired(db)  # nothing live: silence is fine
    add_tenant(db, "acme")
    link_customer(db, "acme", "cus_acme", "sub_acme")
    with db.connect() as connection, connection.begin():
        connection.execute(sa.text("UPDATE tenant_subscription SET status = 'active'"))
    assert "dead_endpoint" in fired(db)  # live, and never a delivery
    ledger_row(db, NOW - timedelta(hours=30), source="replay")
    ledger_row(db, NOW - timedelta(hours=25))
    results = {r.rule: r for r in run_checks(db, SETTINGS, now=NOW)}
    assert results["dead_endpoint"].fired
    assert results["dead_endpoint"].message == (
        "last delivery 25.0 h ago at the endpoint while 1 subscription is live (threshold 24 h)"
    )
    ledger_row(db, NOW - timedelta(hours=2))
    assert "dead_endpoint" not in fired(db)
    assert fired(db) == set()


def test_processing_times_fall_in_buckets_of_two_significant_digits(db: Database) -> None:
    from billing_cli.repository import stats as stats_repo

    for ms in (0.456, 1.234, 9.99, 12.7, 345.6, 5678.9, 12345.0):
        ledger_row(db, DAY2, ms=ms)
    with db.read() as session:
        rows = stats_repo.ledger_day(session=session, start=DAY1, end=None)
    buckets = sorted(stats_repo.ms_of_code(r["code"]) for r in rows)
    assert buckets == [0.45, 1.2, 9.9, 12.0, 340.0, 5600.0, 12000.0]
    day = compute_stats(db, since=DAY1, now=NOW)["metrics"]["webhook_processing"]["total"]
    assert (day["p50"], day["p95"], day["p99"]) == (12.0, 12000.0, 12000.0)


def test_stripe_writes_unfinished_for_over_an_hour(db: Database) -> None:
    from billing_cli.models import Invocation
    from billing_cli.services import journal

    add_tenant(db, "acme")
    intent = journal.begin(
        db,
        operation="payment.charge",
        target="payment:acme",
        tenant_slug="acme",
        params={"amount": 100},
        invocation=Invocation(operator="op", command="payments charge"),
    )
    assert "unfinished_intents" not in fired(db, now=utcnow())  # started just now
    later = utcnow() + timedelta(hours=2)
    assert "unfinished_intents" in fired(db, now=later)
    with db.transaction() as session:
        journal.close(session, intent, succeeded=True)
    assert "unfinished_intents" not in fired(db, now=later)


def test_the_suspension_rate_stays_a_rate_with_more_suspensions_than_active_tenants(
    db: Database,
) -> None:
    """Issue 24.7: 4 suspensions with 1 tenant left active read 400% against "active now".
    Tenants suspended in the window over tenants active at any time in it: 3 of 4."""
    from billing_cli.services.tenants import rules as tenants
    from tests.factories import invocation

    for slug in ("acme", "globex", "initech", "hooli"):
        add_tenant(db, slug)
    for slug in ("acme", "globex", "initech"):
        tenants.suspend_tenant(db, invocation=invocation(), slug=slug, reason="chargeback")
    tenants.reactivate_tenant(db, invocation=invocation(), slug="acme")
    tenants.suspend_tenant(db, invocation=invocation(), slug="acme", reason="again")
    tenants.suspend_tenant(db, invocation=invocation(dry_run=True), slug="hooli", reason="dry")

    now = utcnow()
    total = compute_stats(db, since=now - timedelta(days=1), now=now)["metrics"]["suspensions"]
    assert total["total"] == {
        "billing": 0,
        "manual": 4,
        "total": 4,
        "tenants_suspended": 3,
        "tenants_active_in_window": 4,
        "rate": 0.75,
    }
