"""Same-second ties between two snapshots of one subscription, settled by Stripe's truth.

Stripe stamps events to the second and sends several ``customer.subscription.updated`` about
one subscription in one second (creation then first payment; trial end then its invoice). Two
such events have the same order key up to their ids (:func:`.policy.same_moment`), and the ids
are random: ordering by them picks a random winner. So when an event ties the stored snapshot
and says something different, the order is taken from Stripe, never from the ids:

1. *The payload proves it.* An ``*.updated`` event's ``data.previous_attributes`` are the
   values its change replaced; laid over its object they give the subscription just before it.
   If that state is exactly the other snapshot, the event came right after it. Both directions
   are checked (the stored event's payload is in the ledger).
2. *Stripe says it.* Otherwise, where the engine may read Stripe (the endpoint, replay from the
   Events API or a file replay with a key), the subscription is read and written as a write
   from Stripe's answer, keyed :func:`.policy.truth_key` (it outranks the tie's events and
   loses to any later one). The handler raises :class:`NeedsTruth`; the engine rolls back, reads
   Stripe with no transaction open, and applies the event again with the answer.
3. *Nobody can tell.* A replay that cannot read Stripe keeps the stored snapshot and says the
   subscription needs a refresh (``billing subs refresh <tenant>`` or ``billing reconcile
   --fix`` reads Stripe and heals it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from billing_cli.gateway import SubscriptionInfo
from billing_cli.models import utcnow
from billing_cli.repository import ledger as ledger_repo
from billing_cli.repository.webhook_rows import SubscriptionRecord
from billing_cli.services.webhooks import policy
from billing_cli.services.webhooks.payloads import ParsedEvent, SubscriptionFacts, read_subscription

Snapshot = tuple[str | None, str | None, Any, Any, Any, bool, Any]


class NeedsTruth(Exception):
    """A tie only Stripe can settle: read this subscription, then apply the event again."""

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"same-second tie on {subscription_id} needs Stripe's answer")
        self.subscription_id = subscription_id


@dataclass(frozen=True)
class Settled:
    """Which snapshot a tie leaves in the register, and why (for the outcome's reason).

    ``winner`` is ``incoming`` (write the event), ``stored`` (keep the row), ``stripe`` (write
    ``truth`` under ``key``) or ``unresolved`` (keep the row; it needs a refresh).
    """

    winner: str
    note: str
    truth: SubscriptionFacts | None = None
    key: str | None = None


def row_snapshot(row: SubscriptionRecord) -> Snapshot:
    """What the snapshot register holds, in the form :func:`facts_snapshot` gives an event's."""
    return (
        row.stripe_status,
        row.stripe_price_id,
        row.current_period_start,
        row.current_period_end,
        row.trial_end,
        row.cancel_at_period_end,
        row.canceled_at,
    )


def facts_snapshot(facts: SubscriptionFacts) -> Snapshot:
    return (
        facts.status,
        facts.price_id,
        facts.period_start,
        facts.period_end,
        facts.trial_end,
        facts.cancel_at_period_end,
        facts.canceled_at,
    )


def state_before(payload: Mapping[str, Any]) -> Snapshot | None:
    """The subscription just before an event, from ``data.previous_attributes``; None when the
    event has none (a ``created``) or they cannot be read."""
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return None
    previous, obj = data.get("previous_attributes"), data.get("object")
    if not isinstance(previous, Mapping) or not previous or not isinstance(obj, Mapping):
        return None
    try:
        return facts_snapshot(read_subscription({**obj, **previous}))
    except ValueError:
        return None


def facts_from_stripe(info: SubscriptionInfo, *, created: int) -> SubscriptionFacts:
    """Stripe's answer as the facts an event would carry (``created`` if Stripe gave none)."""
    return SubscriptionFacts(
        id=info.id,
        created=int(info.created.timestamp()) if info.created else created,
        customer_id=info.customer_id,
        status=info.status,
        price_id=info.price_id,
        period_start=info.current_period_start,
        period_end=info.current_period_end,
        trial_end=info.trial_end,
        cancel_at_period_end=info.cancel_at_period_end,
        canceled_at=info.canceled_at,
        tenant_slug=None,
    )


def settle(
    session: Session,
    event: ParsedEvent,
    *,
    row: SubscriptionRecord,
    facts: SubscriptionFacts,
    truths: Mapping[str, SubscriptionInfo],
    can_fetch: bool,
    slug: str,
) -> Settled:
    """Settle a tie between ``event`` and the row's stored snapshot (see the module docstring).

    Raises :class:`NeedsTruth` when only Stripe can tell and ``can_fetch`` allows asking.
    """
    stored_key = row.subscription_event_key
    assert stored_key is not None
    stored_id = policy.snapshot_event_id(stored_key)
    if state_before(event.payload) == row_snapshot(row):
        return Settled("incoming", f"same-second tie with {stored_id}: this event follows it")
    stored_payload = ledger_repo.payload_of(session=session, event_id=stored_id)
    if stored_payload is not None and state_before(stored_payload) == facts_snapshot(facts):
        return Settled("stored", f"same-second tie with {stored_id}: that event follows this one")
    truth = truths.get(facts.id)
    if truth is not None:
        settled = facts_from_stripe(truth, created=facts.created)
        key = policy.truth_key(
            subscription_created=settled.created,
            status=settled.status,
            second=event.created,
            fetched_at=_seconds(utcnow()),
        )
        return Settled(
            "stripe",
            f"same-second tie with {stored_id}: settled by Stripe ({settled.status})",
            settled,
            key,
        )
    if can_fetch:
        raise NeedsTruth(facts.id)
    return Settled(
        "unresolved",
        f"needs refresh: same-second tie with {stored_id} that neither payload settles; "
        f"kept {stored_id}; run `billing subs refresh {slug}` (or `billing reconcile --fix`)",
    )


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())
