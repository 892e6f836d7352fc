"""``subs extend-trial/end-trial/pause/unpause`` through the real CLI, against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services import audit
from stripe_sandbox import Sandbox
from tests.cli.conftest import Billing
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, table_snapshot
from tests.faults import Fault, FaultProxy

pytestmark = pytest.mark.sandbox

SUBSCRIBE = ("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")


@pytest.fixture
def ready(db_env: Database, gateway: Gateway) -> Database:
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    add_tenant(db_env, "acme")
    return db_env


@pytest.fixture
def client(sandbox: Sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.api_base}, max_network_retries=0
    )


def live(client: stripe.StripeClient, billing: Billing) -> Any:
    sub_id = billing.json("subs", "show", "acme")["stripe"]["stripe_subscription_id"]
    return client.v1.subscriptions.retrieve(sub_id)


def outcomes(db: Database, prefix: str) -> list[str]:
    return [
        e["outcome"]
        for e in audit.list_entries(db, tenant_slug="acme", since=None, limit=1000)
        if e["outcome"].startswith(prefix)
    ]


def tenant_status(billing: Billing) -> str:
    return str(billing.json("tenants", "show", "acme")["tenant"]["status"])


def test_extend_trial_by_days_then_until_a_date(
    billing: Billing, ready: Database, client: stripe.StripeClient
) -> None:
    assert billing(*SUBSCRIBE, "--trial-days", "14").exit_code == 0
    start = live(client, billing).trial_end
    extended = billing.json("subs", "extend-trial", "acme", "--days", "7")
    assert live(client, billing).trial_end == start + 7 * 86400
    assert extended["after"]["trial_end"] != extended["before"]["trial_end"]
    until = (datetime.now(UTC) + timedelta(days=60)).strftime("%Y-%m-%d")
    billing.json("subs", "extend-trial", "acme", "--until", until)
    assert live(client, billing).trial_end == int(
        datetime.fromisoformat(until).replace(tzinfo=UTC).timestamp()
    )
    assert billing.json("subs", "show", "acme")["differences"] == []
    assert len(outcomes(ready, "trial end ")) == 2


def test_end_trial_starts_the_paid_period(
    billing: Billing, ready: Database, client: stripe.StripeClient
) -> None:
    assert billing(*SUBSCRIBE, "--trial-days", "14").exit_code == 0
    ended = billing.json("subs", "end-trial", "acme")
    assert ended["before"]["status"] == "trialing" and ended["after"]["status"] == "active"
    sub = live(client, billing)
    assert sub.status == "active" and sub.trial_end <= int(datetime.now(UTC).timestamp())
    assert len(outcomes(ready, "trial ended now")) == 1


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (("extend-trial", "acme", "--days", "3"), "is not trialing (active)", 1),
        (("end-trial", "acme"), "is not trialing (active)", 1),
        (("extend-trial", "acme", "--until", "2020-01-01"), "in the past", 2),
        (("pause", "acme", "--resumes-at", "2020-01-01"), "in the past", 2),
    ],
)
def test_refusals_are_one_line_and_write_nothing(
    billing: Billing,
    ready: Database,
    stripe_requests: StripeRequests,
    args: tuple[str, ...],
    message: str,
    code: int,
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    before = table_snapshot(ready)
    stripe_requests.sent.clear()
    result = billing("subs", *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert stripe_requests.writes == [] and table_snapshot(ready) == before


def test_trial_beyond_two_years_is_refused(billing: Billing, ready: Database) -> None:
    assert billing(*SUBSCRIBE, "--trial-days", "14").exit_code == 0
    result = billing("subs", "extend-trial", "acme", "--days", "800")
    assert result.exit_code == 2 and "two years" in result.stderr


def test_dry_runs_write_nothing_and_end_trial_previews_the_invoice(
    billing: Billing, ready: Database, stripe_requests: StripeRequests
) -> None:
    assert billing(*SUBSCRIBE, "--trial-days", "14").exit_code == 0
    before = table_snapshot(ready)
    stripe_requests.sent.clear()
    ended = billing.json("subs", "end-trial", "acme", "--dry-run")
    assert ended["dry_run"] is True and ended["after"]["status"] == "active"
    assert ended["invoice_preview"]["amount_due"] == 1000
    for args in (("extend-trial", "acme", "--days", "5"), ("pause", "acme")):
        result = billing("subs", *args, "--dry-run")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("[dry run] would ") and "would send Stripe" in result.stdout
    people = billing("subs", "end-trial", "acme", "--dry-run")
    assert "amount due: 10.00 USD" in people.stdout
    writes = [p for p in stripe_requests.posts if p != "/v1/invoices/create_preview"]
    assert writes == [] and table_snapshot(ready) == before


@pytest.mark.parametrize("access", ["keep", "suspend"])
def test_pause_and_unpause_follow_the_access_policy(
    billing: Billing,
    ready: Database,
    client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
    access: str,
) -> None:
    monkeypatch.setenv("BILLING_PAUSED_ACCESS", access)
    assert billing(*SUBSCRIBE).exit_code == 0
    paused = billing.json("subs", "pause", "acme", "--behavior", "void")
    assert paused["after"]["pause_collection"] == "void"
    assert live(client, billing).pause_collection.behavior == "void"
    assert tenant_status(billing) == ("suspended" if access == "suspend" else "active")
    again = billing.json("subs", "pause", "acme", "--behavior", "void")
    assert again["changed"] is False
    resumed = billing.json("subs", "unpause", "acme")
    assert resumed["after"]["pause_collection"] is None
    assert live(client, billing).pause_collection is None
    assert tenant_status(billing) == "active"
    assert len(outcomes(ready, "collection paused")) == 1
    assert len(outcomes(ready, "collection resumed")) == 1


def test_a_manual_suspension_survives_unpause(
    billing: Billing, ready: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_PAUSED_ACCESS", "suspend")
    assert billing(*SUBSCRIBE).exit_code == 0
    assert billing("tenants", "suspend", "acme", "--reason", "fraud check").exit_code == 0
    assert billing("subs", "pause", "acme").exit_code == 0
    assert billing("subs", "unpause", "acme").exit_code == 0
    assert tenant_status(billing) == "suspended"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("subs", "extend-trial", "acme", "--days", "7"), "trial end "),
        (("subs", "pause", "acme"), "collection paused"),
    ],
)
def test_rerun_after_stripe_applied_the_change_makes_it_once(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    client: stripe.StripeClient,
    command: tuple[str, ...],
    expected: str,
) -> None:
    assert billing(*SUBSCRIBE, "--trial-days", "14").exit_code == 0
    start = live(client, billing).trial_end
    proxy.arm(Fault("status", "after", "POST", "/v1/subscriptions/", status=500))
    first = billing(*command)
    assert first.exit_code == 1 and "re-run the same command" in first.stderr
    proxy.clear()
    second = billing(*command)
    assert second.exit_code == 0, second.stderr
    assert "already" not in second.stdout
    assert len(outcomes(ready, expected)) == 1
    sub = live(client, billing)
    if "extend-trial" in command:
        assert sub.trial_end == start + 7 * 86400  # extended once, not twice
    else:
        assert sub.pause_collection.behavior == "keep_as_draft"


def test_invoices_upcoming_shows_the_next_renewal(billing: Billing, ready: Database) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    shown = billing.json("invoices", "upcoming", "acme")
    assert shown["amount_due"] == 1000 and shown["currency"] == "usd"
    assert [line["amount"] for line in shown["lines"]] == [1000]
    assert shown["date"] == billing.json("subs", "show", "acme")["stripe"]["current_period_end"]
    people = billing("invoices", "upcoming", "acme")
    assert "amount due: 10.00 USD" in people.stdout
    missing = billing("invoices", "upcoming", "nobody")
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1
