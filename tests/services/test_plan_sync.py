"""``plans sync`` against the sandbox (real HTTP, real state) on SQLite and PostgreSQL.

What is proved here: the first run creates, a second makes no writes, changes make new Prices
(old archived, lookup key moved), adoption instead of duplicates, ``--archive-stale``, dry runs
that send and save nothing, and a crash between the Stripe write and the DB write that a re-run
recovers from without a second Product or Price.
"""

from __future__ import annotations

from typing import Any

import pytest

from billing_cli.errors import DatabaseError
from billing_cli.gateway import DryRunGateway, Gateway, PriceInfo, ProductInfo
from billing_cli.models import SubscriptionPlan
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.services.catalog import plans
from billing_cli.services.catalog.plan_catalog import lookup_key_for
from billing_cli.services.catalog.plan_sync import SyncReport, sync_plans
from tests.conftest import StripeRequests
from tests.factories import invocation, table_snapshot


def add_plan(
    db: Database,
    slug: str = "pro",
    *,
    name: str | None = None,
    amount: str = "29.00",
    currency: str = "usd",
    interval: str = "month",
) -> None:
    """A local plan row, made the way an operator makes one."""
    plans.add_plan(
        db,
        invocation=invocation(),
        slug=slug,
        name=name or slug.title(),
        amount=amount,
        currency=currency,
        interval=interval,
    )


def sync(db: Database, gateway: Gateway, **options: Any) -> SyncReport:
    return sync_plans(db, gateway, invocation=invocation(operator="ops"), **options)


def stored(db: Database, slug: str) -> SubscriptionPlan:
    with db.read() as session:
        plan = plans_repo.get_by_slug(session=session, slug=slug)
        assert plan is not None
        session.expunge(plan)
        return plan


def wipe_ids(db: Database, slug: str) -> None:
    """What a restored backup looks like: the row without its Stripe ids."""
    with db.transaction() as session:
        plan = plans_repo.get_by_slug(session=session, slug=slug)
        assert plan is not None
        plan.stripe_product_id = plan.stripe_price_id = None
        session.add(plan)


def products_of(gateway: Gateway, slug: str) -> list[ProductInfo]:
    return [p for p in gateway.list_products() if p.metadata.get("billing_plan") == slug]


def prices_of(gateway: Gateway, slug: str) -> list[PriceInfo]:
    return [p for p in gateway.list_prices() if p.metadata.get("billing_plan") == slug]


def actions(report: SyncReport) -> dict[str, str]:
    return {result.slug: result.action for result in report.plans}


def test_first_sync_creates_product_and_price_and_stores_ids(
    db: Database, gateway: Gateway
) -> None:
    add_plan(db, "basic", amount="9.00")
    add_plan(db, "pro", amount="29.00", interval="year")
    report = sync(db, gateway)
    assert actions(report) == {"basic": "created", "pro": "created"}
    assert report.counts()["created"] == 2
    pro = stored(db, "pro")
    [product] = products_of(gateway, "pro")
    [price] = prices_of(gateway, "pro")
    assert (pro.stripe_product_id, pro.stripe_price_id) == (product.id, price.id)
    assert (product.name, product.active) == ("Pro", True)
    assert (price.unit_amount, price.currency, price.interval) == (2900, "usd", "year")
    assert price.lookup_key == lookup_key_for("pro") == "billing_plan:pro"
    assert price.product_id == product.id


def test_one_audit_entry_per_changed_plan_with_ids(db: Database, gateway: Gateway) -> None:
    add_plan(db, "pro")
    sync(db, gateway)
    sync(db, gateway)
    from billing_cli.services import audit

    entries = [e for e in audit.list_entries(db, tenant_slug=None, since=None, limit=10)]
    synced = [e for e in entries if e["outcome"].startswith("plans sync")]
    assert len(synced) == 1  # the second, empty run records nothing
    [entry] = synced
    assert entry["operator"] == "ops"
    assert entry["target"] == "plan:pro"
    assert entry["before"] == {"stripe_product_id": None, "stripe_price_id": None}
    assert entry["after"]["stripe_price_id"] == stored(db, "pro").stripe_price_id


def test_second_sync_makes_no_writes_and_reads_with_list_calls_only(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    for slug in ("a", "b", "c", "d"):
        add_plan(db, slug)
    sync(db, gateway)
    stripe_requests.sent.clear()
    report = sync(db, gateway)
    assert stripe_requests.writes == []
    assert set(actions(report).values()) == {"unchanged"}
    # One product list and two price lists (active, archived): not one request per plan.
    assert stripe_requests.sent == [
        ("GET", "/v1/products"),
        ("GET", "/v1/prices"),
        ("GET", "/v1/prices"),
    ]


def test_amount_change_makes_new_price_archives_old_and_moves_lookup_key(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    add_plan(db, "pro", amount="29.00")
    sync(db, gateway)
    old = stored(db, "pro")
    plans.update_plan(db, invocation=invocation(), slug="pro", amount="39.00")
    report = sync(db, gateway)
    assert actions(report) == {"pro": "updated"}
    new = stored(db, "pro")
    assert new.stripe_product_id == old.stripe_product_id
    assert new.stripe_price_id != old.stripe_price_id
    prices = {p.id: p for p in prices_of(gateway, "pro")}
    assert prices[old.stripe_price_id or ""].active is False
    assert prices[old.stripe_price_id or ""].lookup_key is None
    assert prices[new.stripe_price_id or ""].unit_amount == 3900
    assert prices[new.stripe_price_id or ""].lookup_key == "billing_plan:pro"
    assert "amount 29.00 USD in Stripe, 39.00 USD here" in report.plans[0].steps[0]
    stripe_requests.sent.clear()
    assert set(actions(sync(db, gateway)).values()) == {"unchanged"}
    assert stripe_requests.writes == []


def test_interval_change_makes_new_price(db: Database, gateway: Gateway) -> None:
    add_plan(db, "pro")
    sync(db, gateway)
    plans.update_plan(db, invocation=invocation(), slug="pro", interval="year")
    sync(db, gateway)
    active = [p for p in prices_of(gateway, "pro") if p.active]
    assert [(p.interval, p.id) for p in active] == [("year", stored(db, "pro").stripe_price_id)]


def test_reverting_an_amount_makes_a_third_price_not_a_replay(
    db: Database, gateway: Gateway
) -> None:
    add_plan(db, "pro", amount="29.00")
    sync(db, gateway)
    first = stored(db, "pro").stripe_price_id
    for amount in ("39.00", "29.00"):
        plans.update_plan(db, invocation=invocation(), slug="pro", amount=amount)
        sync(db, gateway)
    current = stored(db, "pro").stripe_price_id
    assert current != first
    assert [p.id for p in prices_of(gateway, "pro") if p.active] == [current]


def test_name_change_updates_the_product_only(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    add_plan(db, "pro", name="Pro")
    sync(db, gateway)
    before = stored(db, "pro")
    plans.update_plan(db, invocation=invocation(), slug="pro", name="Pro (2026)")
    stripe_requests.sent.clear()
    report = sync(db, gateway)
    assert actions(report) == {"pro": "updated"}
    assert [path for _, path in stripe_requests.writes] == [
        f"/v1/products/{before.stripe_product_id}"
    ]
    [product] = products_of(gateway, "pro")
    assert product.name == "Pro (2026)"
    after = stored(db, "pro")
    assert (after.stripe_product_id, after.stripe_price_id) == (
        before.stripe_product_id,
        before.stripe_price_id,
    )


def test_adopts_objects_after_local_ids_are_wiped(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    add_plan(db, "pro")
    sync(db, gateway)
    original = stored(db, "pro")
    wipe_ids(db, "pro")
    stripe_requests.sent.clear()
    report = sync(db, gateway)
    assert actions(report) == {"pro": "adopted"}
    assert stripe_requests.writes == []
    adopted = stored(db, "pro")
    assert (adopted.stripe_product_id, adopted.stripe_price_id) == (
        original.stripe_product_id,
        original.stripe_price_id,
    )
    assert len(products_of(gateway, "pro")) == len(prices_of(gateway, "pro")) == 1


def test_adoption_with_a_changed_amount_keeps_the_product_and_replaces_the_price(
    db: Database, gateway: Gateway
) -> None:
    add_plan(db, "pro", amount="29.00")
    sync(db, gateway)
    original = stored(db, "pro")
    wipe_ids(db, "pro")
    plans.update_plan(db, invocation=invocation(), slug="pro", amount="49.00")
    report = sync(db, gateway)
    assert actions(report) == {"pro": "adopted"}
    now = stored(db, "pro")
    assert now.stripe_product_id == original.stripe_product_id
    assert len(products_of(gateway, "pro")) == 1
    active = [p for p in prices_of(gateway, "pro") if p.active]
    assert [(p.id, p.unit_amount) for p in active] == [(now.stripe_price_id, 4900)]


def test_archive_stale_only_when_asked(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    add_plan(db, "old")
    add_plan(db, "pro")
    sync(db, gateway)
    plans.set_plan_active(db, invocation=invocation(), slug="old", active=False)
    stripe_requests.sent.clear()
    report = sync(db, gateway)
    assert actions(report) == {"old": "stale", "pro": "unchanged"}
    assert stripe_requests.writes == []
    report = sync(db, gateway, archive_stale=True)
    assert actions(report) == {"old": "archived", "pro": "unchanged"}
    [product] = products_of(gateway, "old")
    [price] = prices_of(gateway, "old")
    assert (product.active, price.active) == (False, False)
    stripe_requests.sent.clear()
    assert set(actions(sync(db, gateway, archive_stale=True)).values()) == {"unchanged"}
    assert stripe_requests.writes == []


def test_reactivated_plan_revives_its_product_with_a_new_price(
    db: Database, gateway: Gateway
) -> None:
    add_plan(db, "pro")
    sync(db, gateway)
    plans.set_plan_active(db, invocation=invocation(), slug="pro", active=False)
    sync(db, gateway, archive_stale=True)
    plans.set_plan_active(db, invocation=invocation(), slug="pro", active=True)
    assert actions(sync(db, gateway)) == {"pro": "updated"}
    [product] = products_of(gateway, "pro")
    assert product.active is True
    active = [p for p in prices_of(gateway, "pro") if p.active]
    assert [p.id for p in active] == [stored(db, "pro").stripe_price_id]


def test_dry_run_sends_nothing_saves_nothing_and_lists_every_write(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    add_plan(db, "basic")
    add_plan(db, "pro")
    snapshot = table_snapshot(db)
    dry = DryRunGateway(gateway)
    report = sync_plans(db, dry, invocation=invocation(dry_run=True))
    assert stripe_requests.posts == []
    assert table_snapshot(db) == snapshot
    assert report.dry_run and actions(report) == {"basic": "created", "pro": "created"}
    operations = [w["operation"] for r in report.plans for w in r.stripe_writes]
    assert operations == ["create_product", "create_price"] * 2
    assert [w.operation for w in dry.planned] == operations
    assert report.plans[1].after == {
        "stripe_product_id": "(new product)",
        "stripe_price_id": "(new price)",
    }


def test_dry_run_of_an_amount_change_plans_new_price_and_archive(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    add_plan(db, "pro")
    sync(db, gateway)
    plans.update_plan(db, invocation=invocation(), slug="pro", amount="39.00")
    snapshot = table_snapshot(db)
    stripe_requests.sent.clear()
    report = sync_plans(db, DryRunGateway(gateway), invocation=invocation(dry_run=True))
    assert stripe_requests.posts == []
    assert table_snapshot(db) == snapshot
    writes = report.plans[0].stripe_writes
    assert [w["operation"] for w in writes] == ["create_price", "archive_price"]
    assert writes[0]["params"]["unit_amount"] == 3900
    assert writes[0]["params"]["transfer_lookup_key"] is True


def _fail_once(monkeypatch: pytest.MonkeyPatch, slug: str) -> list[str]:
    """Make the repository save of ``slug``'s ids fail once, as if the DB went away."""
    real_add = plans_repo.add
    failed: list[str] = []

    def flaky_add(*, session: Any, plan: SubscriptionPlan) -> SubscriptionPlan:
        if plan.slug == slug and not failed:
            failed.append(slug)
            raise DatabaseError("database is unreachable: connection reset")
        return real_add(session=session, plan=plan)

    monkeypatch.setattr(plans_repo, "add", flaky_add)
    return failed


def test_crash_after_stripe_create_then_rerun_makes_no_duplicates(
    db: Database, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    for slug in ("a", "b", "c"):
        add_plan(db, slug)
    failed = _fail_once(monkeypatch, "b")
    with pytest.raises(DatabaseError, match=r"stopped at plan 'b' \(1 of 3 plans done and kept\)"):
        sync(db, gateway)
    assert failed == ["b"]
    # Per-plan transactions: 'a' is synced and kept; 'b' was created in Stripe but not saved.
    assert stored(db, "a").stripe_price_id is not None
    assert stored(db, "b").stripe_price_id is None
    assert len(products_of(gateway, "b")) == 1
    report = sync(db, gateway)
    assert actions(report) == {"a": "unchanged", "b": "adopted", "c": "created"}
    for slug in ("a", "b", "c"):
        assert len(products_of(gateway, slug)) == 1
        assert len(prices_of(gateway, slug)) == 1
        assert stored(db, slug).stripe_price_id == prices_of(gateway, slug)[0].id


class _Blind:
    """A gateway seam that hides Stripe's lists, as a run that read before another wrote."""

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_products(self) -> list[ProductInfo]:
        return []

    def list_prices(self) -> list[PriceInfo]:
        return []


def test_idempotency_keys_alone_prevent_duplicates(
    db: Database, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when adoption cannot see the first objects, Stripe replays the first answers."""
    add_plan(db, "pro")
    _fail_once(monkeypatch, "pro")
    blind: Gateway = _Blind(gateway)  # type: ignore[assignment]
    with pytest.raises(DatabaseError):
        sync(db, blind)
    sync(db, blind)
    assert len(products_of(gateway, "pro")) == 1
    assert len(prices_of(gateway, "pro")) == 1
    assert stored(db, "pro").stripe_price_id == prices_of(gateway, "pro")[0].id


def test_progress_hears_every_plan(db: Database, gateway: Gateway) -> None:
    heard: list[object] = []

    class Recorder:
        def start(self, description: str, total: int | None) -> None:
            heard.append(total)

        def advance(self, description: str | None = None) -> None:
            heard.append(description)

    add_plan(db, "a")
    add_plan(db, "b")
    sync(db, gateway, progress=Recorder())
    assert heard == [2, "synced a", "synced b"]
