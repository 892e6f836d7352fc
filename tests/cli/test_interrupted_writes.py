"""Money safety: every Stripe write happens once, whatever fails between the tool and Stripe.

Each test puts the fault-injecting proxy (tests/faults.py) between stripe-python and the local
Stripe sandbox, breaks one request before or after Stripe acted (a 500, a 503, a 429, a cut
response, a timeout, a reset), commits an unrelated change for the same tenant, re-runs the
same command, and then counts what Stripe holds and what the audit trail says. The re-run must
finish the write, never repeat it. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe

from billing_cli.models import StripeIntent
from billing_cli.repository import Database
from billing_cli.services import audit
from stripe_sandbox import Sandbox
from tests.factories import add_synced_plan, add_tenant
from tests.faults import Fault, FaultProxy

from .conftest import Billing

pytestmark = pytest.mark.sandbox

CHARGE = ("payments", "charge", "acme", "--amount", "12.50", "--currency", "usd")
CHARGE_ARGS = (*CHARGE, "--description", "setup fee")
SUBSCRIBE = ("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
RERUN_HINT = "re-run the same command to finish it safely"

# Faults after forwarding: Stripe acted and the answer was lost. Before: Stripe never saw it.
AMBIGUOUS = [
    pytest.param(Fault("status", "after", "", "", status=500), id="500-after"),
    pytest.param(Fault("status", "after", "", "", status=503), id="503-after"),
    pytest.param(Fault("cut", "after", "", ""), id="cut-after"),
    pytest.param(Fault("hang", "after", "", "", hang_seconds=4), id="timeout-after"),
    pytest.param(Fault("reset", "after", "", ""), id="reset-after"),
    pytest.param(Fault("status", "before", "", "", status=429), id="429-before"),
    pytest.param(Fault("hang", "before", "", "", hang_seconds=4), id="timeout-before"),
]


@pytest.fixture
def stripe_client(sandbox: Sandbox) -> stripe.StripeClient:
    """Looks at the sandbox directly, past the proxy: what Stripe really holds."""
    return stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.api_base}, max_network_retries=0
    )


@pytest.fixture
def ready(db_env: Database, sandbox: Sandbox) -> Database:
    from billing_cli.config import Settings
    from billing_cli.gateway import make_gateway

    gateway = make_gateway(
        Settings(stripe_secret_key=sandbox.secret_key, stripe_api_base=sandbox.api_base)
    )
    add_tenant(db_env, "acme")
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    add_synced_plan(db_env, gateway, "pro", amount=2500)
    return db_env


def unrelated_change(billing: Billing) -> None:
    """What used to move the old idempotency key on: committed audit entries for the tenant."""
    assert billing("tenants", "suspend", "acme", "--reason", "checking").exit_code == 0
    assert billing("tenants", "reactivate", "acme").exit_code == 0


def outcomes(db: Database, prefix: str) -> list[str]:
    return [
        entry["outcome"]
        for entry in audit.list_entries(db, tenant_slug="acme", since=None, limit=1000)
        if entry["outcome"].startswith(prefix)
    ]


def intents(db: Database) -> list[StripeIntent]:
    """The journal's rows, detached copies that can be read after the session closed."""
    from sqlmodel import select

    with db.read() as session:
        return [StripeIntent(**row.model_dump()) for row in session.exec(select(StripeIntent))]


def stripe_errors(db: Database) -> set[str]:
    import sqlalchemy as sa

    with db.connect() as connection:
        rows = connection.execute(sa.text("select operation from stripe_api_error"))
        return {str(operation) for (operation,) in rows}


def customer_of(db: Database) -> str:
    return str(_row(db)["stripe_customer_id"])


def _row(db: Database) -> dict[str, Any]:
    import sqlalchemy as sa

    with db.connect() as connection:
        row = connection.execute(sa.text("select * from tenant_subscription")).mappings().one()
        return dict(row)


def tenant_subscriptions(client: stripe.StripeClient) -> list[Any]:
    every = client.v1.subscriptions.list({"status": "all", "limit": 100}).data
    return [s for s in every if s.metadata.to_dict().get("tenant") == "acme"]


@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_charge_rerun_after_an_ambiguous_failure_charges_once(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,
    fault: Fault,
) -> None:
    attach = billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    assert attach.exit_code == 0, attach.stderr
    proxy.arm(replace(fault, method="POST", path_prefix="/v1/payment_intents"))

    first = billing(*CHARGE_ARGS)
    assert first.exit_code == 1
    assert RERUN_HINT in first.stderr and "\n" not in first.stderr.strip()
    assert [i.status for i in intents(ready) if i.operation == "payment.charge"] == ["unknown"]

    proxy.clear()
    assert stripe_errors(ready) == {"payment.charge.payment"}  # counted for `billing check`
    unrelated_change(billing)
    second = billing(*CHARGE_ARGS)
    assert second.exit_code == 0, second.stderr

    charges = stripe_client.v1.payment_intents.list({"customer": customer_of(ready)}).data
    assert [(c.amount, c.status) for c in charges] == [(1250, "succeeded")]
    assert len(outcomes(ready, "charged 12.50 USD")) == 1
    assert [i.status for i in intents(ready) if i.operation == "payment.charge"] == ["succeeded"]


def test_a_second_deliberate_charge_is_a_new_charge(
    billing: Billing, ready: Database, proxy: FaultProxy, stripe_client: stripe.StripeClient
) -> None:
    billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    assert billing(*CHARGE_ARGS).exit_code == 0
    assert billing(*CHARGE_ARGS).exit_code == 0
    charges = stripe_client.v1.payment_intents.list({"customer": customer_of(ready)}).data
    assert len(charges) == 2
    assert len(outcomes(ready, "charged 12.50 USD")) == 2


def test_a_declined_charge_closes_its_intent_and_is_audited(
    billing: Billing, ready: Database, proxy: FaultProxy
) -> None:
    billing("payments", "methods", "attach", "acme", "pm_card_chargeCustomerFail", "--default")
    result = billing(*CHARGE_ARGS)
    assert result.exit_code == 1 and "card declined" in result.stderr
    charge_intents = [i for i in intents(ready) if i.operation == "payment.charge"]
    assert [i.status for i in charge_intents] == ["failed"]
    assert len(outcomes(ready, "charge of 12.50 USD failed")) == 1


def test_other_parameters_are_refused_while_an_intent_is_open(
    billing: Billing, ready: Database, proxy: FaultProxy, stripe_client: stripe.StripeClient
) -> None:
    billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    proxy.arm(Fault("status", "after", "POST", "/v1/payment_intents", status=500))
    assert billing(*CHARGE_ARGS).exit_code == 1
    proxy.clear()
    other = billing(*CHARGE, "--description", "another fee")
    assert other.exit_code == 1
    (intent,) = [i for i in intents(ready) if i.operation == "payment.charge"]
    assert f"intent {intent.id}" in other.stderr and "other parameters" in other.stderr
    assert len(stripe_client.v1.payment_intents.list({"customer": customer_of(ready)}).data) == 1


def test_retries_429_and_cut_responses_with_the_same_key(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One 429 and one response cut after Stripe acted: retried, one charge, exit 0."""
    monkeypatch.setenv("STRIPE_MAX_NETWORK_RETRIES", "3")
    billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    proxy.arm(Fault("status", "before", "POST", "/v1/payment_intents", 429, {"Retry-After": "0"}))
    proxy.arm(Fault("cut", "after", "POST", "/v1/payment_intents"))
    result = billing(*CHARGE_ARGS)
    assert result.exit_code == 0, result.stderr
    assert proxy.writes_to("/v1/payment_intents") == 2  # the cut one and its replay
    charges = stripe_client.v1.payment_intents.list({"customer": customer_of(ready)}).data
    assert len(charges) == 1


@pytest.mark.parametrize("fault", AMBIGUOUS[:3])
def test_subscribe_rerun_after_an_ambiguous_failure_subscribes_once(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,
    fault: Fault,
) -> None:
    proxy.arm(replace(fault, method="POST", path_prefix="/v1/subscriptions$"))
    assert billing(*SUBSCRIBE).exit_code == 1
    proxy.clear()
    unrelated_change(billing)
    result = billing(*SUBSCRIBE)
    assert result.exit_code == 0, result.stderr
    (live,) = tenant_subscriptions(stripe_client)
    assert _row(ready)["stripe_subscription_id"] == live.id
    assert len(outcomes(ready, "subscribed to starter")) == 1


@pytest.mark.parametrize(
    ("command", "path", "expected"),
    [
        (("subs", "upgrade", "acme", "--plan", "pro"), "/v1/subscriptions/", "plan starter -> pro"),
        (("subs", "cancel", "acme"), "/v1/subscriptions/", "canceled at period end"),
        (("subs", "cancel", "acme", "--now"), "/v1/subscriptions/", "canceled now"),
    ],
)
def test_subscription_change_rerun_after_stripe_applied_it_is_audited_once(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,
    command: tuple[str, ...],
    path: str,
    expected: str,
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    method = "DELETE" if "--now" in command else "POST"
    proxy.arm(Fault("status", "after", method, path, status=500))
    first = billing(*command)
    assert first.exit_code == 1 and RERUN_HINT in first.stderr
    proxy.clear()
    unrelated_change(billing)
    second = billing(*command)
    assert second.exit_code == 0, second.stderr
    assert "already" not in second.stdout  # finished and audited, not "nothing to do"
    assert len(outcomes(ready, expected)) == 1
    (live,) = tenant_subscriptions(stripe_client)
    assert _row(ready)["status"] == live.status
    assert all(i.status == "succeeded" for i in intents(ready))


def test_plans_sync_rerun_after_an_ambiguous_failure_makes_one_price(
    billing: Billing, db_env: Database, proxy: FaultProxy, stripe_client: stripe.StripeClient
) -> None:
    assert (
        billing(
            "plans",
            "add",
            "team",
            "--name",
            "Team",
            "--amount",
            "49",
            "--currency",
            "usd",
            "--interval",
            "month",
        ).exit_code
        == 0
    )
    proxy.arm(Fault("status", "after", "POST", "/v1/prices$", status=502))
    first = billing("plans", "sync")
    assert first.exit_code == 1 and RERUN_HINT in first.stderr
    proxy.clear()
    second = billing("plans", "sync")
    assert second.exit_code == 0, second.stderr
    prices = stripe_client.v1.prices.list({"limit": 100}).data
    assert len([p for p in prices if p.metadata.to_dict().get("billing_plan") == "team"]) == 1
    synced = [
        e
        for e in audit.list_entries(db_env, tenant_slug=None, since=None, limit=100)
        if e["target"] == "plan:team" and e["command"] == "plans sync"
    ]
    assert len(synced) == 1
    assert billing.json("intents", "list", "--open") == []


def test_a_first_payment_that_fails_is_a_failure_with_its_reason(
    billing: Billing, ready: Database, proxy: FaultProxy
) -> None:
    result = billing(
        "subs",
        "create",
        "acme",
        "--plan",
        "starter",
        "--trial-days",
        "0",
        "--payment-method",
        "pm_card_chargeCustomerFail",
    )
    assert result.exit_code == 1
    assert "incomplete" in result.stderr and "first payment failed" in result.stderr
    assert _row(ready)["status"] == "incomplete"
    assert len(outcomes(ready, "subscribed to starter (incomplete): first payment failed")) == 1


def test_a_plan_changed_but_not_synced_is_refused(
    billing: Billing, ready: Database, proxy: FaultProxy
) -> None:
    assert billing("plans", "update", "starter", "--amount", "15.00").exit_code == 0
    result = billing(*SUBSCRIBE)
    assert result.exit_code == 1
    assert "billing plans sync" in result.stderr and "15.00 USD" in result.stderr
    assert proxy.writes_to("/v1/") == 0


def test_dry_run_charge_says_it_would_attempt(
    billing: Billing, ready: Database, proxy: FaultProxy
) -> None:
    billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    result = billing(*CHARGE_ARGS, "--dry-run")
    assert result.exit_code == 0
    assert "would attempt to charge" in result.stdout and "succeeded" not in result.stdout
    assert proxy.writes_to("/v1/payment_intents") == 0
    assert [i.operation for i in intents(ready)] == ["payment_method.attach"]


def test_dry_run_cancel_now_shows_the_suspension_and_notification(
    billing: Billing, ready: Database, proxy: FaultProxy
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    result = billing("subs", "cancel", "acme", "--now", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "would suspend tenant acme" in result.stdout
    assert "would queue notification: suspended" in result.stdout


def test_intents_list_show_and_resume(
    billing: Billing, ready: Database, proxy: FaultProxy, stripe_client: stripe.StripeClient
) -> None:
    billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    proxy.arm(Fault("status", "after", "POST", "/v1/payment_intents", status=500))
    assert billing(*CHARGE_ARGS).exit_code == 1
    proxy.clear()
    (open_one,) = billing.json("intents", "list", "--open")
    assert open_one["operation"] == "payment.charge" and open_one["status"] == "unknown"
    shown = billing.json("intents", "show", open_one["id"])
    assert "idempotency_key" not in shown and "billing:" not in str(shown)
    dry = billing("intents", "resume", open_one["id"], "--dry-run")
    assert dry.exit_code == 0 and billing.json("intents", "list", "--open") != []
    assert billing("intents", "resume", open_one["id"]).exit_code == 0
    assert billing.json("intents", "list", "--open") == []
    charges = stripe_client.v1.payment_intents.list({"customer": customer_of(ready)}).data
    assert len(charges) == 1


@pytest.mark.parametrize(
    ("command", "create_path"),
    [
        (SUBSCRIBE, "/v1/subscriptions$"),
        (CHARGE_ARGS, "/v1/payment_intents$"),
    ],
    ids=["subscribe", "charge"],
)
def test_past_the_key_window_the_object_is_found_before_anything_is_created(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,
    command: tuple[str, ...],
    create_path: str,
) -> None:
    """Stripe forgets keys after 24 h: the re-run finds the object by metadata.billing_intent."""
    import sqlalchemy as sa

    if command is CHARGE_ARGS:
        billing("payments", "methods", "attach", "acme", "pm_card_visa", "--default")
    proxy.arm(Fault("status", "after", "POST", create_path, status=500))
    assert billing(*command).exit_code == 1
    proxy.clear()
    with ready.connect() as connection, connection.begin():
        connection.execute(
            sa.text("update stripe_intent set created_at = :at where status = 'unknown'"),
            {"at": datetime.now(UTC) - timedelta(days=2)},
        )
    sent_before = proxy.writes_to(create_path)
    result = billing(*command)
    assert result.exit_code == 0, result.stderr
    assert proxy.writes_to(create_path) == sent_before  # nothing created again
    assert all(i.status == "succeeded" for i in intents(ready))


SETUP_URL = "http://127.0.0.1:9/webhooks/stripe/"  # nothing listens there: deliveries fail
WHSEC = re.compile(r"whsec_[0-9a-f]{48}")


def endpoints_for_url(client: stripe.StripeClient) -> list[Any]:
    """The sandbox's endpoints for SETUP_URL, seen past the proxy."""
    return [e for e in client.v1.webhook_endpoints.list().data if e.url == SETUP_URL]


def setup_interrupted(billing: Billing, proxy: FaultProxy, fault: Fault) -> Any:
    """``webhooks setup`` with every creation request hit by ``fault``; the result."""
    proxy.arm(replace(fault, method="POST", path_prefix="/v1/webhook_endpoints", times=99))
    first = billing("webhooks", "setup", SETUP_URL)
    proxy.clear()
    assert first.exit_code == 1
    assert RERUN_HINT in first.stderr and "\n" not in first.stderr.strip()
    return first


@pytest.mark.parametrize("fault", AMBIGUOUS[:5])  # Stripe made the endpoint; its answer was lost
def test_webhooks_setup_rerun_after_a_lost_answer_recovers_the_signing_secret(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,
    fault: Fault,
) -> None:
    first = setup_interrupted(billing, proxy, fault)
    assert not WHSEC.search(first.stdout + first.stderr)
    made = endpoints_for_url(stripe_client)
    assert len(made) == 1  # the answer was lost, not the endpoint
    (open_intent,) = [i for i in intents(ready) if i.operation == "webhook_endpoint.create"]
    resumed = billing("intents", "resume", open_intent.id, "--yes")
    assert resumed.exit_code != 0 and f"billing webhooks setup {SETUP_URL}" in resumed.stderr

    second = billing("webhooks", "setup", SETUP_URL, "--json")
    assert second.exit_code == 0, second.stderr
    answer = json.loads(second.stdout)
    assert answer["endpoint"]["id"] == made[0].id and answer["action"] == "create"
    assert WHSEC.fullmatch(answer["secret"])  # Stripe replayed its first answer
    assert [e.id for e in endpoints_for_url(stripe_client)] == [made[0].id]  # not a second one
    setups = [i for i in intents(ready) if i.operation == "webhook_endpoint.create"]
    assert [i.status for i in setups] == ["succeeded"]
    assert answer["secret"] not in json.dumps([i.model_dump(mode="json") for i in setups])


@pytest.mark.parametrize("fault", AMBIGUOUS[5:])  # Stripe never saw the creation
def test_webhooks_setup_rerun_after_an_unsent_creation_creates_it_once(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,
    fault: Fault,
) -> None:
    setup_interrupted(billing, proxy, fault)
    assert not endpoints_for_url(stripe_client)

    second = billing("webhooks", "setup", SETUP_URL, "--json")
    assert second.exit_code == 0, second.stderr
    assert WHSEC.fullmatch(json.loads(second.stdout)["secret"])
    assert len(endpoints_for_url(stripe_client)) == 1
    statuses = sorted(i.status for i in intents(ready) if i.operation == "webhook_endpoint.create")
    assert statuses in (["succeeded"], ["failed", "succeeded"])
