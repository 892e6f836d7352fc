"""BILLING_PAUSED_ACCESS applied from ``customer.subscription.updated`` events, in any order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa

from billing_cli.repository import Database
from billing_cli.services.subscriptions import paused_access
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.factories import add_tenant
from tests.services.webhooks.conftest import PRICE_BASIC, add_plans, link_customer, state

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _update(created: int, pause: str | None, shape: ev.Shape = "current") -> dict[str, Any]:
    event = ev.subscription_event(
        "customer.subscription.updated",
        created=created,
        subscription_id="sub_acme",
        customer_id="cus_acme",
        status="active",
        price_id=PRICE_BASIC,
        period_start=T0,
        subscription_created=T0,
        shape=shape,
    )
    event["data"]["object"]["pause_collection"] = (
        {"behavior": pause, "resumes_at": None} if pause else None
    )
    return event


def _fresh(db: Database) -> None:
    with db.transaction() as session:
        for table in ("audit_entry", "notification", "webhook_event", "tenant_subscription"):
            session.execute(sa.text(f"delete from {table}"))
        session.execute(sa.text("delete from tenant"))
    add_tenant(db, "acme")
    link_customer(db, "acme", "cus_acme", "sub_acme")


def _pause_column(db: Database) -> str | None:
    with db.connect() as connection:
        value = connection.execute(sa.text("select pause_collection from tenant_subscription"))
        return value.scalar_one()  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_every_delivery_order_converges(db: Database, shape: ev.Shape) -> None:
    """created, paused, unpaused, paused again: the newest says paused, whatever the order."""
    add_plans(db)
    events = [
        _update(T0 + 10, None, shape),
        _update(T0 + 20, "void", shape),
        _update(T0 + 30, None, shape),
        _update(T0 + 40, "keep_as_draft", shape),
    ]
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3, paused_access="suspend")
    finals = set()
    for order in itertools.permutations(events):
        _fresh(db)
        for event in order:
            engine.process(event, source="endpoint")
        tenant = state(db)["tenant"]
        finals.add((tenant["status"], tenant["suspended_by"], _pause_column(db)))
    assert finals == {("suspended", "billing", "keep_as_draft")}


@pytest.mark.parametrize(("access", "status"), [("keep", "active"), ("suspend", "suspended")])
def test_pause_and_unpause_events_follow_the_setting(
    db: Database, access: str, status: str
) -> None:
    add_plans(db)
    _fresh(db)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3, paused_access=access)
    engine.process(_update(T0 + 10, "mark_uncollectible"), source="endpoint")
    assert state(db)["tenant"]["status"] == status
    engine.process(_update(T0 + 20, None), source="endpoint")
    assert state(db)["tenant"]["status"] == "active"


def test_the_rule_adds_a_reason_only_while_paused_under_suspend() -> None:
    rule = paused_access.suspension
    assert rule(None, status="active", pause_collection="void", access="suspend") == (
        paused_access.PAUSED_REASON
    )
    assert rule(None, status="active", pause_collection="void", access="keep") is None
    assert rule(None, status="active", pause_collection=None, access="suspend") is None
    assert rule("billing: x", status="past_due", pause_collection="void", access="suspend") == (
        "billing: x"
    )
    assert paused_access.pause_of({"pause_collection": {"behavior": "void"}}) == "void"
    assert paused_access.pause_of({"pause_collection": None}) is None
