"""Issue 19, point 2: the wording follows the facts at send time."""

from __future__ import annotations

import pytest

from billing_cli.errors import UsageError
from billing_cli.repository import Database
from billing_cli.services.tenants import rules as tenants
from tests.factories import invocation
from tests.mail.story import Inbox, Tenant, body, send
from tests.services.webhooks.conftest import add_plans


def sent(db: Database) -> list[tuple[str, str]]:
    inbox = Inbox()
    send(db, inbox)
    return [(str(m["Subject"]), body(m)) for m in inbox.messages]


def test_an_attempt_beyond_the_limit_is_shown_at_the_limit_without_a_retry(db: Database) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.fail(4)  # a manual `invoices pay` retry after the third automatic attempt
    [(subject, text), *_rest] = sent(db)
    assert subject == "Payment failed: 19.00 USD (attempt 3 of 3)"
    assert "attempt 4" not in text and "try again" not in text
    assert "That was the last attempt, so your account is being suspended" in text


def test_the_last_attempt_promises_no_retry_while_the_tenant_is_suspended(db: Database) -> None:
    add_plans(db)
    Tenant(db, "acme").fail(3)  # Stripe still names a next attempt; billing suspends
    messages = dict(sent(db))
    text = messages["Payment failed: 19.00 USD (attempt 3 of 3)"]
    assert "try again" not in text


def test_no_retry_is_promised_when_stripe_plans_none(db: Database) -> None:
    add_plans(db)
    Tenant(db, "acme").fail(1, retry=False)
    [(subject, text)] = sent(db)
    assert subject == "Payment failed: 19.00 USD (attempt 1 of 3)"
    assert "try again" not in text
    assert "Please update your payment method and pay the open invoice." in text


def test_a_retry_is_announced_when_stripe_plans_one(db: Database) -> None:
    add_plans(db)
    Tenant(db, "acme").fail(1)
    [(_subject, text)] = sent(db)
    assert "We will try again on " in text


def test_a_suspension_for_a_canceled_subscription_says_how_to_subscribe_again(
    db: Database,
) -> None:
    add_plans(db)
    Tenant(db, "acme").cancel()
    [(subject, text)] = sent(db)
    assert subject == "Your account is suspended"
    assert "subscribe again" in text
    assert "as soon as a payment succeeds" not in text


def test_a_manual_suspension_is_neutral_and_keeps_the_reason_internal(db: Database) -> None:
    add_plans(db)
    Tenant(db, "acme").suspend("chargeback under review")
    [(_subject, text)] = sent(db)
    assert "chargeback" not in text
    assert "suspended by our team. Please reply to this e-mail to find out more." in text


def test_a_manual_suspension_says_the_customer_message_when_given(db: Database) -> None:
    add_plans(db)
    Tenant(db, "acme").suspend("chargeback under review", "We are reviewing a disputed payment.")
    [(_subject, text)] = sent(db)
    assert "suspended by our team: We are reviewing a disputed payment." in text
    assert "chargeback" not in text


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("line one\nline two", "--customer-message must not contain control characters"),
        ("pay \u202eusd 01", "--customer-message must not contain control characters"),
        ("x" * 501, "--customer-message is 501 characters long; the limit is 500"),
        ("   ", "--customer-message must not be empty"),
    ],
)
def test_a_bad_customer_message_is_refused_and_nothing_is_written(
    db: Database, message: str, error: str
) -> None:
    add_plans(db)
    Tenant(db, "acme")
    with pytest.raises(UsageError, match=error):
        tenants.suspend_tenant(
            db, invocation=invocation(), slug="acme", reason="x", customer_message=message
        )
    assert sent(db) == []


def test_a_billing_suspension_turned_manual_no_longer_promises_reactivation(
    db: Database,
) -> None:
    add_plans(db)
    acme = Tenant(db, "acme")
    acme.fail(3)
    acme.suspend("fraud check")  # a manual hold over the billing suspension
    texts = dict(sent(db))
    assert "as soon as a payment succeeds" not in texts["Your account is suspended"]
