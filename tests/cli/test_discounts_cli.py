"""``coupons``, ``subs discount``, ``tenants credit``, ``subs quantity`` and what
``invoices upcoming`` and ``tenants show`` then say, through the real CLI against the sandbox."""

from __future__ import annotations

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

SUBSCRIBE = ("subs", "create", "acme", "--plan", "team", "--payment-method", "pm_card_visa")
SPRING = ("coupons", "create", "SPRING20", "--percent-off", "20", "--duration", "repeating")


@pytest.fixture
def ready(db_env: Database, gateway: Gateway) -> Database:
    add_synced_plan(db_env, gateway, "team", amount=1000)
    add_tenant(db_env, "acme")
    return db_env


@pytest.fixture
def client(sandbox: Sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.api_base}, max_network_retries=0
    )


def outcomes(db: Database, prefix: str, tenant: str | None = "acme") -> list[str]:
    return [
        e["outcome"]
        for e in audit.list_entries(db, tenant_slug=tenant, since=None, limit=1000)
        if e["outcome"].startswith(prefix)
    ]


def customer(billing: Billing, client: stripe.StripeClient) -> Any:
    cus = billing.json("subs", "show", "acme")["stripe"]["stripe_customer_id"]
    return client.v1.customers.retrieve(cus)


def test_three_months_at_20_percent_off_show_on_the_next_invoice(
    billing: Billing, ready: Database, client: stripe.StripeClient
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    made = billing.json(*SPRING, "--months", "3")
    assert made["after"]["summary"] == "20% off, repeating for 3 months"
    assert [c["id"] for c in billing.json("coupons", "list")] == ["SPRING20"]
    given = billing.json("subs", "discount", "acme", "--coupon", "SPRING20")
    assert (given["before"]["discount"], given["after"]["discount"]) == (None, "SPRING20")
    upcoming = billing.json("invoices", "upcoming", "acme")
    assert (upcoming["subtotal"], upcoming["discount_amount"], upcoming["amount_due"]) == (
        1000,
        200,
        800,
    )
    assert upcoming["discounts"] == ["SPRING20"]
    shown = billing.json("tenants", "show", "acme")["billing"]
    assert [d["id"] for d in shown["discount"]] == ["SPRING20"]
    removed = billing.json("subs", "discount", "acme", "--remove")
    assert removed["after"]["discount"] is None
    assert billing.json("invoices", "upcoming", "acme")["amount_due"] == 1000
    assert len(outcomes(ready, "discount SPRING20 applied")) == 1
    assert len(outcomes(ready, "discount removed")) == 1
    assert len(outcomes(ready, "coupon SPRING20 created", tenant=None)) == 1


def test_a_credit_lowers_the_next_invoice_and_shows_on_the_tenant(
    billing: Billing, ready: Database, client: stripe.StripeClient
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    args = ("tenants", "credit", "acme", "--amount", "2.50", "--currency", "usd")
    credited = billing.json(*args, "--reason", "outage on 1 Dec")
    assert credited["after"]["balance"] == -250
    assert customer(billing, client).balance == -250
    assert billing.json("invoices", "upcoming", "acme")["amount_due"] == 750
    assert billing.json("tenants", "show", "acme")["billing"]["balance_display"] == (
        "2.50 USD credit"
    )
    refused = billing(
        "tenants", "credit", "acme", "--amount", "-1", "--currency", "usd", "--reason", "x"
    )
    assert refused.exit_code == 2 and "--debit" in refused.stderr
    debited = billing.json(
        "tenants",
        "credit",
        "acme",
        "--amount",
        "-1",
        "--currency",
        "usd",
        "--reason",
        "x",
        "--debit",
    )
    assert debited["after"]["balance"] == -150 and debited["action"] == "debit"
    assert len(outcomes(ready, "credit 2.50 USD")) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("subs", "discount", "acme", "--coupon", "NOPE"), "no coupon 'NOPE'"),
        (
            ("tenants", "credit", "acme", "--amount", "5", "--currency", "eur", "--reason", "x"),
            "balance is in USD",
        ),
        (("subs", "discount", "acme"), "exactly one of --coupon"),
        (("coupons", "create", "X", "--percent-off", "150", "--duration", "once"), "at most 100"),
    ],
)
def test_refusals_write_nothing(
    billing: Billing,
    ready: Database,
    stripe_requests: StripeRequests,
    args: tuple[str, ...],
    message: str,
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    before = table_snapshot(ready)
    stripe_requests.sent.clear()
    result = billing(*args)
    assert result.exit_code in (1, 2) and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
    assert stripe_requests.writes == [] and table_snapshot(ready) == before


def test_quantity_prorates_and_dry_runs_preview_without_writing(
    billing: Billing, ready: Database, stripe_requests: StripeRequests, client: stripe.StripeClient
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    assert billing(*SPRING, "--months", "3").exit_code == 0
    refused = billing("subs", "quantity", "acme", "3")
    assert refused.exit_code == 1 and "not priced per seat" in refused.stderr
    assert billing.json("plans", "update", "team", "--per-seat")["after"]["per_seat"] is True
    before = table_snapshot(ready)
    stripe_requests.sent.clear()
    seats = billing.json("subs", "quantity", "acme", "3", "--dry-run")
    preview = seats["invoice_preview"]
    assert preview["proration_amount"] > 0 and [
        line["amount"] for line in preview["lines"] if not line["proration"]
    ] == [3000]
    discount = billing.json("subs", "discount", "acme", "--coupon", "SPRING20", "--dry-run")
    assert discount["invoice_preview"]["discount_amount"] == 200
    credit = billing.json(
        "tenants",
        "credit",
        "acme",
        "--amount",
        "1",
        "--currency",
        "usd",
        "--reason",
        "x",
        "--dry-run",
    )
    assert credit["dry_run"] is True and credit["after"]["balance"] == -100
    writes = [p for p in stripe_requests.posts if p != "/v1/invoices/create_preview"]
    assert writes == [] and table_snapshot(ready) == before
    changed = billing.json("subs", "quantity", "acme", "3")
    assert (changed["before"]["quantity"], changed["after"]["quantity"]) == (1, 3)
    sub_id = changed["after"]["stripe_subscription_id"]
    assert client.v1.subscriptions.retrieve(sub_id)["items"].data[0].quantity == 3
    assert billing.json("subs", "quantity", "acme", "3")["changed"] is False
    assert len(outcomes(ready, "quantity 1 -> 3")) == 1


def test_credit_rerun_after_stripe_acted_credits_once(
    billing: Billing, ready: Database, proxy: FaultProxy, client: stripe.StripeClient
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    args = ("tenants", "credit", "acme", "--amount", "4", "--currency", "usd", "--reason", "sorry")
    proxy.arm(Fault("status", "after", "POST", "/v1/customers/", status=500))
    first = billing(*args)
    assert first.exit_code == 1 and "re-run the same command" in first.stderr
    proxy.clear()
    second = billing(*args)
    assert second.exit_code == 0, second.stderr
    assert customer(billing, client).balance == -400
    assert len(outcomes(ready, "credit 4.00 USD")) == 1


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ("tenants", "credit", "acme", "--amount", "-2", "--currency", "usd", "--reason", "fee"),
            "debit 2.00 USD",
        ),
        (("subs", "pause", "acme", "--behavior", "void"), "collection paused (void)"),
    ],
)
def test_intents_resume_finishes_an_interrupted_adjustment(
    billing: Billing,
    ready: Database,
    proxy: FaultProxy,
    client: stripe.StripeClient,
    command: tuple[str, ...],
    expected: str,
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    proxy.arm(Fault("status", "after", "POST", "/v1/", status=500))
    args = (*command, "--debit") if "credit" in command else command
    assert billing(*args).exit_code == 1
    proxy.clear()
    (open_intent,) = billing.json("intents", "list", "--open")
    resumed = billing("intents", "resume", open_intent["id"])
    assert resumed.exit_code == 0, resumed.stderr
    assert billing.json("intents", "list", "--open") == []
    assert len(outcomes(ready, expected)) == 1
    if "credit" in command:
        assert customer(billing, client).balance == 200


def test_an_existing_coupon_id_is_refused_without_a_journal_row(
    billing: Billing, ready: Database
) -> None:
    assert billing(*SPRING, "--months", "3").exit_code == 0
    again = billing("coupons", "create", "SPRING20", "--percent-off", "5", "--duration", "once")
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert [i["operation"] for i in billing.json("intents", "list")] == ["coupon.create"]
