"""``billing notifications list``: the outbox the webhook engine fills."""

from __future__ import annotations

from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.cli.conftest import Billing
from tests.factories import add_tenant
from tests.services.webhooks.conftest import add_plans, link_customer

T0 = 1_767_225_600


def test_list_filters_by_tenant_and_kind(billing: Billing, db_env: Database) -> None:
    add_plans(db_env)
    add_tenant(db_env, "acme")
    add_tenant(db_env, "globex")
    link_customer(db_env, "acme", "cus_acme", "sub_acme")
    engine = WebhookEngine(db_env, live_mode=False, max_failed_attempts=1)
    failed = ev.invoice_event(
        "invoice.payment_failed",
        created=T0,
        subscription_id="sub_acme",
        customer_id="cus_acme",
        attempt_count=1,
        paid=False,
    )
    assert engine.process(failed, source="endpoint").status == "processed"

    rows = billing.json("notifications", "list")
    assert [(n["tenant"], n["kind"]) for n in rows] == [
        ("acme", "suspended"),
        ("acme", "payment_failed"),
    ]
    assert rows[1]["payload"]["attempt_count"] == 1
    only = billing.json("notifications", "list", "--tenant", "acme", "--kind", "payment_failed")
    assert [n["kind"] for n in only] == ["payment_failed"]
    assert billing.json("notifications", "list", "--tenant", "globex") == []
    human = billing("notifications", "list")
    assert human.exit_code == 0 and "payment_failed" in human.stdout


def test_unknown_tenant(billing: Billing, db_env: Database) -> None:
    result = billing("notifications", "list", "--tenant", "nobody")
    assert result.exit_code == 1
    assert "no tenant 'nobody'" in result.stderr
