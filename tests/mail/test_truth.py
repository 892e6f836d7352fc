"""Issue 19, point 1: each notice is re-checked against the tenant's state when it is sent; one
whose fact no longer holds is withdrawn with its reason, and ``list`` shows the same verdict."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from billing_cli.repository import Database, migrations
from billing_cli.services.observe.notices import list_notices as list_notifications
from tests.mail.story import MAX_FAILED, Inbox, Tenant, body, send
from tests.services.webhooks.conftest import add_plans, state


def results(report: Any) -> list[tuple[str, str, str]]:
    return [(d.kind, d.result, d.reason) for d in report.deliveries]


def test_a_trial_notice_is_withdrawn_once_the_trial_ended_and_was_paid(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.trial_will_end()
    pending = list_notifications(db)[0]
    assert (pending["state"], pending["verdict"]) == ("pending", "will send")
    acme.trial_converts()
    assert list_notifications(db, kind="trial_will_end")[0]["verdict"] == (
        "will withdraw: the trial is over (the subscription is active)"
    )
    inbox = Inbox()
    assert results(send(db, inbox)) == [
        ("trial_will_end", "withdrawn", "the trial is over (the subscription is active)")
    ]
    assert inbox.messages == []
    shown = list_notifications(db, state="withdrawn")[0]
    assert shown["withdrawn_reason"] == "the trial is over (the subscription is active)"
    assert shown["verdict"] == "withdrawn: the trial is over (the subscription is active)"
    assert send(db, inbox).deliveries == []  # withdrawn stays withdrawn


def test_a_suspension_notice_is_withdrawn_once_the_tenant_is_active_again(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.suspend("chargeback under review")
    acme.reactivate()
    inbox = Inbox()
    assert results(send(db, inbox)) == [
        ("suspended", "withdrawn", "the tenant was reactivated after the suspension notice"),
        (
            "reactivated",
            "withdrawn",
            "the suspension it lifts was never announced (notice #1 not sent)",
        ),
    ]
    assert inbox.messages == []


def test_a_reactivation_is_sent_when_the_suspension_was(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.suspend("chargeback under review")
    inbox = Inbox()
    send(db, inbox)
    acme.reactivate()
    send(db, inbox)
    assert [m["Subject"] for m in inbox.messages] == [
        "Your account is suspended",
        "Your account is active again",
    ]


def test_a_failure_notice_is_withdrawn_once_the_invoice_is_paid(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.fail(1)
    acme.pay()
    inbox = Inbox()
    assert results(send(db, inbox)) == [
        ("payment_failed", "withdrawn", "the invoice was paid after the failure notice")
    ]


def test_a_newer_notice_of_the_same_kind_supersedes_the_older(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.fail(1)
    acme.fail(2)
    inbox = Inbox()
    report = send(db, inbox)
    first, second = report.deliveries
    assert (first.result, first.reason) == (
        "withdrawn",
        f"superseded by the newer payment_failed notice #{second.id}",
    )
    assert second.result == "sent"
    assert [m["Subject"] for m in inbox.messages] == ["Payment failed: 19.00 USD (attempt 2 of 3)"]


def test_a_trial_notice_is_withdrawn_when_the_subscription_is_canceled(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.trial_will_end()
    acme.cancel()
    withdrawn = list_notifications(db, kind="trial_will_end")[0]
    # withdrawn by the cancellation event itself, and kept with its reason
    assert (withdrawn["state"], withdrawn["withdrawn_reason"]) == (
        "withdrawn",
        "the subscription was canceled",
    )
    inbox = Inbox()
    assert [d.kind for d in send(db, inbox).deliveries] == ["suspended"]
    assert "subscribe again" in body(inbox.messages[0])


def test_a_dry_run_shows_the_withdrawal_and_writes_nothing(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.fail(1)
    acme.pay()
    report = send(db, Inbox(), dry_run=True)
    assert [d.result for d in report.deliveries] == ["would withdraw"]
    assert list_notifications(db)[0]["state"] == "pending"


# -- property: no message states a fact that is false when it is sent ------------------------

_RAM = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
STEPS = ("trial_will_end", "trial_converts", "fail", "fail_final", "pay", "cancel")
STEPS += ("suspend", "reactivate", "send", "send")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Database]:
    with tempfile.TemporaryDirectory(dir=_RAM) as directory:
        db = Database(f"sqlite:///{Path(directory) / 'truth.db'}")
        migrations.upgrade(db)
        yield db
        db.dispose()


def _reset(db: Database) -> None:
    with db.connect() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())
        connection.commit()
    add_plans(db)


def assert_true_now(db: Database, message: Any) -> None:
    """What the message says, checked against the state at the moment it was sent."""
    now = state(db)
    tenant, sub = now["tenant"], now["subscription"] or {}
    subject, text = str(message["Subject"]), body(message)
    if subject.startswith("Your trial ends on"):
        assert sub["status"] == "trialing"
        trial_end = datetime.fromisoformat(sub["trial_end"].replace("Z", "+00:00"))
        assert subject.endswith(trial_end.astimezone(UTC).strftime("%Y-%m-%d"))
    if subject.startswith("Payment failed"):
        assert sub["failed_payment_attempts"] > 0 and sub["status"] != "canceled"
        attempt = int(subject.split("attempt ")[1].split(" of")[0])
        assert attempt <= MAX_FAILED
        if "try again" in text:
            assert tenant["status"] == "active" and attempt < MAX_FAILED
    if subject == "Your account is suspended":
        assert tenant["status"] == "suspended"
        if "as soon as a payment succeeds" in text:
            assert tenant["suspended_by"] == "billing" and sub["status"] != "canceled"
        assert "chargeback" not in text
    if subject == "Your account is active again":
        assert tenant["status"] == "active"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=12))
def test_no_message_states_a_fact_false_when_it_is_sent(
    scratch: Database, steps: list[str]
) -> None:
    _reset(scratch)
    acme = Tenant(scratch, "acme")
    acme.trialing()
    attempts = 0
    for step in steps:
        if step == "send":
            inbox = Inbox()
            send(scratch, inbox)
            for message in inbox.messages:
                assert_true_now(scratch, message)
        elif step in ("fail", "fail_final"):
            attempts = MAX_FAILED if step == "fail_final" else attempts + 1
            acme.fail(attempts)
        elif step == "suspend":
            acme.suspend("chargeback under review")
        else:
            attempts = 0 if step == "pay" else attempts
            getattr(acme, step)()
    inbox = Inbox()
    send(scratch, inbox)
    for message in inbox.messages:
        assert_true_now(scratch, message)
    with scratch.connect() as connection:
        unsent = connection.execute(
            sa.text(
                "SELECT count(*) FROM notification WHERE sent_at IS NULL "
                "AND withdrawn_at IS NULL AND failed_at IS NULL"
            )
        ).scalar()
    assert unsent == 0  # each notice was sent or withdrawn with a reason
