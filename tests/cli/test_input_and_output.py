"""Hostile input at the command line, and output people read at real terminal widths."""

from __future__ import annotations

import re

import pytest

from billing_cli.cli import render
from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.factories import row_counts

# -- input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "email"),
    [("acme\n", "a@acme.test"), ("acme", "a@acme.test\n"), ("acme", "a@acme.test\nBcc: x@y.z")],
)
def test_a_trailing_newline_is_not_a_valid_slug_or_email(
    billing: Billing, db_env: Database, slug: str, email: str
) -> None:
    billing("tenants", "add", "acme", "--name", "Acme", "--email", "ops@acme.test")
    result = billing("tenants", "add", slug, "--name", "Acme 2", "--email", email)
    assert result.exit_code == 2, result.stdout
    assert row_counts(db_env)["tenant"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("tenants", "add", "acme", "--name", "N" * 10_000, "--email", "a@acme.test"),
            "--name is 10,000 characters long; the limit is 200",
        ),
        (
            ("tenants", "add", "acme", "--name", "Acme", "--email", "a" * 400 + "@acme.test"),
            "--email is 410 characters long; the limit is 320",
        ),
        (
            ("tenants", "suspend", "acme", "--reason", "r" * 10_000),
            "--reason is 10,000 characters long; the limit is 500",
        ),
        (
            ("--operator", "o" * 300, "tenants", "suspend", "acme", "--reason", "r"),
            "--operator is 300 characters long; the limit is 200",
        ),
        (
            ("tenants", "add", "acme", "--name", "Acme\x1b[2J", "--email", "a@acme.test"),
            "--name must not contain control characters or line breaks",
        ),
    ],
)
def test_long_values_are_usage_errors_naming_the_limit(
    billing: Billing, db_env: Database, args: tuple[str, ...], message: str
) -> None:
    if args[1] == "suspend" or args[0] == "--operator":
        billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    result = billing(*args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr == f"Error: {message}\n"


def test_a_non_numeric_port_in_the_database_url_is_one_line(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", "postgresql+psycopg://app:hunter2@db:abc/billing")
    result = billing("tenants", "list")
    assert result.exit_code == 1
    assert "port 'abc'" in result.stderr and "unexpected" not in result.stderr
    assert "hunter2" not in result.stderr


def test_a_password_in_the_query_is_masked_in_config_and_in_errors(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg://app@127.0.0.1:9/billing?password=hunter2&connect_timeout=1"
    monkeypatch.setenv("BILLING_DATABASE_URL", url)
    shown = billing("config")
    assert "password=***" in shown.stdout
    failed = billing("tenants", "list")
    assert failed.exit_code == 1
    assert "password=***" in failed.stderr
    assert "hunter2" not in shown.stdout + shown.stderr + failed.stdout + failed.stderr


# -- config ----------------------------------------------------------------------------------


def test_config_shows_what_the_tool_uses(billing: Billing, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass
    from pathlib import Path

    shown = billing.json("config")
    assert shown["operator"] == getpass.getuser()  # what the audit trail records
    assert shown["operator_from"] == "the OS user"
    assert shown["database_url"] == f"sqlite:///{Path('billing.db').absolute()}"
    assert shown["env_file"].startswith("none")
    Path(".env").write_text("BILLING_OPERATOR=ops-bot\n")
    again = billing.json("--operator", "alice", "config")
    assert (again["operator"], again["operator_from"]) == ("alice", "--operator")
    assert again["env_file"] == str(Path(".env").absolute())


def test_config_with_a_live_key_outside_live_mode_exits_1(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_0123456789abcdefWXYZ")
    result = billing("config")
    assert result.exit_code == 1
    assert "test, but the key is a live key" in result.stdout
    assert result.stderr.startswith("Error: refusing a live Stripe key")


def test_no_database_names_its_absolute_path(billing: Billing) -> None:
    from pathlib import Path

    result = billing("tenants", "list")
    assert result.exit_code == 1
    assert f"no database at sqlite:///{Path('billing.db').absolute()};" in result.stderr


# -- error wording ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("subs", "upgrade", "acme", "--plan", "pro", "--proration", "bogus"),
            "--proration must be one of create_prorations, none, always_invoice, not 'bogus'",
        ),
        (("tenants", "list", "--status", "gone"), "--status must be one of active, suspended"),
        (
            (
                "plans",
                "add",
                "p",
                "--name",
                "P",
                "--amount",
                "1",
                "--currency",
                "usd",
                "--interval",
                "week",
            ),
            "--interval must be one of month, year, not 'week'",
        ),
        (("audit", "list", "--limit", "abc"), "--limit: not a whole number"),
        (("tenant", "list"), "no command 'tenant'; did you mean 'tenants'?"),
        (("subscriptions", "list"), "no command 'subscriptions'; did you mean 'subs'?"),
    ],
)
def test_usage_errors_are_one_plain_line(
    billing: Billing, args: tuple[str, ...], line: str
) -> None:
    result = billing(*args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert line in result.stderr
    assert "Value error" not in result.stderr and "Input should" not in result.stderr


def test_version(billing: Billing) -> None:
    result = billing("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"billing \S+.*\n", result.stdout)


def test_filters_that_name_nothing_say_so(billing: Billing, db_env: Database) -> None:
    audit = billing("audit", "list", "--tenant", "nosuch")
    assert audit.exit_code == 1
    assert "no tenant 'nosuch'" in audit.stderr
    kinds = billing("notifications", "list", "--kind", "bogus")
    assert kinds.exit_code == 2
    assert "no notification kind 'bogus'; the kinds are trial_will_end" in kinds.stderr


def test_a_removed_tenants_audit_entries_are_still_listed(
    billing: Billing, db_env: Database
) -> None:
    from sqlalchemy import text

    billing("tenants", "add", "gone", "--name", "Gone", "--email", "g@gone.test")
    with db_env.connect() as connection:  # what `tenants remove` leaves: the audit entries
        connection.execute(text("DELETE FROM tenant WHERE slug = 'gone'"))
        connection.commit()
    assert [e["target"] for e in billing.json("audit", "list", "--tenant", "gone")] == [
        "tenant:gone"
    ]


# -- output ----------------------------------------------------------------------------------


def _at_width(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    render.reset_consoles()


def test_control_characters_never_reach_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    hostile = "Acme\x1b[31m red\x1b]0;title\x07 \x9b1m\u202eInc\nnext\x00"
    render.table("Tenants", ("slug", "name"), [("acme", hostile)])
    render.key_values("Tenant", {"name": hostile, "payload": {"name": "\x1b[2J"}})
    printed = capsys.readouterr().out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", printed)
    assert "Acme red 1mInc next" in printed


def test_names_from_stripe_are_printed_without_escape_sequences(
    billing: Billing, db_env: Database
) -> None:
    from billing_cli.services.webhooks import WebhookEngine
    from tests import events
    from tests.services.webhooks.conftest import link_customer

    billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    link_customer(db_env, "acme", "cus_acme", None)
    WebhookEngine(db_env, live_mode=False, max_failed_attempts=3).process(
        events.customer_event(
            "customer.updated", customer_id="cus_acme", name="Evil\x1b[8mhidden\x1b[0m Co"
        ),
        source="endpoint",
    )
    listed = billing("tenants", "list")
    assert "\x1b" not in listed.stdout
    assert "Evilhidden Co" in listed.stdout


def _audit_rows(db: Database, count: int) -> None:
    from billing_cli.services.tenants import rules as tenants
    from tests.factories import add_tenant, invocation

    add_tenant(db, "acme")
    for number in range(count):
        tenants.suspend_tenant(
            db,
            invocation=invocation(),
            slug="acme",
            reason=f"sub_1QxYzAbCdEfGhIjKlMnOpQr{number}",
        )
        tenants.reactivate_tenant(db, invocation=invocation(), slug="acme")


def test_ids_are_never_broken_at_100_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at_width(monkeypatch, 100)
    ids = ("sub_1QxYzAbCdEfGhIjKlMnOpQrSt", "cus_Q1w2E3r4T5y6U7i8O9p0", "evt_1PzZ9yX8wV7uT6sR5qP4")
    render.table(
        "Subscriptions",
        ("tenant", "plan", "status", "period end", "subscription", "customer", "last event"),
        [("acme-industries", "pro", "past_due", "2026-12-31T00:00:00Z", *ids)],
    )
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 100
    for whole in (*ids, "2026-12-31T00:00:00Z", "acme-industries"):
        assert whole in printed, printed


def test_epoch_seconds_and_minor_units_are_shown_for_people(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render.key_values("Subscription", {"status": "active", "last_event_created": 1_796_130_999})
    render.key_values(
        "Plan", {"slug": "pro", "amount": 1250, "currency": "usd", "price": "12.50 USD"}
    )
    render.key_values("Charge", {"amount": 500, "currency": "jpy"})
    printed = capsys.readouterr().out
    assert "1796130999" not in printed and "2026-12-01T13:16:39Z" in printed
    assert "1250" not in printed and "12.50 USD" in printed
    assert "500 JPY" in printed


def test_a_narrow_terminal_gets_one_block_per_row(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _audit_rows(db_env, 2)
    _at_width(monkeypatch, 60)
    result = billing("audit", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60
    # Every field on its own line, whole: no "one word per line" columns.
    assert sum(1 for line in lines if line.startswith("command ")) == 5
    assert any(re.fullmatch(r"at\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line) for line in lines)


def test_text_that_looks_like_markup_is_printed_as_typed(
    billing: Billing, db_env: Database
) -> None:
    billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    result = billing("tenants", "suspend", "acme", "--reason", "[/bold] unpaid [red]x")
    assert result.exit_code == 0, result.stderr
    assert "suspended tenant acme: [/bold] unpaid [red]x" in result.stdout


def test_a_huge_value_is_not_echoed_whole_in_the_error(billing: Billing, db_env: Database) -> None:
    for args in (
        ("tenants", "add", "a" * 10_000, "--name", "A", "--email", "a@acme.test"),
        ("tenants", "show", "a" * 10_000),
    ):
        result = billing(*args)
        assert result.exit_code in (1, 2)
        assert len(result.stderr) < 300 and "(10,000 characters)" in result.stderr
