"""``reconcile`` and ``subs refresh`` against the sandbox, with drift planted in every class.

Stripe is changed behind the tool's back through the gateway (as the Dashboard or a lost
webhook would leave it); local rows are changed through the database. Each test runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from billing_cli.errors import ConfirmationDeclined, NotFound
from billing_cli.gateway import DryRunGateway, Gateway
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services import audit
from billing_cli.services.reconcile import refresh
from billing_cli.services.reconcile.compare import ReconcileReport, reconcile
from billing_cli.services.subscriptions import lifecycle as subscriptions
from billing_cli.services.tenants import rules as tenants
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, invocation, row_counts, table_snapshot

pytestmark = pytest.mark.sandbox


@dataclass
class World:
    db: Database
    gateway: Gateway
    prices: dict[str, str]
    subs: dict[str, str]  # tenant -> subscription id
    customers: dict[str, str]


def subscribe(world: World, slug: str) -> None:
    add_tenant(world.db, slug)
    change = subscriptions.create_subscription(
        world.db,
        world.gateway,
        invocation=invocation(),
        tenant_slug=slug,
        plan_slug="starter",
        payment_method="pm_card_visa",
        trial_days=0,
    )
    assert change.after is not None
    world.subs[slug] = change.after["stripe_subscription_id"]
    world.customers[slug] = change.after["stripe_customer_id"]


@pytest.fixture
def world(db: Database, gateway: Gateway) -> World:
    prices = {
        "starter": add_synced_plan(db, gateway, "starter", amount=1000),
        "pro": add_synced_plan(db, gateway, "pro", amount=3000),
    }
    return World(db, gateway, prices, {}, {})


def run(world: World, *, dry_run: bool = False, **options: object) -> ReconcileReport:
    gateway = world.gateway
    if dry_run or not options.get("cancel_orphans"):
        gateway = DryRunGateway(gateway)
    return reconcile(
        world.db,
        gateway,
        invocation=invocation(dry_run=dry_run),
        **options,  # type: ignore[arg-type]
    )


def kinds(report: ReconcileReport) -> dict[str, set[str]]:
    return {r.tenant: {d.kind for d in r.drift} for r in report.tenants}


def edit_row(world: World, slug: str, **values: object) -> None:
    with world.db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug=slug)
        assert tenant is not None and tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)


def edit_tenant(world: World, slug: str, **values: object) -> None:
    with world.db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug=slug)
        assert tenant is not None
        for name, value in values.items():
            setattr(tenant, name, value)
        session.add(tenant)


def plant_everything(world: World) -> None:
    """One tenant per drift class, plus an orphan and a renamed product."""
    for slug in (
        "in-step",
        "status",
        "plan",
        "stray-price",
        "period",
        "cancel",
        "missing",
        "double",
        "gone",
        "suspended",
    ):
        subscribe(world, slug)
    gw = world.gateway
    edit_row(world, "status", status="past_due", stripe_status="past_due")
    gw.change_subscription_price(
        world.subs["plan"],
        item_id=gw.retrieve_subscription(world.subs["plan"]).item_id or "",
        price_id=world.prices["pro"],
        proration_behavior="none",
        idempotency_key="test:behind-the-back:plan",
    )
    product = gw.list_products()[0]
    stray = gw.create_price(
        product_id=product.id,
        unit_amount=4200,
        currency="usd",
        interval="year",
        interval_count=1,
        lookup_key=None,
        metadata={},
        transfer_lookup_key=False,
        idempotency_key="test:behind-the-back:stray-price",
    )
    gw.change_subscription_price(
        world.subs["stray-price"],
        item_id=gw.retrieve_subscription(world.subs["stray-price"]).item_id or "",
        price_id=stray.id,
        proration_behavior="none",
        idempotency_key="test:behind-the-back:stray",
    )
    row_end = gw.retrieve_subscription(world.subs["period"]).current_period_end
    assert row_end is not None
    edit_row(world, "period", current_period_end=row_end + timedelta(days=3))
    gw.set_cancel_at_period_end(
        world.subs["cancel"], True, idempotency_key="test:behind-the-back:cancel"
    )
    edit_row(world, "missing", stripe_subscription_id="sub_notinstripe")
    gw.create_subscription(
        customer_id=world.customers["double"],
        price_id=world.prices["pro"],
        trial_days=None,
        default_payment_method=None,
        metadata={"tenant": "double"},
        idempotency_key="test:behind-the-back:double",
    )
    gw.delete_customer(world.customers["gone"], idempotency_key="test:behind-the-back:gone")
    edit_tenant(
        world,
        "suspended",
        status="suspended",
        suspended_by="billing",
        suspension_reason="billing: 3 failed payment attempts",
    )
    ghost = gw.create_customer(
        email="ghost@example.test",
        name="Ghost",
        metadata={"tenant": "ghost"},
        idempotency_key="test:behind-the-back:ghost-customer",
    )
    gw.create_subscription(
        customer_id=ghost.id,
        price_id=world.prices["starter"],
        trial_days=30,
        default_payment_method=None,
        metadata={"tenant": "ghost"},
        idempotency_key="test:behind-the-back:ghost",
    )
    add_tenant(world.db, "untracked")
    customer = gw.create_customer(
        email="billing@untracked.test",
        name="Untracked",
        metadata={"tenant": "untracked"},
        idempotency_key="test:behind-the-back:untracked-customer",
    )
    gw.create_subscription(
        customer_id=customer.id,
        price_id=world.prices["starter"],
        trial_days=14,
        default_payment_method=None,
        metadata={"tenant": "untracked"},
        idempotency_key="test:behind-the-back:untracked",
    )
    gw.update_product(
        product.id, name="Renamed In Dashboard", idempotency_key="test:behind-the-back:product"
    )


def test_no_drift_right_after_the_cli_wrote(world: World) -> None:
    subscribe(world, "acme")
    subscribe(world, "globex")
    add_tenant(world.db, "no-sub")
    report = run(world)
    assert not report.drift_found, report.to_dict()
    assert report.tenants_checked == 3
    assert report.health["by_status"] == {"active": 2, "none": 1}


def test_every_drift_class_is_reported(world: World) -> None:
    plant_everything(world)
    report = run(world)
    found = kinds(report)
    assert "in-step" not in found
    assert found["status"] == {"status"}
    assert found["plan"] == {"plan"}
    assert found["period"] == {"period"}
    assert found["cancel"] == {"cancel"}
    assert found["missing"] == {"missing", "untracked"}  # the customer's real one is adoptable
    assert found["double"] == {"double_billing"}
    assert "customer_deleted" in found["gone"]
    assert found["suspended"] == {"suspension"}
    assert found["untracked"] == {"untracked"}
    assert [(o.tenant, o.kind) for o in report.orphans] == [("ghost", "orphan")]
    assert [p["state"] for p in report.plans] == ["drifted"]
    assert "Renamed In Dashboard" in report.plans[0]["differences"][0]
    assert report.drift_found
    plan_detail = next(r for r in report.tenants if r.tenant == "plan").drift[0].detail
    assert "(plan pro)" in plan_detail
    assert found["stray-price"] == {"plan", "period"}  # a yearly price: a new period too
    stray = next(r for r in report.tenants if r.tenant == "stray-price").drift[0].detail
    assert stray.endswith("(no plan has this price: 42.00 USD per year)")


def test_fix_heals_each_local_class_and_writes_nothing_to_stripe(
    world: World, stripe_requests: StripeRequests
) -> None:
    plant_everything(world)
    stripe_requests.sent.clear()
    report = run(world, fix=True)
    assert stripe_requests.writes == []
    assert {r.tenant for r in report.tenants if r.fixed} == {
        "status",
        "plan",
        "stray-price",
        "period",
        "cancel",
        "missing",
        "gone",
        "suspended",
        "untracked",
    }
    after = run(world)
    # What only a Stripe write can heal is left: double billing, the orphan, the catalogue.
    assert kinds(after) == {"double": {"double_billing"}}
    assert [o.tenant for o in after.orphans] == ["ghost"]
    assert after.plans
    shown = tenants.show_tenant(world.db, slug="suspended").tenant
    assert shown["status"] == "active"
    gone = tenants.show_tenant(world.db, slug="gone").subscription
    assert gone is not None and gone["stripe_customer_id"] is None
    plan = tenants.show_tenant(world.db, slug="plan").subscription
    assert plan is not None and plan["plan"] == "pro"
    untracked = tenants.show_tenant(world.db, slug="untracked").subscription
    assert untracked is not None and untracked["status"] == "trialing"
    entries = audit.list_entries(world.db, tenant_slug=None, since=None, limit=500)
    healed = {e["target"] for e in entries if e["outcome"].startswith("followed Stripe")}
    assert healed == {f"subscription:{r.tenant}" for r in report.tenants if r.fixed} - {
        "subscription:suspended"  # only the tenant changed: audited by the reactivation
    }


def test_dry_run_fix_writes_nothing(world: World, stripe_requests: StripeRequests) -> None:
    plant_everything(world)
    before, counts = table_snapshot(world.db), row_counts(world.db)
    stripe_requests.sent.clear()
    report = run(world, fix=True, cancel_orphans=True, dry_run=True)
    assert stripe_requests.writes == []
    assert table_snapshot(world.db) == before and row_counts(world.db) == counts
    assert {r.tenant for r in report.tenants if r.fixed} >= {"status", "plan", "untracked"}
    planned = [(w["operation"], w["target"]) for w in report.stripe_writes]
    assert len(planned) == 2 and all(op == "cancel_subscription_now" for op, _ in planned)


def test_cancel_orphans_needs_confirmation_then_cancels_with_fixed_keys(
    world: World, stripe_requests: StripeRequests
) -> None:
    plant_everything(world)
    stripe_requests.sent.clear()
    with pytest.raises(ConfirmationDeclined):
        run(world, cancel_orphans=True, confirm=lambda unwanted: False)
    assert stripe_requests.writes == []
    asked: list[str] = []

    def confirm(unwanted: list[object]) -> bool:
        asked.extend(getattr(u, "kind", "") for u in unwanted)
        return True

    report = run(world, cancel_orphans=True, confirm=confirm)
    assert sorted(asked) == ["double_billing", "orphan"]
    assert len(report.canceled) == 2
    assert sorted(m for m, _ in stripe_requests.writes) == ["DELETE", "DELETE"]
    for item in report.canceled:
        assert world.gateway.retrieve_subscription(item["subscription"]).status == "canceled"
    kept = world.gateway.retrieve_subscription(world.subs["double"])
    assert kept.status == "active"  # the subscription the tool created and tracks is kept
    after = run(world)
    assert "double" not in kinds(after) and after.orphans == []


def test_tenant_filter_and_unknown_tenant(world: World) -> None:
    plant_everything(world)
    report = run(world, tenants=["plan", "cancel"])
    assert set(kinds(report)) == {"plan", "cancel"} and report.orphans == []
    with pytest.raises(NotFound):
        run(world, tenants=["nobody"])


def test_refresh_follows_stripe_and_says_which_subscription(world: World) -> None:
    subscribe(world, "acme")
    gw = world.gateway
    gw.set_cancel_at_period_end(world.subs["acme"], True, idempotency_key="test:refresh:cancel")
    preview = refresh.refresh_subscription(
        world.db, DryRunGateway(gw), invocation=invocation(dry_run=True), tenant_slug="acme"
    )
    assert preview.applied.change.changed and preview.applied.change.dry_run
    shown = tenants.show_tenant(world.db, slug="acme").subscription
    assert shown is not None and shown["cancel_at_period_end"] is False  # dry run kept it
    result = refresh.refresh_subscription(
        world.db, DryRunGateway(gw), invocation=invocation(), tenant_slug="acme"
    )
    data = result.to_dict()
    assert data["before"]["cancel_at_period_end"] is False
    assert data["after"]["cancel_at_period_end"] is True
    assert data["choice"] == f"the live subscription {world.subs['acme']}"
    again = refresh.refresh_subscription(
        world.db, DryRunGateway(gw), invocation=invocation(), tenant_slug="acme"
    )
    assert not again.applied.change.changed


def test_refresh_with_no_live_subscription_takes_the_newest(world: World) -> None:
    subscribe(world, "acme")
    gw = world.gateway
    gw.cancel_subscription_now(world.subs["acme"], idempotency_key="test:refresh:end")
    result = refresh.refresh_subscription(
        world.db, DryRunGateway(gw), invocation=invocation(), tenant_slug="acme"
    )
    assert "none is live; took the newest" in result.to_dict()["choice"]
    shown = tenants.show_tenant(world.db, slug="acme")
    assert shown.subscription is not None and shown.subscription["status"] == "canceled"
    assert shown.tenant["suspended_by"] == "billing"  # the billing policy, as a webhook would
