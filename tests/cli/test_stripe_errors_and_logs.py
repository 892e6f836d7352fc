"""Issue 18, points 9 and 10: every Stripe error counts for ``billing check``, reads too; every
Stripe write is logged with its intent and tenant, and an ``incomplete`` answer is not ``ok``;
and (point 5) ``doctor --tenant`` names a failed signup's open invoice with the fixing command.

Real CLI runs against the sandbox, with faults injected at the HTTP layer (tests/faults.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.cli.test_interrupted_writes import stripe_errors
from tests.cli.test_reconcile_cli import failed_signup
from tests.factories import add_synced_plan, add_tenant
from tests.faults import Fault, FaultProxy

pytestmark = pytest.mark.sandbox


@pytest.fixture
def subscribed(billing: Billing, db_env: Database, gateway: Gateway) -> Database:
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    add_tenant(db_env, "acme")
    created = billing(
        "subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa"
    )
    assert created.exit_code == 0, created.stderr
    return db_env


def test_a_revoked_key_seen_only_by_reads_fires_billing_check(
    billing: Billing, subscribed: Database, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_ALERT_STRIPE_ERRORS", "1")
    proxy.arm(Fault("status", "before", "GET", "/v1/", status=401, times=1_000))

    shown = billing("subs", "show", "acme")
    assert shown.exit_code == 1 and "did not accept the API key" in shown.stderr
    assert billing("reconcile").exit_code == 1

    assert stripe_errors(subscribed) == {"subscriptions.retrieve", "customers.list"}
    check = billing("check", "--json")
    assert check.exit_code == 3  # an alert fired
    rules = {rule["rule"]: rule for rule in json.loads(check.stdout)["rules"]}
    assert rules["stripe_errors"]["fired"] and rules["stripe_errors"]["figure"] == 2


def test_an_outage_seen_by_a_dry_run_read_counts_but_a_decline_does_not(
    billing: Billing, subscribed: Database, proxy: FaultProxy
) -> None:
    proxy.arm(Fault("status", "before", "GET", "/v1/subscriptions", status=503, times=10))
    assert billing("subs", "cancel", "acme", "--dry-run").exit_code == 1
    assert stripe_errors(subscribed) == {"subscriptions.retrieve"}
    proxy.clear()

    add_tenant(subscribed, "globex")
    declined = billing(
        "subs", "create", "globex", "--plan", "starter", "--payment-method",
        "pm_card_chargeDeclined",
    )  # fmt: skip
    assert declined.exit_code == 1 and "card declined" in declined.stderr
    assert stripe_errors(subscribed) == {"subscriptions.retrieve"}


def test_every_write_is_logged_with_intent_and_tenant_and_incomplete_is_not_ok(
    billing: Billing, db_env: Database, gateway: Gateway, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    add_tenant(db_env, "acme")
    log_file = tmp_path / "billing.log"
    monkeypatch.setenv("BILLING_LOG_FILE", str(log_file))
    result = billing(
        "-v", "subs", "create", "acme", "--plan", "starter", "--payment-method",
        "pm_card_chargeCustomerFail",
    )  # fmt: skip
    assert result.exit_code == 1

    create = re.compile(
        r"INFO billing\.stripe stripe subscriptions\.create customer=cus_\w+ price=price_\w+ "
        r"intent=\S+ tenant=acme -> incomplete sub_\w+ \(\d+ ms\)"
    )
    logged = log_file.read_text()
    assert create.search(logged), logged
    assert create.search(result.stderr), result.stderr  # -v: the same lines on stderr
    writes = [line for line in logged.splitlines() if " stripe " in line and ".create " in line]
    assert writes and all(" tenant=acme " in line and " intent=" in line for line in writes)
    assert not [line for line in writes if "subscriptions.create" in line and "-> ok" in line]
    assert "sk_test" not in logged and "billing:" not in logged


def test_doctor_names_the_open_invoice_of_a_signup_whose_first_payment_failed(
    billing: Billing, db_env: Database, gateway: Gateway
) -> None:
    """Issue 18, point 5, end to end: the never-paid tenant's open invoice, and the command
    that fixes a declined card (built in branch card: `payments recover`)."""
    failed_signup(billing, db_env, gateway)
    result = billing("doctor", "--tenant", "acme", "--json")
    checks = {check["check"]: check for check in json.loads(result.stdout)["checks"]}
    customer_id = checks["tenant customer"]["detail"].removeprefix("linked to ")
    (invoice,) = gateway.list_invoices(customer_id=customer_id, status="open")
    check = checks["tenant open invoice"]
    assert check["status"] == "fail" and result.exit_code == 1
    assert check["detail"].startswith(f"{invoice.id} is open: 10.00 USD due")
    assert check["fix"] == "billing payments recover acme --payment-method pm_..."
