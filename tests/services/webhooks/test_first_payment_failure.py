"""Issue 18, point 3: a subscription whose first payment fails keeps Stripe's statuses.

Stripe creates it ``incomplete`` and leaves it so through failed attempts of its first invoice;
it becomes ``active`` once that invoice is paid, or ``incomplete_expired`` after 23 hours. A
failed first payment never makes it ``past_due`` (which made ``reconcile`` report drift after
every such signup), whatever the order the events arrive in, duplicates included.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from tests.services.webhooks.conftest import PRICE_BASIC, Acme, state
from tests.services.webhooks.lifecycles import first_payment_failure
from tests.services.webhooks.test_ordering import _deliver, pair, shapes

__all__ = ["pair"]  # the two-database fixture of the ordering property

_EXPECTED = {"pending": "incomplete", "paid": "active", "expired": "incomplete_expired"}


def _events(failures: int, outcome: str, steps: list[int], event_shapes: Any) -> list[Any]:
    return first_payment_failure(
        failures=failures,
        outcome=outcome,
        slug="acme",
        customer_id="cus_acme",
        subscription_id="sub_acme",
        price=PRICE_BASIC,
        start=1_767_225_600,
        steps=steps,
        shapes=event_shapes,
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    failures=st.integers(1, 4),
    outcome=st.sampled_from(sorted(_EXPECTED)),
    steps=st.lists(st.integers(0, 7_200), min_size=1, max_size=5),
    event_shapes=shapes,
    linked=st.booleans(),
    data=st.data(),
)
def test_a_failed_first_payment_keeps_stripes_status_in_any_order(
    pair: tuple[Database, Database],
    failures: int,
    outcome: str,
    steps: list[int],
    event_shapes: Any,
    linked: bool,
    data: st.DataObject,
) -> None:
    events = _events(failures, outcome, steps, event_shapes)
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    delivery = data.draw(st.permutations(events + duplicates))

    expected = _deliver(pair, events, delivery, linked=linked, manual=False)

    subscription = expected["subscription"]
    assert subscription["status"] == _EXPECTED[outcome]
    assert subscription["failed_payment_attempts"] == (0 if outcome == "paid" else failures)
    assert expected["tenant"]["status"] == "active"  # never suspended as if it were past_due


@pytest.mark.parametrize("outcome", sorted(_EXPECTED))
def test_each_event_of_a_failed_first_payment_leaves_stripes_status(
    db: Database, acme: Acme, engine: WebhookEngine, outcome: str
) -> None:
    """Step by step, on both databases: after every event the status is one Stripe reported."""
    events = _events(3, outcome, [60], ["current"])
    seen = []
    for event in events:
        assert engine.process(event, source="replay").status == "processed"
        seen.append(state(db)["subscription"]["status"])
    assert "past_due" not in seen
    assert seen[-1] == _EXPECTED[outcome]
