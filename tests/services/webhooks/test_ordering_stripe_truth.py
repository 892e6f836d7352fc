"""Convergence when the order is not in the keys: events parked until their customer is linked,
and same-second updates of one subscription settled by Stripe's truth.

- *Parked events.* The lifecycle's objects carry no ``metadata.tenant`` (a customer made outside
  this tool), so only a link to the customer finds the tenant. One database is linked first and
  gets the events in order; the other gets them shuffled and duplicated, with the link (written
  as a command writes it, then :func:`deferred.apply_parked` in the same transaction) at a random
  point of the delivery, first and last included. The states must be equal.
- *Same-second ties.* Most steps are 0 seconds, so several ``customer.subscription.updated`` of
  one second tie; some carry ``data.previous_attributes``, some not. With a Stripe key (a fake
  ``fetch`` answering what Stripe would say now: the subscription as of its last event) every
  delivery order converges on the in-order state. Without one, a delivery that could not settle
  a tie says "needs refresh" in its outcome, and any delivery that did not say so converges.

Both count the trial-ending notices owed (unsent), which must not depend on the order either.
Two SQLite databases on a RAM disk, as in test_ordering; >= 1,000 examples each.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_cli.models import TenantSubscription
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services.webhooks import EventOutcome, WebhookEngine, deferred
from tests.events import Shape
from tests.services.webhooks.conftest import PRICE_BASIC, PRICE_PRO, link_customer
from tests.services.webhooks.lifecycles import Plan, lifecycle, stripe_now
from tests.services.webhooks.test_ordering import (
    _RAM,
    _converging_state,
    _fast_sqlite,
    _reset,
    plans,
    shapes,
)

PROPERTY = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
START = 1_767_225_600


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Database, Database]]:
    with tempfile.TemporaryDirectory(dir=_RAM) as directory:
        first = _fast_sqlite(Path(directory) / "first.db")
        second = _fast_sqlite(Path(directory) / "second.db")
        yield first, second
        first.dispose()
        second.dispose()


def link_then_apply_parked(
    db: Database, *, slug: str = "acme", customer_id: str = "cus_acme"
) -> list[EventOutcome]:
    """Link the tenant to its customer as a command does, then apply the parked events in the
    same transaction (the contract of :func:`deferred.apply_parked`)."""
    with db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug=slug)
        assert tenant is not None and tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id, for_update=True)
        row = row or TenantSubscription(tenant_id=tenant.id)
        row.stripe_customer_id = customer_id
        subscriptions_repo.save(session=session, subscription=row)
        return deferred.apply_parked(session, customer_id, max_failed_attempts=3)


def _shuffled(data: st.DataObject, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return data.draw(st.permutations(events + duplicates))


@PROPERTY
@given(
    plan=plans,
    # distinct seconds: ties of parked events are the next test's subject (apply_parked cannot
    # read Stripe; its callers have just written Stripe's answer, which outranks them all)
    steps=st.lists(st.integers(1, 3 * 86_400), min_size=1, max_size=6),
    event_shapes=shapes,
    data=st.data(),
)
def test_parked_events_converge_wherever_the_link_comes(
    pair: tuple[Database, Database],
    plan: Plan,
    steps: list[int],
    event_shapes: list[Shape],
    data: st.DataObject,
) -> None:
    events = lifecycle(
        plan,
        slug="acme",
        customer_id="cus_acme",
        subscription_id="sub_acme",
        prices=(PRICE_BASIC, PRICE_PRO),
        start=START,
        steps=steps,
        shapes=event_shapes,
        id_prefix="",
        metadata=False,
    )
    delivery = _shuffled(data, events)
    link_at = data.draw(st.integers(0, len(delivery)))
    linked_first, linked_later = pair

    _reset(linked_first, linked=False, manual=False)
    link_customer(linked_first, "acme", "cus_acme", None)
    engine = WebhookEngine(linked_first, live_mode=False, max_failed_attempts=3)
    assert all(engine.process(e, source="replay").status == "processed" for e in events)

    _reset(linked_later, linked=False, manual=False)
    engine = WebhookEngine(linked_later, live_mode=False, max_failed_attempts=3)
    outcomes = [engine.process(e, source="replay") for e in delivery[:link_at]]
    assert {o.status for o in outcomes} <= {"deferred", "skipped"}
    parked = link_then_apply_parked(linked_later)
    assert len(parked) == len({o.event_id for o in outcomes})
    assert all(o.status == "processed" for o in parked)
    rest = [engine.process(e, source="replay") for e in delivery[link_at:]]
    assert {o.status for o in rest} <= {"processed", "skipped"}

    assert _converging_state(linked_later) == _converging_state(linked_first)


def _tie_lifecycle(
    plan: Plan, steps: list[int], event_shapes: list[Shape], proofs: list[bool]
) -> list[dict[str, Any]]:
    return lifecycle(
        plan,
        slug="acme",
        customer_id="cus_acme",
        subscription_id="sub_acme",
        prices=(PRICE_BASIC, PRICE_PRO),
        start=START,
        steps=steps,
        shapes=event_shapes,
        id_prefix="",
        proofs=proofs,
    )


same_second_steps = st.lists(st.sampled_from([0, 0, 0, 1, 3_600, 86_400]), min_size=1, max_size=6)
proof_patterns = st.lists(st.booleans(), min_size=1, max_size=5)


@PROPERTY
@given(
    plan=plans,
    steps=same_second_steps,
    event_shapes=shapes,
    proofs=proof_patterns,
    data=st.data(),
)
def test_same_second_updates_converge_on_stripes_truth(
    pair: tuple[Database, Database],
    plan: Plan,
    steps: list[int],
    event_shapes: list[Shape],
    proofs: list[bool],
    data: st.DataObject,
) -> None:
    events = _tie_lifecycle(plan, steps, event_shapes, proofs)
    delivery = _shuffled(data, events)
    fetch = stripe_now(events)
    states = []
    for db, sequence in zip(pair, (events, delivery), strict=True):
        _reset(db, linked=data.draw(st.booleans()), manual=False)
        engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3, fetch=fetch)
        outcomes = [engine.process(e, source="endpoint") for e in sequence]
        assert {o.status for o in outcomes} <= {"processed", "skipped"}
        assert not [o for o in outcomes if "needs refresh" in o.reason]
        states.append(_converging_state(db))
    assert states[1] == states[0]
    assert states[0]["subscription"]["status"] == (
        "canceled" if plan.deleted else states[0]["subscription"]["status"]
    )
    assert states[0]["trial_notices"] == int(plan.trial and not plan.deleted)


@PROPERTY
@given(
    plan=plans,
    steps=same_second_steps,
    event_shapes=shapes,
    proofs=proof_patterns,
    data=st.data(),
)
def test_without_a_stripe_key_an_unsettled_tie_says_needs_refresh(
    pair: tuple[Database, Database],
    plan: Plan,
    steps: list[int],
    event_shapes: list[Shape],
    proofs: list[bool],
    data: st.DataObject,
) -> None:
    events = _tie_lifecycle(plan, steps, event_shapes, proofs)
    delivery = _shuffled(data, events)
    flagged = []
    states = []
    for db, sequence in zip(pair, (events, delivery), strict=True):
        _reset(db, linked=False, manual=False)
        engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
        outcomes = [engine.process(e, source="file") for e in sequence]
        assert {o.status for o in outcomes} <= {"processed", "skipped"}
        flagged += [o for o in outcomes if o.reason.startswith("needs refresh")]
        states.append(_converging_state(db))
    if not flagged:
        assert states[1] == states[0]
    assert states[0]["trial_notices"] == states[1]["trial_notices"]
