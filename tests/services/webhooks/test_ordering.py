"""The ordering property: whatever the delivery order and however many duplicates, a lifecycle's
events converge on the state that applying them in order gives; also when the tenant's
subscription was canceled and a new one created for it later (its events and the old one's
interleaved in any order). Steps of 0 seconds make same-second ties, which the engines settle
by reading Stripe (a fake ``fetch`` answering each subscription as of its last event, see
test_ordering_stripe_truth for ties without a key).

Two SQLite databases (migrated once, emptied per example) on a RAM-backed directory with
``synchronous=OFF``: the property is about the engine's logic, and 1,000 examples have to stay
fast. The engine's PostgreSQL behaviour is covered by the ``db``-parametrized tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from billing_cli.repository import Database, migrations
from billing_cli.repository import notifications as notifications_repo
from billing_cli.services.webhooks import WebhookEngine
from tests.events import Shape
from tests.factories import add_tenant
from tests.services.webhooks.conftest import PRICE_BASIC, PRICE_PRO, add_plans, link_customer, state
from tests.services.webhooks.lifecycles import Plan, lifecycle, stripe_now
from tests.services.webhooks.test_engine import manual_suspend

_RAM = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


def _fast_sqlite(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")

    @sa.event.listens_for(db.engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    migrations.upgrade(db)
    return db


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Database, Database]]:
    with tempfile.TemporaryDirectory(dir=_RAM) as directory:
        first = _fast_sqlite(Path(directory) / "in-order.db")
        second = _fast_sqlite(Path(directory) / "shuffled.db")
        yield first, second
        first.dispose()
        second.dispose()


def _reset(db: Database, *, linked: bool, manual: bool) -> None:
    with db.connect() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())
        connection.commit()
    add_plans(db)
    add_tenant(db, "acme")
    if linked:
        link_customer(db, "acme", "cus_acme", None)
    if manual:
        manual_suspend(db, "acme")


def _deliver(
    pair: tuple[Database, Database],
    events: list[dict[str, Any]],
    delivery: list[dict[str, Any]],
    *,
    linked: bool,
    manual: bool,
) -> dict[str, Any]:
    """Apply ``events`` in order to one database and ``delivery`` to the other; the states must
    be equal, and each event applied once. Returns the in-order state."""
    in_order, shuffled = pair
    fetch = stripe_now(events)  # same-second ties are settled by Stripe's answer
    for db, sequence in ((in_order, events), (shuffled, delivery)):
        _reset(db, linked=linked, manual=manual)
        engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3, fetch=fetch)
        outcomes = [engine.process(event, source="replay") for event in sequence]
        assert not [o for o in outcomes if o.status == "failed" or "needs refresh" in o.reason]
        assert sum(o.status == "skipped" for o in outcomes) == len(sequence) - len(events)
    expected = _converging_state(in_order)
    assert _converging_state(shuffled) == expected
    return expected


def _converging_state(db: Database) -> dict[str, Any]:
    """The tenant, its subscription row and the trial-ending notices owed (unsent)."""
    found = state(db)
    tenant = found["tenant"]
    with db.read() as session:
        notices = notifications_repo.list_recent(
            session=session, kind="trial_will_end", state="pending"
        )
    return {
        "tenant": {k: tenant[k] for k in ("status", "suspended_by", "name", "email")},
        "subscription": found["subscription"],
        "trial_notices": len(notices),
    }


plans = st.builds(
    Plan,
    trial=st.booleans(),
    failures=st.integers(0, 5),
    recover=st.booleans(),
    plan_change=st.booleans(),
    cancel_at_period_end=st.booleans(),
    deleted=st.booleans(),
    customer_deleted=st.booleans(),
    email_change=st.booleans(),
    upcoming=st.booleans(),
)
shapes: st.SearchStrategy[list[Shape]] = st.lists(
    st.sampled_from(["current", "legacy"]), min_size=1, max_size=8
)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=plans,
    steps=st.lists(st.integers(0, 3 * 86_400), min_size=1, max_size=6),
    event_shapes=shapes,
    linked=st.booleans(),
    manual=st.integers(0, 9).map(lambda n: n == 0),
    data=st.data(),
)
def test_any_delivery_order_with_duplicates_converges(
    pair: tuple[Database, Database],
    plan: Plan,
    steps: list[int],
    event_shapes: list[Shape],
    linked: bool,
    manual: bool,
    data: st.DataObject,
) -> None:
    events = lifecycle(
        plan,
        slug="acme",
        customer_id="cus_acme",
        subscription_id="sub_acme",
        prices=(PRICE_BASIC, PRICE_PRO),
        start=1_767_225_600,
        steps=steps,
        shapes=event_shapes,
        id_prefix="",
    )
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    delivery = data.draw(st.permutations(events + duplicates))

    expected = _deliver(pair, events, delivery, linked=linked, manual=manual)

    tenant, subscription = expected["tenant"], expected["subscription"]
    if manual:
        assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "manual")
    elif plan.deleted:
        assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "billing")
        assert subscription["status"] == "canceled"
    if plan.customer_deleted and plan.deleted:
        assert subscription["stripe_customer_id"] is None
    if not plan.deleted and not manual and (plan.failures == 0 or plan.recover):
        assert tenant["status"] == "active"
        assert subscription["failed_payment_attempts"] == 0
    # a trial-ending notice is owed unless the subscription was deleted, in every order
    assert expected["trial_notices"] == int(plan.trial and not plan.deleted)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    old=plans.map(lambda plan: replace(plan, deleted=True, customer_deleted=False)),
    new=plans,
    gap=st.integers(1, 40 * 86_400),
    steps=st.lists(st.integers(0, 3 * 86_400), min_size=1, max_size=6),
    event_shapes=shapes,
    linked=st.booleans(),
    manual=st.integers(0, 9).map(lambda n: n == 0),
    data=st.data(),
)
def test_a_new_subscription_after_a_canceled_one_converges(
    pair: tuple[Database, Database],
    old: Plan,
    new: Plan,
    gap: int,
    steps: list[int],
    event_shapes: list[Shape],
    linked: bool,
    manual: bool,
    data: st.DataObject,
) -> None:
    """Subscription A is canceled (deleted), then the CLI creates B for the same tenant and
    customer; A's and B's events arrive shuffled and duplicated: B's win, A's late ones are
    refused, A's failures do not count against B, and a tenant suspended by A's deletion is
    reactivated by B (as the policy's pure function says)."""
    common: dict[str, Any] = {
        "slug": "acme",
        "customer_id": "cus_acme",
        "prices": (PRICE_BASIC, PRICE_PRO),
        "steps": steps,
        "shapes": event_shapes,
    }
    first = lifecycle(old, subscription_id="sub_a", start=1_767_225_600, id_prefix="a", **common)
    second = lifecycle(
        new,
        subscription_id="sub_b",
        start=first[-1]["created"] + gap,
        id_prefix="b",
        **common,
    )
    events = first + second
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    delivery = data.draw(st.permutations(events + duplicates))

    expected = _deliver(pair, events, delivery, linked=linked, manual=manual)

    tenant, subscription = expected["tenant"], expected["subscription"]
    assert subscription["stripe_subscription_id"] == "sub_b"
    if manual:
        assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "manual")
    elif new.deleted:
        assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "billing")
        assert subscription["status"] == "canceled"
    elif new.failures == 0 or new.recover:
        assert (tenant["status"], tenant["suspended_by"]) == ("active", None)
        assert subscription["status"] in ("active", "trialing")
    if new.failures == 0 or new.recover:
        assert subscription["failed_payment_attempts"] == 0  # A's failures do not count
    assert expected["trial_notices"] == int(new.trial and not new.deleted)
