"""``coupons delete ID`` through the real CLI against the sandbox: it asks first, dry-runs,
audits, and a re-run after Stripe acted (its answer lost) finishes with one delete."""

from __future__ import annotations

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services import audit
from stripe_sandbox import Sandbox
from tests.cli.conftest import Billing
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, table_snapshot
from tests.faults import Fault, FaultProxy

pytestmark = pytest.mark.sandbox

SPRING = ("coupons", "create", "SPRING20", "--percent-off", "20", "--duration", "once")
DELETE = ("coupons", "delete", "SPRING20")


@pytest.fixture
def coupon(billing: Billing, db_env: Database, sandbox: Sandbox) -> Database:
    assert billing(*SPRING).exit_code == 0
    return db_env


def deleted(db: Database) -> list[str]:
    return [
        e["outcome"]
        for e in audit.list_entries(db, tenant_slug=None, since=None, limit=1000)
        if e["outcome"].startswith("coupon SPRING20 deleted")
    ]


def coupon_ids(billing: Billing) -> list[str]:
    return [c["id"] for c in billing.json("coupons", "list")]


def test_delete_asks_first_and_a_no_or_no_answer_changes_nothing(
    billing: Billing, coupon: Database, stripe_requests: StripeRequests
) -> None:
    before = table_snapshot(coupon)
    declined = billing(*DELETE, input="n\n")
    assert declined.exit_code == 1 and "delete coupon SPRING20?" in declined.stderr
    unanswered = billing(*DELETE)
    assert unanswered.exit_code == 1 and "pass --yes" in unanswered.stderr
    assert stripe_requests.writes == [] and table_snapshot(coupon) == before
    assert coupon_ids(billing) == ["SPRING20"]


def test_dry_run_sends_nothing_then_yes_deletes_once_and_audits(
    billing: Billing, coupon: Database, stripe_requests: StripeRequests
) -> None:
    before = table_snapshot(coupon)
    dry = billing(*DELETE, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.startswith("[dry run] would delete coupon SPRING20")
    assert "would send Stripe delete_coupon SPRING20" in dry.stdout
    assert stripe_requests.writes == [] and table_snapshot(coupon) == before
    done = billing.json(*DELETE, "--yes")
    assert (done["action"], done["before"]["summary"], done["after"]) == (
        "delete",
        "20% off, once",
        None,
    )
    assert stripe_requests.writes == [("DELETE", "/v1/coupons/SPRING20")]
    assert coupon_ids(billing) == []
    assert deleted(coupon) == ["coupon SPRING20 deleted: 20% off, once"]
    again = billing(*DELETE, "--yes")
    assert again.exit_code == 1 and again.stderr == (
        "Error: no coupon 'SPRING20' in Stripe; `billing coupons list` shows them\n"
    )
    assert billing.json("intents", "list", "--open") == []


def test_rerun_after_stripe_deleted_and_every_answer_was_lost_finishes_once(
    billing: Billing, coupon: Database, proxy: FaultProxy
) -> None:
    proxy.arm(Fault("status", "after", "DELETE", "/v1/coupons/SPRING20$", status=500, times=50))
    first = billing(*DELETE, "--yes")
    assert first.exit_code == 1 and "re-run the same command" in first.stderr, first.stderr
    assert deleted(coupon) == []
    proxy.clear()
    assert coupon_ids(billing) == []  # Stripe did act
    second = billing(*DELETE, "--yes")
    assert second.exit_code == 0, second.stderr
    assert deleted(coupon) == ["coupon SPRING20 deleted: 20% off, once"]  # from the recovery point
    assert billing.json("intents", "list", "--open") == []


def test_intents_resume_finishes_an_interrupted_delete(
    billing: Billing, coupon: Database, proxy: FaultProxy
) -> None:
    proxy.arm(Fault("status", "after", "DELETE", "/v1/coupons/SPRING20$", status=500, times=50))
    assert billing(*DELETE, "--yes").exit_code == 1
    proxy.clear()
    (open_intent,) = billing.json("intents", "list", "--open")
    assert open_intent["operation"] == "coupon.delete"
    resumed = billing("intents", "resume", open_intent["id"])
    assert resumed.exit_code == 0, resumed.stderr
    assert billing.json("intents", "list", "--open") == []
    assert deleted(coupon) == ["coupon SPRING20 deleted: 20% off, once"]


def test_a_discount_already_given_keeps_running_after_its_coupon_is_deleted(
    billing: Billing, coupon: Database, gateway: Gateway
) -> None:
    add_synced_plan(coupon, gateway, "team", amount=1000)
    add_tenant(coupon, "acme")
    subscribe = ("subs", "create", "acme", "--plan", "team", "--payment-method", "pm_card_visa")
    assert billing(*subscribe).exit_code == 0
    assert billing("subs", "discount", "acme", "--coupon", "SPRING20").exit_code == 0
    assert billing(*DELETE, "--yes").exit_code == 0
    upcoming = billing.json("invoices", "upcoming", "acme")
    assert (upcoming["discount_amount"], upcoming["amount_due"]) == (200, 800)
    assert [d["id"] for d in billing.json("tenants", "show", "acme")["billing"]["discount"]] == [
        "SPRING20"
    ]
