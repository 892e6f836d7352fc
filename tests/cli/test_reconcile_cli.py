"""``billing reconcile`` and ``billing subs refresh`` through the real CLI, against the sandbox."""

from __future__ import annotations

import json

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, table_snapshot

pytestmark = pytest.mark.sandbox


@pytest.fixture
def ready(billing: Billing, db_env: Database, gateway: Gateway) -> dict[str, str]:
    """Two tenants subscribed through the CLI; returns their subscription ids."""
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    subs: dict[str, str] = {}
    for slug in ("acme", "globex"):
        add_tenant(db_env, slug)
        created = billing.json(
            "subs", "create", slug, "--plan", "starter", "--payment-method", "pm_card_visa"
        )
        subs[slug] = created["after"]["stripe_subscription_id"]
    return subs


def orphan(gateway: Gateway, price_id: str) -> str:
    customer = gateway.create_customer(
        email="ghost@example.test",
        name="Ghost",
        metadata={"tenant": "ghost"},
        idempotency_key="test:cli:ghost-customer",
    )
    return gateway.create_subscription(
        customer_id=customer.id,
        price_id=price_id,
        trial_days=30,
        default_payment_method=None,
        metadata={"tenant": "ghost"},
        idempotency_key="test:cli:ghost",
    ).id


def test_no_drift_exits_0_with_health(billing: Billing, ready: dict[str, str]) -> None:
    result = billing("reconcile")
    assert result.exit_code == 0, result.stderr
    assert "no drift: 2 tenant(s) match Stripe" in result.stdout
    assert "by subscription status" in result.stdout and "active 2" in result.stdout
    data = billing.json("reconcile")
    assert data["drift_found"] is False and data["health"]["ledger"] == {
        "failed": 0,
        "deferred": 0,
    }


def test_drift_exits_1_and_fix_heals_it(
    billing: Billing, ready: dict[str, str], gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    gateway.set_cancel_at_period_end(ready["acme"], True, idempotency_key="test:cli:cancel")
    result = billing("reconcile", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)  # --json: JSON only on stdout, even with drift
    assert data["counts"] == {"cancel": 1}
    assert [t["tenant"] for t in data["tenants"]] == ["acme"]
    people = billing("reconcile")
    assert people.exit_code == 1
    assert "cancel_at_period_end no here, yes in Stripe" in people.stdout
    assert "--fix heals" in people.stdout
    stripe_requests.sent.clear()
    fixed = billing("reconcile", "--fix")
    assert fixed.exit_code == 1  # drift was found, even though this run healed it
    assert "healed" in fixed.stdout
    assert stripe_requests.writes == []
    assert billing("reconcile").exit_code == 0
    audit = billing.json("audit", "list", "--tenant", "acme", "--limit", "1")
    assert audit[0]["command"] == "reconcile" and audit[0]["outcome"] == "followed Stripe (cancel)"


def test_dry_run_fix_writes_nothing(
    billing: Billing,
    ready: dict[str, str],
    db_env: Database,
    gateway: Gateway,
    stripe_requests: StripeRequests,
) -> None:
    gateway.set_cancel_at_period_end(ready["acme"], True, idempotency_key="test:cli:cancel")
    orphan(gateway, gateway.retrieve_subscription(ready["acme"]).price_id or "")
    before = table_snapshot(db_env)
    stripe_requests.sent.clear()
    result = billing("reconcile", "--fix", "--cancel-orphans", "--dry-run")
    assert result.exit_code == 1, result.stderr
    assert "would heal" in result.stdout
    assert "would cancel" in result.stdout and "would send Stripe cancel_subscription_now" in (
        result.stdout
    )
    assert stripe_requests.writes == []
    assert table_snapshot(db_env) == before


def test_cancel_orphans_asks_for_a_typed_yes(
    billing: Billing, ready: dict[str, str], gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    ghost = orphan(gateway, gateway.retrieve_subscription(ready["acme"]).price_id or "")
    stripe_requests.sent.clear()
    declined = billing("reconcile", "--cancel-orphans", input="no\n")
    assert declined.exit_code == 1
    assert ghost in declined.stderr and "Error: cancelled" in declined.stderr
    assert stripe_requests.writes == []
    assert gateway.retrieve_subscription(ghost).status == "trialing"
    accepted = billing("reconcile", "--cancel-orphans", "--json", input="yes\n")
    assert accepted.exit_code == 1
    # Click's test runner echoes typed input onto stdout; a terminal would not.
    data = json.loads(accepted.stdout.removeprefix("yes\n").removeprefix(" yes\n"))
    assert [c["subscription"] for c in data["canceled"]] == [ghost]
    assert gateway.retrieve_subscription(ghost).status == "canceled"
    assert stripe_requests.writes == [("DELETE", f"/v1/subscriptions/{ghost}")]
    assert billing("reconcile").exit_code == 0


def test_cancel_orphans_with_yes_does_not_ask(
    billing: Billing, ready: dict[str, str], gateway: Gateway
) -> None:
    ghost = orphan(gateway, gateway.retrieve_subscription(ready["acme"]).price_id or "")
    result = billing("reconcile", "--cancel-orphans", "--yes")
    assert result.exit_code == 1 and "Type yes" not in result.stderr
    assert f"canceled {ghost}" in result.stdout
    assert gateway.retrieve_subscription(ghost).status == "canceled"


def test_unknown_tenant_is_one_line(billing: Billing, ready: dict[str, str]) -> None:
    result = billing("reconcile", "--tenant", "nobody")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no tenant 'nobody'; `billing tenants list` shows the tenants"
    )


def test_subs_refresh(
    billing: Billing,
    ready: dict[str, str],
    db_env: Database,
    gateway: Gateway,
    stripe_requests: StripeRequests,
) -> None:
    gateway.set_cancel_at_period_end(ready["acme"], True, idempotency_key="test:cli:cancel")
    before = table_snapshot(db_env)
    stripe_requests.sent.clear()
    preview = billing("subs", "refresh", "acme", "--dry-run")
    assert preview.exit_code == 0, preview.stderr
    assert "[dry run] would make acme follow Stripe" in preview.stdout
    assert "cancel_at_period_end" in preview.stdout
    assert table_snapshot(db_env) == before
    assert stripe_requests.writes == []
    data = billing.json("subs", "refresh", "acme")
    assert data["changed"] is True
    assert (data["before"]["cancel_at_period_end"], data["after"]["cancel_at_period_end"]) == (
        False,
        True,
    )
    assert data["choice"] == f"the live subscription {ready['acme']}"
    again = billing("subs", "refresh", "acme")
    assert again.exit_code == 0 and "acme already follows Stripe" in again.stdout
    assert stripe_requests.writes == []


def failed_signup(billing: Billing, db: Database, gateway: Gateway, slug: str = "acme") -> None:
    """``subs create`` with a card Stripe attaches but declines: an ``incomplete`` signup."""
    add_synced_plan(db, gateway, "starter", amount=1000)
    add_tenant(db, slug)
    created = billing(
        "subs", "create", slug, "--plan", "starter", "--payment-method",
        "pm_card_chargeCustomerFail",
    )  # fmt: skip
    assert created.exit_code == 1 and "is incomplete" in created.stderr


def test_no_drift_after_a_signup_whose_first_payment_fails(
    billing: Billing, db_env: Database, gateway: Gateway
) -> None:
    """Issue 18, point 3: Stripe keeps the subscription ``incomplete``; so does the local row,
    after the signup's own answer and after its ``invoice.payment_failed`` is applied."""
    failed_signup(billing, db_env, gateway)
    assert billing("webhooks", "replay", "--since", "1h").exit_code == 0
    applied = billing.json("webhooks", "list", "--type", "invoice.payment_failed")
    assert [event["status"] for event in applied] == ["processed"]

    result = billing("reconcile", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["health"]["by_status"] == {"incomplete": 1}


def _closing_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("drift found"))


def test_the_closing_line_names_the_command_that_heals_each_kind(
    billing: Billing, ready: dict[str, str], db_env: Database, gateway: Gateway
) -> None:
    """Issue 18, point 5: `--fix` only for local drift, `--cancel-orphans` for an orphan,
    `plans sync` for the catalogue; never a command that cannot heal what is left."""
    ghost = orphan(gateway, gateway.retrieve_subscription(ready["acme"]).price_id or "")
    only_orphan = billing("reconcile")
    assert only_orphan.exit_code == 1
    line = _closing_line(only_orphan.stdout)
    assert "`billing reconcile --cancel-orphans` heals orphan" in line and "--fix" not in line

    import sqlalchemy as sa

    gateway.set_cancel_at_period_end(ready["acme"], True, idempotency_key="test:cli:cancel")
    with db_env.connect() as connection:
        connection.execute(sa.text("update subscription_plan set amount = 1234"))
        connection.commit()
    data = json.loads(billing("reconcile", "--json").stdout)
    assert data["next_steps"] == {
        "billing reconcile --fix": ["cancel"],
        "billing reconcile --cancel-orphans": ["orphan"],
        "billing plans sync": ["plan_catalogue"],
    }
    fixed = billing("reconcile", "--fix")
    line = _closing_line(fixed.stdout)
    assert "--fix" not in line  # it healed the local side; what is left needs other commands
    assert "`billing reconcile --cancel-orphans` heals orphan" in line
    assert "`billing plans sync` heals plan_catalogue" in line
    billing("reconcile", "--cancel-orphans", "--yes")
    assert gateway.retrieve_subscription(ghost).status == "canceled"
