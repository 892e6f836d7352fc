"""``send_notifications`` against a real SMTP server on loopback (aiosmtpd), on both databases.

The outbox is filled the way production fills it: the webhook engine for trial, invoice and
payment events, the tenant service for a suspension and a reactivation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa

from billing_cli.mail.smtp import SmtpMailer, SmtpTarget
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.services.observe import notify
from billing_cli.services.observe.notices import list_notices as list_notifications
from billing_cli.services.tenants import rules as tenants
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.factories import add_tenant, invocation, table_snapshot
from tests.mail.conftest import SmtpServer
from tests.services.webhooks.conftest import PRICE_BASIC, add_plans, link_customer

DAY = 86_400
T0 = (int(utcnow().timestamp()) // DAY + 30) * DAY  # midnight UTC, 30 days ahead: the trial
FROM = "Billing <billing@saas.test>"  # in the outbox is still running whenever the tests run


def on(days: int) -> str:
    """The date ``days`` after T0, as the messages show it."""
    return datetime.fromtimestamp(T0 + days * DAY, UTC).strftime("%Y-%m-%d")


def fill_outbox(db: Database) -> None:
    """One notification of each kind, each still true when sent, in this order: acme's trial
    ends and its first invoice is coming, bolt's payment failed, cove was suspended by hand,
    dune was reactivated (its suspension predates the outbox)."""
    add_plans(db)
    for slug, name, customer in (
        ("acme", "Acme Inc", "acme"),
        ("bolt", "Bolt", "bolt"),
        ("cove", "Cove", None),
        ("dune", "Dune", None),
    ):
        add_tenant(db, slug, name=name, email=f"ap@{slug}.test")
        if customer:
            link_customer(db, slug, f"cus_{customer}", f"sub_{customer}")
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    trial = ev.subscription_event(
        "customer.subscription.trial_will_end",
        created=T0,
        subscription_id="sub_acme",
        customer_id="cus_acme",
        status="trialing",
        price_id=PRICE_BASIC,
        trial_end=T0 + 3 * DAY,
    )
    upcoming = ev.invoice_event(
        "invoice.upcoming",
        created=T0 + 10,
        attempt_count=0,
        paid=False,
        amount=4900,
        subscription_id="sub_acme",
        customer_id="cus_acme",
    )
    failed = ev.invoice_event(
        "invoice.payment_failed",
        created=T0 + 20,
        attempt_count=2,
        paid=False,
        subscription_id="sub_bolt",
        customer_id="cus_bolt",
    )
    for event in (trial, upcoming, failed):
        assert engine.process(event, source="endpoint").status == "processed"
    tenants.suspend_tenant(db, invocation=invocation(), slug="cove", reason="chargeback")
    with db.connect() as connection, connection.begin():  # suspended before the outbox was
        connection.execute(  # kept: no suspension notice of it stands unsent
            sa.text(
                "UPDATE tenant SET status = 'suspended', suspended_by = 'manual', "
                "suspension_reason = 'late' WHERE slug = 'dune'"
            )
        )
    tenants.reactivate_tenant(db, invocation=invocation(), slug="dune")


def send(db: Database, server: SmtpServer, **kwargs: Any) -> notify.SendReport:
    url = kwargs.pop("url", None) or server.url()
    with SmtpMailer(SmtpTarget.from_url(url), timeout=5) as mailer:
        return notify.send_notifications(
            db,
            mailer,
            invocation=invocation(),
            mail_from=FROM,
            max_attempts=kwargs.pop("max_attempts", 8),
            max_failed_attempts=3,
            **kwargs,
        )


def outbox(db: Database) -> list[dict[str, Any]]:
    return list(reversed(list_notifications(db)))  # oldest first


def due_now(db: Database) -> None:
    """Let the backoff run out, as time would."""
    with db.connect() as connection, connection.begin():
        connection.execute(
            sa.text(
                "UPDATE notification SET next_attempt_at = :t WHERE next_attempt_at IS NOT NULL"
            ),
            {"t": utcnow() - timedelta(seconds=1)},
        )


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def test_each_kind_reaches_the_server_as_its_template_says(db: Database, smtp: SmtpServer) -> None:
    fill_outbox(db)
    ids = [n["id"] for n in outbox(db)]

    report = send(db, smtp)

    assert [d.result for d in report.deliveries] == ["sent"] * 5
    got = smtp.handler.received
    assert [m["Subject"] for m in got] == [
        f"Your trial ends on {on(3)}",
        f"Upcoming invoice: 49.00 USD on {on(3)}",
        "Payment failed: 20.00 USD (attempt 2 of 3)",
        "Your account is suspended",
        "Your account is active again",
    ]
    assert [m["Message-ID"] for m in got] == [f"<notification-{i}@saas.test>" for i in ids]
    assert [m["To"] for m in got] == [
        "Acme Inc <ap@acme.test>",
        "Acme Inc <ap@acme.test>",
        "Bolt <ap@bolt.test>",
        "Cove <ap@cove.test>",
        "Dune <ap@dune.test>",
    ]
    assert {m["From"] for m in got} == {FROM}
    assert body(got[0]).startswith(f"Hello Acme Inc,\n\nYour trial ends on {on(3)}.")
    assert (
        "Your next invoice, 49.00 USD, will be charged to your payment method on file on "
        f"{on(3)}." in body(got[1])
    )
    assert (
        "We could not collect 20.00 USD for your subscription (attempt 2 of 3).\n"
        f"We will try again on {on(3)}." in body(got[2])
    )
    assert "suspended by our team. Please reply to this e-mail" in body(got[3])
    assert "chargeback" not in body(got[3])  # --reason is internal
    assert [(n["state"], n["attempts"]) for n in outbox(db)] == [("sent", 1)] * 5
    assert send(db, smtp).deliveries == []  # nothing is sent twice
    assert len(smtp.handler.received) == 5


def test_a_temporary_refusal_keeps_the_row_pending_and_a_later_run_resends_it(
    db: Database, smtp: SmtpServer
) -> None:
    fill_outbox(db)
    smtp.handler.refuse["ap@acme.test"] = "451 4.3.0 mailbox busy, try later"

    report = send(db, smtp, limit=1)

    assert [d.result for d in report.deliveries] == ["retry"]
    row = outbox(db)[0]
    assert (row["state"], row["attempts"], row["sent_at"]) == ("pending", 1, None)
    assert row["last_error"] == "recipient refused (451 4.3.0 mailbox busy, try later)"
    assert row["next_attempt_at"] is not None
    smtp.handler.refuse.clear()
    # the backoff holds it back from the next run: only the other four go
    assert [d.id for d in send(db, smtp).deliveries] == [n["id"] for n in outbox(db)[1:]]
    due_now(db)
    retried = send(db, smtp)
    assert [d.id for d in retried.deliveries] == [row["id"]]
    assert retried.deliveries[0].result == "sent"
    first = outbox(db)[0]
    assert (first["state"], first["attempts"], first["last_error"]) == ("sent", 2, None)
    same = [
        m
        for m in smtp.handler.received
        if m["Message-ID"] == f"<notification-{row['id']}@saas.test>"
    ]
    assert len(same) == 1


def test_a_permanent_refusal_or_too_many_tries_gives_the_row_up(
    db: Database, smtp: SmtpServer
) -> None:
    fill_outbox(db)
    smtp.handler.refuse["ap@acme.test"] = "550 5.1.1 no such user"
    report = send(db, smtp, limit=1)
    assert [d.result for d in report.deliveries] == ["failed"]
    assert outbox(db)[0]["state"] == "failed"
    assert outbox(db)[0]["last_error"] == "recipient refused (550 5.1.1 no such user)"

    smtp.handler.refuse["ap@acme.test"] = "451 later"
    assert [d.result for d in send(db, smtp, limit=1, max_attempts=2).deliveries] == ["retry"]
    due_now(db)
    assert [d.result for d in send(db, smtp, limit=1, max_attempts=2).deliveries] == ["failed"]
    assert [(n["state"], n["attempts"]) for n in outbox(db)[:2]] == [("failed", 1), ("failed", 2)]
    assert [n["state"] for n in list_notifications(db, state="failed")] == ["failed", "failed"]
    assert len(list_notifications(db, state="pending")) == 3


def test_an_unreachable_server_stops_the_run_and_leaves_every_row_as_it_was(db: Database) -> None:
    from tests.mail.conftest import SmtpHandler, free_port

    fill_outbox(db)
    nowhere = SmtpServer(SmtpHandler(), free_port())
    report = send(db, nowhere)

    assert report.stopped.startswith(f"cannot reach smtp://127.0.0.1:{nowhere.port}")
    assert [d.result for d in report.deliveries] == ["not tried"] * 5
    rows = outbox(db)
    assert [(n["state"], n["attempts"], n["next_attempt_at"]) for n in rows] == [
        ("pending", 0, None)
    ] * 5


def test_login_and_starttls_are_used_and_a_wrong_password_sends_nothing(
    db: Database, smtp_tls: SmtpServer
) -> None:
    fill_outbox(db)
    refused = send(db, smtp_tls, url=smtp_tls.url(login=True, tls=True, password="wrong"))
    assert "refused the login: 535" in refused.stopped
    assert "wrong" not in refused.stopped and "***" in refused.stopped
    assert smtp_tls.handler.received == []

    report = send(db, smtp_tls, url=smtp_tls.url(login=True, tls=True))
    assert [d.result for d in report.deliveries] == ["sent"] * 5
    assert len(smtp_tls.handler.received) == 5


def test_a_server_without_starttls_is_not_sent_a_password_in_clear(
    db: Database, smtp: SmtpServer
) -> None:
    fill_outbox(db)
    url = f"smtp://mailer:pw@127.0.0.1:{smtp.port}"
    report = send(db, smtp, url=url)
    assert "does not offer STARTTLS" in report.stopped
    assert smtp.handler.received == []


def test_a_dry_run_renders_every_message_and_sends_and_writes_nothing(
    db: Database, smtp: SmtpServer
) -> None:
    fill_outbox(db)
    before = table_snapshot(db)
    mailer = notify.RecordingMailer()
    report = notify.send_notifications(
        db,
        mailer,
        invocation=invocation(dry_run=True),
        mail_from=FROM,
        max_attempts=8,
        max_failed_attempts=3,
    )
    assert [d.result for d in report.deliveries] == ["would send"] * 5
    assert mailer.messages[2]["Subject"] == "Payment failed: 20.00 USD (attempt 2 of 3)"
    assert table_snapshot(db) == before
    assert smtp.handler.received == []


def test_backoff_doubles_from_five_minutes_up_to_six_hours() -> None:
    assert [notify.backoff(n).total_seconds() / 60 for n in (1, 2, 3, 7, 8)] == [
        5, 10, 20, 320, 360,
    ]  # fmt: skip
