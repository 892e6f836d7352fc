"""``billing subs`` and ``billing payments`` through the real CLI, against the sandbox."""

from __future__ import annotations

import json
import re

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, table_snapshot

pytestmark = pytest.mark.sandbox


@pytest.fixture
def ready(db_env: Database, gateway: Gateway) -> Database:
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    add_synced_plan(db_env, gateway, "pro", amount=3000)
    add_tenant(db_env, "acme")
    return db_env


def test_subscription_lifecycle(billing: Billing, ready: Database) -> None:
    created = billing.json(
        "subs",
        "create",
        "acme",
        "--plan",
        "starter",
        "--payment-method",
        "pm_card_visa",
        "--trial-days",
        "14",
    )
    assert created["after"]["status"] == "trialing"
    listed = billing.json("subs", "list")
    assert [(r["tenant"], r["plan"], r["status"]) for r in listed] == [
        ("acme", "starter", "trialing")
    ]
    upgraded = billing.json("subs", "upgrade", "acme", "--plan", "pro", "--proration", "none")
    assert upgraded["after"]["plan"] == "pro" and upgraded["proration_preview"] is None
    assert billing.json("subs", "cancel", "acme")["after"]["cancel_at_period_end"] is True
    assert billing.json("subs", "resume", "acme")["after"]["cancel_at_period_end"] is False
    shown = billing.json("subs", "show", "acme")
    assert shown["differences"] == []
    people = billing("subs", "show", "acme")
    assert "local row and Stripe agree" in people.stderr


def test_dry_runs_send_no_stripe_write(
    billing: Billing, ready: Database, stripe_requests: StripeRequests
) -> None:
    billing("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    before = table_snapshot(ready)
    stripe_requests.sent.clear()
    for args in (
        ("subs", "upgrade", "acme", "--plan", "pro"),
        ("subs", "cancel", "acme", "--now"),
        (
            "payments",
            "charge",
            "acme",
            "--amount",
            "9.99",
            "--currency",
            "usd",
            "--description",
            "x",
        ),
        ("payments", "methods", "attach", "acme", "pm_card_mastercard", "--default"),
        ("tenants", "remove", "acme"),
    ):
        result = billing(*args, "--dry-run")
        assert result.exit_code == 0, (args, result.stderr)
        assert result.stdout.startswith("[dry run] would "), result.stdout
        assert "would send Stripe" in result.stdout
    writes = [p for p in stripe_requests.posts if p != "/v1/invoices/create_preview"]
    assert writes == []
    assert [m for m, _ in stripe_requests.sent if m == "DELETE"] == []
    assert table_snapshot(ready) == before


def test_upgrade_dry_run_prints_the_proration(billing: Billing, ready: Database) -> None:
    billing("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    result = billing(
        "subs", "upgrade", "acme", "--plan", "pro", "--dry-run", "--proration", "always_invoice"
    )
    assert result.exit_code == 0, result.stderr
    assert "Proration preview (from Stripe)" in result.stdout
    assert "proration: " in result.stdout
    payload = billing.json(
        "subs", "upgrade", "acme", "--plan", "pro", "--dry-run", "--proration", "always_invoice"
    )
    assert payload["proration_preview"]["proration_amount"] > 0


def test_errors_are_one_line(billing: Billing, ready: Database) -> None:
    cases = [
        (("subs", "create", "acme", "--plan", "gold"), 1, "Error: no plan 'gold'"),
        (("subs", "create", "ghost", "--plan", "starter"), 1, "Error: no tenant 'ghost'"),
        (
            ("subs", "create", "acme", "--plan", "starter", "--payment-method", "4242"),
            2,
            "Error: --payment-method must be a payment method id",
        ),
        (("subs", "cancel", "acme"), 1, "Error: tenant acme has no subscription"),
        (("subs", "upgrade", "acme", "--plan", "pro", "--proration", "sometimes"), 2, ""),
        (
            (
                "payments",
                "charge",
                "acme",
                "--amount",
                "1.001",
                "--currency",
                "usd",
                "--description",
                "x",
            ),
            2,
            "Error: USD takes at most 2 decimals",
        ),
    ]
    for args, code, message in cases:
        result = billing(*args)
        assert result.exit_code == code, (args, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith(message), (args, result.stderr)
        if code == 1:
            assert len(result.stderr.splitlines()) == 1


def test_declined_charge_exit_1(billing: Billing, ready: Database) -> None:
    attached = billing(
        "payments", "methods", "attach", "acme", "pm_card_chargeCustomerFail", "--default"
    )
    assert attached.exit_code == 0, attached.stderr
    result = billing(
        "payments",
        "charge",
        "acme",
        "--amount",
        "5",
        "--currency",
        "usd",
        "--description",
        "setup fee",
    )
    assert result.exit_code == 1
    assert result.stderr == "Error: card declined: generic_decline: Your card was declined.\n"


def test_stripe_commands_need_a_key(billing: Billing, ready: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    result = billing("subs", "create", "acme", "--plan", "starter")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: STRIPE_SECRET_KEY is not set")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_51SomethingSecret0000abcd")
    refused = billing("subs", "create", "acme", "--plan", "starter")
    assert refused.exit_code == 1
    assert "STRIPE_LIVE_MODE" in refused.stderr
    assert "SomethingSecret" not in refused.stderr
    assert billing("tenants", "list").exit_code == 0  # commands without Stripe still work


def test_json_is_pure(billing: Billing, ready: Database) -> None:
    result = billing(
        "subs",
        "create",
        "acme",
        "--plan",
        "starter",
        "--payment-method",
        "pm_card_visa",
        "--json",
        "--dry-run",
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["dry_run"] is True


def test_stripe_calls_are_logged_without_keys(
    billing: Billing,
    ready: Database,
    monkeypatch,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    log_file = tmp_path / "stripe.log"
    monkeypatch.setenv("BILLING_LOG_FILE", str(log_file))
    result = billing(
        "--verbose",
        "subs",
        "create",
        "acme",
        "--plan",
        "starter",
        "--payment-method",
        "pm_card_visa",
    )
    assert result.exit_code == 0, result.stderr
    # a journal write names its intent and tenant (issue 18, point 10)
    assert re.search(r"stripe customers\.create intent=bi_\w+ tenant=acme -> ok", result.stderr)
    assert "stripe subscriptions.create" in result.stderr
    logged = log_file.read_text()
    assert "stripe subscriptions.create" in logged
    for text in (logged, result.stderr):
        assert "sk_test_sandbox" not in text
        assert "billing:" not in text  # no idempotency key
    quiet = billing("subs", "show", "acme")
    assert "stripe subscriptions.retrieve" not in quiet.stderr  # only with --verbose


def test_a_subscription_on_an_older_price_is_not_a_difference(
    billing: Billing, ready: Database
) -> None:
    billing("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    assert billing("plans", "update", "starter", "--amount", "12.00").exit_code == 0
    assert billing("plans", "sync").exit_code == 0  # a new Price; acme keeps the old one
    shown = billing.json("subs", "show", "acme")
    assert shown["differences"] == []
    assert shown["local"]["plan"] == shown["stripe"]["plan"] == "starter (older price)"
    assert shown["stripe"]["billed"] == "10.00 USD"  # what Stripe bills, not the plan's 12.00
    people = billing("subs", "show", "acme")
    assert "DIFFERS" not in people.stdout
    assert "starter (older price)" in people.stdout and "10.00 USD" in people.stdout


def test_differences_name_the_command_that_reconciles_them(
    billing: Billing, ready: Database, gateway: Gateway
) -> None:
    billing("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    subscription = billing.json("subs", "list")[0]["stripe_subscription_id"]
    gateway.set_cancel_at_period_end(subscription, True, idempotency_key="test:behind-its-back")
    people = billing("subs", "show", "acme")
    assert "cancel_at_period_end" in people.stderr
    assert "`billing subs refresh acme`" in people.stderr
    assert billing("subs", "refresh", "acme").exit_code == 0
    assert "DIFFERS" not in billing("subs", "show", "acme").stdout
