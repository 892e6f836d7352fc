"""Issue 19, point 3: operators see and control what goes out (show, withdraw, send --dry-run,
templates from BILLING_MAIL_TEMPLATES, a broken template refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.factories import table_snapshot
from tests.mail.conftest import SmtpServer
from tests.mail.story import FROM, Tenant
from tests.services.webhooks.conftest import add_plans


@pytest.fixture
def billing() -> Billing:
    return Billing()


@pytest.fixture
def mail_env(monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer) -> SmtpServer:
    monkeypatch.setenv("BILLING_SMTP_URL", smtp.url())
    monkeypatch.setenv("BILLING_MAIL_FROM", FROM)
    return smtp


def failed_once(db: Database) -> int:
    add_plans(db)
    Tenant(db, "acme").fail(1)
    return 1


def test_show_prints_the_exact_message(
    billing: Billing, db_env: Database, mail_env: SmtpServer
) -> None:
    notice = failed_once(db_env)
    shown = billing("notifications", "show", str(notice))
    assert shown.exit_code == 0, shown.stderr
    assert "To: Acme <ap@acme.test>" in shown.stdout
    assert "Subject: Payment failed: 19.00 USD (attempt 1 of 3)" in shown.stdout
    assert "We could not collect 19.00 USD for your subscription (attempt 1 of 3)." in shown.stdout
    data = billing.json("notifications", "show", str(notice))
    assert (data["to"], data["subject"], data["verdict"]) == (
        "Acme <ap@acme.test>",
        "Payment failed: 19.00 USD (attempt 1 of 3)",
        "will send",
    )
    billing("notifications", "send")
    assert mail_env.handler.received[0]["Subject"] == data["subject"]
    mailed = mail_env.handler.received[0].get_body(("plain",))
    assert mailed is not None and mailed.get_content().replace("\r\n", "\n") == data["body"]
    missing = billing("notifications", "show", "99")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: no notification 99")


def test_withdraw_is_audited_and_the_notice_is_never_sent(
    billing: Billing, db_env: Database, mail_env: SmtpServer
) -> None:
    notice = failed_once(db_env)
    before = table_snapshot(db_env)
    dry = billing("notifications", "withdraw", str(notice), "--reason", "sent by hand", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would withdraw payment_failed notification 1 for acme: sent by hand" in dry.stdout
    assert table_snapshot(db_env) == before
    real = billing("notifications", "withdraw", str(notice), "--reason", "sent by hand")
    assert real.exit_code == 0, real.stderr
    row = billing.json("notifications", "list")[0]
    assert (row["state"], row["verdict"]) == ("withdrawn", "withdrawn: sent by hand")
    audit = billing.json("audit", "list", "--limit", "1")[0]
    assert (audit["command"], audit["target"]) == (
        "notifications withdraw",
        f"notification:{notice}",
    )
    assert audit["outcome"] == "withdrew payment_failed: sent by hand"
    assert billing("notifications", "send").exit_code == 0
    assert mail_env.handler.received == []
    again = billing("notifications", "withdraw", str(notice), "--reason", "x")
    assert again.exit_code == 1
    assert again.stderr.startswith(f"Error: notification {notice} is already withdrawn")


def test_withdraw_needs_a_plain_reason(billing: Billing, db_env: Database) -> None:
    notice = failed_once(db_env)
    before = table_snapshot(db_env)
    bad = billing("notifications", "withdraw", str(notice), "--reason", "a\nb")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("Error: --reason must not contain control characters")
    assert table_snapshot(db_env) == before


def test_send_dry_run_renders_each_message(
    billing: Billing, db_env: Database, mail_env: SmtpServer
) -> None:
    failed_once(db_env)
    before = table_snapshot(db_env)
    result = billing("notifications", "send", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "--- notification 1" in result.stdout
    assert "Subject: Payment failed: 19.00 USD (attempt 1 of 3)" in result.stdout
    assert "We could not collect 19.00 USD" in result.stdout
    as_json = json.loads(billing("notifications", "send", "--dry-run", "--json").stdout)
    assert "We could not collect 19.00 USD" in as_json["deliveries"][0]["body"]
    assert table_snapshot(db_env) == before
    assert mail_env.handler.received == []


def test_a_template_directory_overrides_the_wording(
    billing: Billing,
    db_env: Database,
    mail_env: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failed_once(db_env)
    (tmp_path / "payment_failed.txt").write_text(
        "Subject: {{ tenant_name }}: we could not collect {{ amount }}\n"
        "Dear {{ tenant_name }}, attempt {{ attempt }} of {{ max_attempts }}.\n"
    )
    monkeypatch.setenv("BILLING_MAIL_TEMPLATES", str(tmp_path))
    assert billing("notifications", "send").exit_code == 0
    [message] = mail_env.handler.received
    assert message["Subject"] == "Acme: we could not collect 19.00 USD"
    part = message.get_body(("plain",))
    assert part is not None and "Dear Acme, attempt 1 of 3." in part.get_content()


@pytest.mark.parametrize(
    ("text", "line", "error"),
    [
        ("Subject: x\nHello\n{% if attempt %}\n", 3, "Unexpected end of template"),
        ("Subject: x\n\nDear {{ tenant_nmae }}\n", 3, "'tenant_nmae' is undefined"),
        ("Subject: x\n{{ amount.__class__.__mro__ }}\n", 2, "unsafe"),
    ],
)
def test_a_broken_template_is_refused_with_its_file_and_line_and_nothing_is_sent(
    billing: Billing,
    db_env: Database,
    mail_env: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    line: int,
    error: str,
) -> None:
    failed_once(db_env)
    template = tmp_path / "payment_failed.txt"
    template.write_text(text)
    monkeypatch.setenv("BILLING_MAIL_TEMPLATES", str(tmp_path))
    before = table_snapshot(db_env)
    result = billing("notifications", "send")
    assert result.exit_code == 1
    [only] = result.stderr.splitlines()
    assert only.startswith(f"Error: mail template {template} line {line}: ")
    assert error in only
    assert "Traceback" not in result.stderr
    assert mail_env.handler.received == []
    assert table_snapshot(db_env) == before


def test_suspend_keeps_the_reason_internal_and_sends_the_customer_message(
    billing: Billing, db_env: Database, mail_env: SmtpServer
) -> None:
    help_text = " ".join(billing("tenants", "suspend", "--help").stdout.split())
    assert "internal: kept in the audit trail, never sent to the customer" in help_text
    add_plans(db_env)
    Tenant(db_env, "acme")
    bad = billing("tenants", "suspend", "acme", "--reason", "x", "--customer-message", "a\x1b[2Jb")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("Error: --customer-message must not contain control characters")
    done = billing(
        "tenants",
        "suspend",
        "acme",
        "--reason",
        "chargeback under review",
        "--customer-message",
        "A payment on your account is disputed.",
    )
    assert done.exit_code == 0, done.stderr
    assert billing("notifications", "send").exit_code == 0
    [message] = mail_env.handler.received
    text = message.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "suspended by our team: A payment on your account is disputed." in content
    assert "chargeback" not in content
