"""``billing notifications send`` and ``list`` as an operator (or cron) runs them."""

from __future__ import annotations

import json

import pytest

from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.factories import table_snapshot
from tests.mail.conftest import SmtpServer
from tests.mail.test_send import FROM, fill_outbox


@pytest.fixture
def billing() -> Billing:
    return Billing()


@pytest.fixture
def mail_env(monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer) -> SmtpServer:
    monkeypatch.setenv("BILLING_SMTP_URL", smtp.url(login=True))
    monkeypatch.setenv("BILLING_MAIL_FROM", FROM)
    return smtp


def test_send_delivers_the_outbox_and_list_shows_it_sent(
    billing: Billing, db_env: Database, mail_env: SmtpServer
) -> None:
    fill_outbox(db_env)
    preview = billing("notifications", "send", "--dry-run", "--json")
    assert preview.exit_code == 0, preview.stderr
    assert {d["result"] for d in json.loads(preview.stdout)["deliveries"]} == {"would send"}
    assert mail_env.handler.received == []

    result = billing("notifications", "send", "--limit", "2", "--json")
    assert result.exit_code == 0, result.stderr
    sent = json.loads(result.stdout)["deliveries"]
    assert [(d["kind"], d["result"]) for d in sent] == [
        ("trial_will_end", "sent"),
        ("upcoming_invoice", "sent"),
    ]
    assert [m["Message-ID"] for m in mail_env.handler.received] == [d["message_id"] for d in sent]

    assert [n["kind"] for n in billing.json("notifications", "list", "--state", "sent")] == [
        "upcoming_invoice",
        "trial_will_end",
    ]
    assert len(billing.json("notifications", "list", "--state", "pending")) == 3
    human = billing("notifications", "list")
    assert "pending" in human.stdout and "sent" in human.stdout
    audit = billing.json("audit", "list", "--limit", "2")
    assert [a["command"] for a in audit] == ["notifications send"] * 2
    assert audit[0]["outcome"] == "sent upcoming_invoice to ap@acme.test"


def test_a_refused_message_makes_send_exit_1_and_stays_pending(
    billing: Billing, db_env: Database, mail_env: SmtpServer
) -> None:
    fill_outbox(db_env)
    mail_env.handler.refuse["ap@acme.test"] = "452 4.2.2 mailbox full"
    result = billing("notifications", "send", "--limit", "1")
    assert result.exit_code == 1
    assert "retry" in result.stdout
    assert result.stderr.splitlines()[-1] == (
        "Error: 1 of 1 notification(s) not sent; pending ones are retried by a later run"
    )
    pending = billing.json("notifications", "list", "--state", "pending")
    oldest = pending[-1]
    assert (oldest["attempts"], oldest["last_error"]) == (
        1,
        "recipient refused (452 4.2.2 mailbox full)",
    )


def test_send_without_smtp_settings_is_one_line_and_writes_nothing(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_outbox(db_env)
    before = table_snapshot(db_env)
    monkeypatch.setenv("BILLING_MAIL_FROM", FROM)
    result = billing("notifications", "send")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: BILLING_SMTP_URL is not set;")
    assert table_snapshot(db_env) == before
    monkeypatch.setenv("BILLING_SMTP_URL", "smtp://mailer:hunter2-secret@mail.test:587")
    shown = billing("config", "--json")
    assert "hunter2" not in shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["smtp_url"] == "smtp://mailer:***@mail.test:587"
