"""The doctor's tenant checks without Stripe: the suspension explained by the engine's policy,
and the events about the tenant found in the ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services.doctor.checklist import DoctorReport
from billing_cli.services.doctor.tenant import check_tenant
from billing_cli.services.tenants import rules as tenants
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.factories import add_tenant, invocation
from tests.services.webhooks.conftest import PRICE_BASIC, add_plans, link_customer


@pytest.fixture
def acme(db: Database) -> Database:
    add_plans(db)
    add_tenant(db, "acme")
    link_customer(db, "acme", "cus_acme", "sub_acme")
    return db


def _set_row(db: Database, *, status: str, attempts: int) -> None:
    with db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug="acme")
        assert tenant is not None and tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        assert row is not None
        row.status, row.failed_payment_attempts = status, attempts
        subscriptions_repo.save(session=session, subscription=row)


def _checks(db: Database) -> dict[str, dict[str, Any]]:
    report = DoctorReport()
    check_tenant(report, db, None, slug="acme", max_failed_attempts=3)
    return {c.name: c.to_dict() for c in report.checks}


def test_an_active_tenant_the_policy_would_suspend_fails(acme: Database) -> None:
    _set_row(acme, status="past_due", attempts=3)
    suspension = _checks(acme)["tenant suspension"]
    assert suspension["status"] == "fail"
    assert suspension["detail"] == (
        "active, but the policy would suspend it: billing: 3 failed payment attempts "
        "(subscription past_due, 3 of 3 failed payment attempts)"
    )
    assert "billing webhooks replay" in suspension["fix"]


def test_a_manual_hold_is_explained_whatever_the_payments(acme: Database) -> None:
    _set_row(acme, status="active", attempts=0)
    tenants.suspend_tenant(acme, invocation=invocation(), slug="acme", reason="chargeback")
    suspension = _checks(acme)["tenant suspension"]
    assert suspension["status"] == "ok"
    assert suspension["detail"].startswith("suspended by hand (chargeback)")


def test_events_about_the_tenant_are_found_and_failures_flagged(acme: Database) -> None:
    engine = WebhookEngine(acme, live_mode=False, max_failed_attempts=3)
    common = {"subscription_id": "sub_acme", "customer_id": "cus_acme"}
    engine.process(
        ev.subscription_event(
            "customer.subscription.created", status="active", price_id=PRICE_BASIC, **common
        ),
        source="endpoint",
    )
    engine.process(
        ev.invoice_event("invoice.payment_failed", attempt_count=1, paid=False, **common),
        source="endpoint",
    )
    engine.process(
        ev.subscription_event(
            "customer.subscription.created",
            status="active",
            price_id=PRICE_BASIC,
            subscription_id="sub_other",
            customer_id="cus_other",
        ),
        source="endpoint",
    )
    events = _checks(acme)["tenant events"]
    assert events["status"] == "ok"
    assert "invoice.payment_failed processed" in events["detail"]
    assert "customer.subscription.created processed" in events["detail"]
    assert events["detail"].count("evt_") == 2  # not the other customer's event


def test_an_unlinked_tenant_says_how_to_link_it(db: Database) -> None:
    add_tenant(db, "solo")
    report = DoctorReport()
    check_tenant(report, db, None, slug="solo", max_failed_attempts=3)
    checks = {c.name: c for c in report.checks}
    assert checks["tenant customer"].status == "fail"
    assert checks["tenant customer"].fix == "billing subs create solo --plan PLAN"
