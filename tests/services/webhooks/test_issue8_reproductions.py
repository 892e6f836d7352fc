"""Issue 8's reproductions, one test each, on SQLite and PostgreSQL (the ``db`` fixture).

1. events for a customer not linked yet are parked, not dropped; the link applies them;
2. same-second ties are settled by ``previous_attributes`` or by Stripe, never by event id;
3. the trial-ending notice does not depend on the order against the deletion;
4. (manual hold: see test_manual_hold.py);
5. a dry-run replay previews the batch cumulatively;
6. an ignore reason is stored on the ledger row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from billing_cli.gateway import SubscriptionInfo
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.services.webhooks import WebhookEngine
from billing_cli.services.webhooks.replay import StripeSelection, replay, run_replay
from billing_cli.timeparse import from_unix
from tests import events as ev
from tests.factories import add_tenant, table_snapshot
from tests.services.webhooks.conftest import PRICE_BASIC, Acme, add_plans, state
from tests.services.webhooks.test_engine import T0, inv_event, notifications, sub_event
from tests.services.webhooks.test_ordering_stripe_truth import link_then_apply_parked

TRIAL_END = T0 + 14 * 86_400
PERIOD_END = T0 + 30 * 86_400
NEXT_END = TRIAL_END + 30 * 86_400


def ledger_row(db: Database, event_id: str) -> dict[str, Any]:
    with db.read() as session:
        row = events_repo.get(session=session, event_id=event_id)
        assert row is not None
        return {"status": row.status, "error": row.error, "customer_id": row.customer_id}


@pytest.fixture
def globex(db: Database) -> str:
    """A tenant whose Stripe customer was made outside the tool: no metadata, no link yet."""
    add_plans(db)
    add_tenant(db, "globex")
    return "globex"


# -- 1. deferred events ---------------------------------------------------------------------


def test_an_invoice_before_its_subscription_is_parked_then_applied_by_the_link(
    db: Database, globex: str, engine: WebhookEngine
) -> None:
    failed = inv_event(
        "invoice.payment_failed",
        T0 + 60,
        customer_id="cus_globex",
        subscription_id="sub_g",
        attempt_count=3,
    )
    outcome = engine.process(failed, source="endpoint")
    assert outcome.status == "deferred"
    assert ledger_row(db, failed["id"])["customer_id"] == "cus_globex"
    assert state(db, "globex")["subscription"] is None

    created = sub_event(
        "customer.subscription.created",
        T0,
        subscription_id="sub_g",
        customer_id="cus_globex",
        tenant="globex",
    )
    linking = engine.process(created, source="endpoint")
    assert linking.status == "processed"
    assert [o.event_id for o in linking.parked] == [failed["id"]]
    assert "applied 1 parked event(s) of cus_globex" in linking.reason
    found = state(db, "globex")
    assert found["subscription"]["status"] == "past_due"
    assert found["subscription"]["failed_payment_attempts"] == 3
    assert (found["tenant"]["status"], found["tenant"]["suspended_by"]) == ("suspended", "billing")
    assert ledger_row(db, failed["id"])["status"] == "processed"


def test_parked_events_wait_for_a_link_made_by_a_command(
    db: Database, globex: str, engine: WebhookEngine
) -> None:
    events = [
        sub_event(
            "customer.subscription.created", T0, customer_id="cus_globex", subscription_id="sub_g"
        ),
        inv_event("invoice.paid", T0 + 5, customer_id="cus_globex", subscription_id="sub_g"),
    ]
    assert [engine.process(e, source="replay").status for e in events] == ["deferred"] * 2
    applied = link_then_apply_parked(db, slug="globex", customer_id="cus_globex")
    assert [o.event_id for o in applied] == [e["id"] for e in events]
    assert state(db, "globex")["subscription"]["status"] == "active"
    assert link_then_apply_parked(db, slug="globex", customer_id="cus_globex") == []


def _parked_mix() -> list[dict[str, Any]]:
    """Parked events whose order key differs from their arrival order: same-second creations,
    updates and deletions, and ids that sort differently case-blind (``evt_a`` before ``evt_B``
    in a linguistic collation, after it byte by byte)."""
    ids = iter(["evt_A", "evt_c", "evt_Z", "evt_a", "evt_B", "evt_b", "evt_C"])

    def sub(type_: str, created: int) -> dict[str, Any]:
        found = sub_event(type_, created, customer_id="cus_globex", subscription_id="sub_g")
        return {**found, "id": next(ids)}

    def paid(created: int) -> dict[str, Any]:
        found = inv_event(
            "invoice.paid", created, customer_id="cus_globex", subscription_id="sub_g"
        )
        return {**found, "id": next(ids)}

    return [
        sub("customer.subscription.deleted", T0 + 9),
        paid(T0 + 9),
        sub("customer.subscription.created", T0 + 9),
        paid(T0 + 5),
        paid(T0 + 5),
        sub("customer.subscription.updated", T0),
        sub("customer.subscription.created", T0),
    ]


def test_a_link_applies_parked_events_in_order_key_order_a_chunk_at_a_time(
    db: Database, globex: str, engine: WebhookEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billing_cli.models import TenantSubscription
    from billing_cli.repository import ledger
    from billing_cli.repository import subscriptions as subscriptions_repo
    from billing_cli.repository import tenants as tenants_repo
    from billing_cli.services.webhooks import applier, deferred

    monkeypatch.setattr(ledger, "PARKED_CHUNK", 2)  # four chunks for seven events
    monkeypatch.setattr(applier, "PARKED_DETAILS", 3)
    events = _parked_mix()
    assert {engine.process(e, source="endpoint").status for e in events} == {"deferred"}
    with db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug="globex")
        assert tenant is not None and tenant.id is not None
        row = TenantSubscription(tenant_id=tenant.id, stripe_customer_id="cus_globex")
        subscriptions_repo.save(session=session, subscription=row)
        applied = deferred.apply_parked(
            session, "cus_globex", max_failed_attempts=3, collect_changes=True
        )
    # past applier.PARKED_DETAILS (3 here) the outcomes keep no before/after
    assert [bool(o.changes) for o in applied][3:] == [False] * 4
    assert applied[0].changes  # the creation: kept
    rank = {"customer.subscription.created": 0, "customer.subscription.deleted": 2}
    expected = sorted(events, key=lambda e: (e["created"], rank.get(e["type"], 1), e["id"]))
    assert [o.event_id for o in applied] == [e["id"] for e in expected]
    assert [e["id"] for e in expected] == [
        "evt_C", "evt_b", "evt_B", "evt_a", "evt_Z", "evt_c", "evt_A"
    ]  # fmt: skip
    assert {ledger_row(db, e["id"])["status"] for e in events} == {"processed"}


def test_a_batch_that_links_a_customer_applies_its_parked_events_in_order_key_order(
    db: Database, globex: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billing_cli.repository import ledger

    monkeypatch.setattr(ledger, "PARKED_CHUNK", 2)
    events = _parked_mix()
    link = sub_event(
        "customer.subscription.updated",
        T0 + 20,
        customer_id="cus_globex",
        subscription_id="sub_g",
        tenant="globex",
    )
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in [*events, link]), encoding="utf-8")
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    summary = run_replay(
        engine,
        from_file=path,
        selection=StripeSelection(),
        gateway=lambda: None,
        stripe_key=False,
        batch_size=3,  # the parked events span batches before the one that links
    )
    linking = next(o for o in summary.outcomes if o.event_id == link["id"])
    rank = {"customer.subscription.created": 0, "customer.subscription.deleted": 2}
    expected = sorted(events, key=lambda e: (e["created"], rank.get(e["type"], 1), e["id"]))
    assert [o.event_id for o in linking.parked] == [e["id"] for e in expected]


def test_apply_parked_leaves_the_callers_orm_row_current(
    db: Database, globex: str, engine: WebhookEngine
) -> None:
    from billing_cli.models import TenantSubscription
    from billing_cli.repository import subscriptions as subscriptions_repo
    from billing_cli.repository import tenants as tenants_repo
    from billing_cli.services.webhooks import deferred

    created = sub_event(
        "customer.subscription.created", T0, customer_id="cus_globex", subscription_id="sub_g"
    )
    assert engine.process(created, source="endpoint").status == "deferred"
    with db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug="globex")
        assert tenant is not None and tenant.id is not None
        row = TenantSubscription(tenant_id=tenant.id, stripe_customer_id="cus_globex")
        subscriptions_repo.save(session=session, subscription=row)
        applied = deferred.apply_parked(session, "cus_globex", max_failed_attempts=3)
        assert [o.status for o in applied] == ["processed"]
        assert (row.stripe_subscription_id, row.status) == ("sub_g", "active")


def test_a_customer_update_after_its_deletion_still_syncs_the_tenant(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    updated = ev.customer_event(
        "customer.updated", created=T0, customer_id="cus_acme", email="ap@acme.test", name="ACME"
    )
    deleted = ev.customer_event("customer.deleted", created=T0 + 60, customer_id="cus_acme")
    assert engine.process(deleted, source="endpoint").status == "processed"
    outcome = engine.process(updated, source="endpoint")
    assert outcome.status == "processed"
    found = state(db)
    assert (found["tenant"]["name"], found["tenant"]["email"]) == ("ACME", "ap@acme.test")
    assert found["subscription"]["stripe_customer_id"] is None


# -- 2. same-second ties --------------------------------------------------------------------


def _trial_then_paid(shape: ev.Shape = "current") -> tuple[dict[str, Any], dict[str, Any]]:
    """Two updates of one second as Stripe sends them when a trial ends: the trial's end, then
    the first invoice's payment moving the period. Ids chosen so the later one sorts first."""
    common: dict[str, Any] = {
        "subscription_id": "sub_acme",
        "customer_id": "cus_acme",
        "price_id": PRICE_BASIC,
        "shape": shape,
        "subscription_created": T0,
        "trial_end": TRIAL_END,
    }
    trial = ev.subscription_event(
        "customer.subscription.updated",
        event_id="evt_z_trial_ended",
        created=TRIAL_END,
        status="trialing",
        period_start=T0,
        period_end=PERIOD_END,
        **common,
    )
    paid = ev.subscription_event(
        "customer.subscription.updated",
        event_id="evt_a_paid",
        created=TRIAL_END,
        status="active",
        period_start=TRIAL_END,
        period_end=NEXT_END,
        **common,
    )
    return trial, paid


def _with_proof(event: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    old, new = before["data"]["object"], event["data"]["object"]
    event["data"]["previous_attributes"] = {k: old[k] for k in old if old[k] != new.get(k)}
    return event


def stripe_answer(status: str, start: int, end: int) -> SubscriptionInfo:
    return SubscriptionInfo(
        id="sub_acme",
        customer_id="cus_acme",
        status=status,
        price_id=PRICE_BASIC,
        item_id=None,
        current_period_start=from_unix(start),
        current_period_end=from_unix(end),
        trial_end=from_unix(TRIAL_END),
        cancel_at_period_end=False,
        canceled_at=None,
        latest_invoice_id=None,
        created=from_unix(T0),
    )


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_previous_attributes_settle_a_same_second_tie(
    db: Database, acme: Acme, engine: WebhookEngine, order: str
) -> None:
    trial, paid = _trial_then_paid()
    paid = _with_proof(paid, trial)
    for event in (trial, paid) if order == "in order" else (paid, trial):
        assert engine.process(event, source="file").status == "processed"
    sub = state(db)["subscription"]
    assert sub["status"] == "active"
    assert sub["current_period_end"] == "2026-02-14T00:00:00Z"


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_an_unprovable_tie_is_settled_by_reading_stripe_with_no_transaction_open(
    db: Database, acme: Acme, order: str
) -> None:
    trial, paid = _trial_then_paid()
    reads: list[tuple[str, int]] = []

    def fetch(subscription_id: str) -> SubscriptionInfo:
        reads.append((subscription_id, db.engine.pool.checkedout()))  # type: ignore[attr-defined]
        return stripe_answer("active", TRIAL_END, NEXT_END)

    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3, fetch=fetch)
    outcomes = [
        engine.process(e, source="endpoint")
        for e in ((trial, paid) if order == "in order" else (paid, trial))
    ]
    assert [o.status for o in outcomes] == ["processed", "processed"]
    assert reads == [("sub_acme", 0)]  # one read, no connection (so no transaction) held
    assert "settled by Stripe (active)" in outcomes[1].reason
    sub = state(db)["subscription"]
    assert (sub["status"], sub["current_period_end"]) == ("active", "2026-02-14T00:00:00Z")


def test_a_file_replay_without_a_key_says_the_tie_needs_a_refresh(
    db: Database, acme: Acme, engine: WebhookEngine, tmp_path: Path
) -> None:
    import json

    trial, paid = _trial_then_paid()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in (trial, paid)))

    def no_gateway() -> Any:
        raise AssertionError("a file replay without a key must not build a gateway")

    summary = run_replay(
        engine, from_file=path, selection=StripeSelection(), gateway=no_gateway, stripe_key=False
    )
    assert [o.status for o in summary.outcomes] == ["processed", "processed"]
    flagged = summary.needs_refresh
    assert len(flagged) == 1
    assert "billing subs refresh acme" in flagged[0].reason
    assert ledger_row(db, flagged[0].event_id)["error"] == flagged[0].reason


# -- 3. the trial-ending notice -------------------------------------------------------------


@pytest.mark.parametrize("order", ["notice first", "deletion first"])
def test_no_trial_notice_is_owed_for_a_deleted_subscription_in_either_order(
    db: Database, acme: Acme, engine: WebhookEngine, order: str
) -> None:
    created = sub_event("customer.subscription.created", T0, status="trialing", trial_end=TRIAL_END)
    notice = sub_event(
        "customer.subscription.trial_will_end", T0 + 60, status="trialing", trial_end=TRIAL_END
    )
    deleted = sub_event(
        "customer.subscription.deleted",
        T0 + 120,
        status="canceled",
        canceled_at=T0 + 120,
        trial_end=TRIAL_END,
    )
    engine.process(created, source="replay")
    for event in (notice, deleted) if order == "notice first" else (deleted, notice):
        assert engine.process(event, source="replay").status == "processed"
    assert "trial_will_end" not in notifications(db)


def test_a_trial_notice_is_owed_while_the_subscription_lives(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(
        sub_event(
            "customer.subscription.trial_will_end", T0, status="trialing", trial_end=TRIAL_END
        ),
        source="replay",
    )
    assert notifications(db).count("trial_will_end") == 1


# -- 5. cumulative dry runs -----------------------------------------------------------------


def test_a_dry_run_replay_previews_the_batch_as_the_real_replay_runs_it(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(sub_event("customer.subscription.created", T0), source="replay")
    failures = [
        inv_event("invoice.payment_failed", T0 + 10 * n, attempt_count=n) for n in (1, 2, 3)
    ]
    paid = inv_event("invoice.paid", T0 + 40, attempt_count=4)
    batch = [*failures, paid, failures[0]]  # the last one is a duplicate
    before = table_snapshot(db)

    preview = replay(engine, batch, source="file", dry_run=True)
    assert table_snapshot(db) == before
    real = replay(engine, batch, source="file")

    assert [o.status for o in preview.outcomes] == [o.status for o in real.outcomes]
    assert [o.status for o in preview.outcomes][-1] == "skipped"
    actions = [[c.action for c in o.changes] for o in preview.outcomes]
    assert "suspend" in actions[2] and "reactivate" in actions[3]

    def views(summary: Any) -> list[Any]:
        return [
            [(c.target, c.action, _stable(c.before), _stable(c.after)) for c in o.changes]
            for o in summary.outcomes
        ]

    assert views(preview) == views(real)


def _stable(view: dict[str, Any] | None) -> dict[str, Any] | None:
    """A change view without the wall-clock times a dry run and a real run cannot share."""
    if view is None:
        return None
    return {k: v for k, v in view.items() if k not in ("suspended_at", "updated_at")}


# -- 6. ignore reasons in the ledger ----------------------------------------------------------


def test_the_ignore_reason_is_stored_on_the_ledger_row(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    unhandled = ev.event("price.created", {"id": "price_x", "object": "price"})
    no_subscription = inv_event("invoice.paid", T0, subscription_id=None)
    for event in (unhandled, no_subscription):
        outcome = engine.process(event, source="endpoint")
        assert outcome.status == "ignored"
        assert ledger_row(db, event["id"])["error"] == outcome.reason != ""
