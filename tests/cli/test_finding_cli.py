"""Finding things fast (issue 18.7) and data on stdout (18.8), through the real CLI.

A mistyped slug gets the nearest slugs; the webhook ledger narrows to a tenant or a customer;
the audit trail narrows to an operator or an action; a tenant's default card is data, so it
goes to stdout. On SQLite and PostgreSQL (the ledger filter reads JSON paths in SQL).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from stripe_sandbox import Sandbox
from tests import events as ev
from tests.factories import add_synced_plan, add_tenant
from tests.services.webhooks.conftest import PRICE_BASIC, add_plans, link_customer

from .conftest import Billing

T0 = 1_767_225_600


def test_an_unknown_slug_suggests_the_nearest(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_never_called")  # the tenant is read first
    for slug in ("acme", "acme-eu", "globex"):
        add_tenant(db_env, slug)
    shown = billing("tenants", "show", "acm")
    assert shown.exit_code == 1  # NotFound's code, as every other "no such thing" today
    assert shown.stderr == "Error: no tenant 'acm'; did you mean acme or acme-eu?\n"
    assert shown.stdout == ""
    subs = billing("subs", "show", "globx")
    assert (subs.exit_code, subs.stderr) == (1, "Error: no tenant 'globx'; did you mean globex?\n")
    far = billing("tenants", "show", "zzz")
    assert far.stderr == "Error: no tenant 'zzz'; `billing tenants list` shows the tenants\n"


@pytest.fixture
def ledger(db_env: Database, tmp_path: Path, billing: Billing) -> Database:
    """acme (cus_acme) and beta (cus_beta) each with events in the ledger."""
    add_plans(db_env)
    for slug in ("acme", "beta"):
        add_tenant(db_env, slug)
        link_customer(db_env, slug, f"cus_{slug}", f"sub_{slug}")
    events = [
        ev.subscription_event(
            "customer.subscription.created",
            created=T0 + n,
            status="active",
            price_id=PRICE_BASIC,
            subscription_id=f"sub_{slug}",
            customer_id=f"cus_{slug}",
        )
        for n, slug in enumerate(("acme", "beta"))
    ]
    events.append(ev.customer_event("customer.updated", created=T0 + 5, customer_id="cus_acme"))
    events.append(ev.event("price.created", {"id": "price_x", "object": "price"}, created=T0 + 6))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert billing("webhooks", "replay", "--from-file", str(path)).exit_code == 0
    return db_env


def test_webhooks_list_by_tenant_or_customer(billing: Billing, ledger: Database) -> None:
    assert len(billing.json("webhooks", "list")) == 4
    acme = billing.json("webhooks", "list", "--tenant", "acme")
    assert [e["type"] for e in acme] == ["customer.updated", "customer.subscription.created"]
    beta = billing.json("webhooks", "list", "--customer", "cus_beta")
    assert [e["type"] for e in beta] == ["customer.subscription.created"]
    assert billing.json("webhooks", "list", "--customer", "cus_nobody") == []
    table = billing("webhooks", "list", "--tenant", "beta")
    assert table.exit_code == 0 and "customer.updated" not in table.stdout
    bad = billing("webhooks", "list", "--customer", "acme")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: --customer must be")
    both = billing("webhooks", "list", "--customer", "cus_acme", "--tenant", "acme")
    assert both.exit_code == 2 and "not both" in both.stderr
    assert billing("webhooks", "list", "--tenant", "acm").exit_code == 1


def test_audit_list_by_operator_and_action(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_tenant(db_env, "acme")
    monkeypatch.setenv("BILLING_OPERATOR", "alice")
    assert billing("tenants", "suspend", "acme", "--reason", "fraud check").exit_code == 0
    monkeypatch.setenv("BILLING_OPERATOR", "bob")
    assert billing("tenants", "reactivate", "acme").exit_code == 0
    by_alice = billing.json("audit", "list", "--operator", "alice")
    assert [(e["operator"], e["command"]) for e in by_alice] == [("alice", "tenants suspend")]
    verb = billing.json("audit", "list", "--action", "reactivate")
    assert [e["command"] for e in verb] == ["tenants reactivate"]
    whole = billing.json("audit", "list", "--action", "tenants suspend", "--operator", "alice")
    assert len(whole) == 1
    assert billing.json("audit", "list", "--action", "suspend", "--operator", "bob") == []
    assert billing.json("audit", "list", "--action", "%") == []  # a wildcard is a character
    assert billing("audit", "list", "--operator", " ").exit_code == 2


@pytest.mark.sandbox
def test_tenants_show_prints_the_default_card_on_stdout(
    billing: Billing, db_env: Database, sandbox: Sandbox, gateway: Gateway
) -> None:
    add_tenant(db_env, "acme")
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    subscribe = ("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    assert billing(*subscribe).exit_code == 0
    shown = billing("tenants", "show", "acme")
    assert shown.exit_code == 0, shown.stderr
    card_lines = [line for line in shown.stdout.splitlines() if "card" in line]
    assert card_lines and "ending 4242" in card_lines[0]
    assert "card" not in shown.stderr
