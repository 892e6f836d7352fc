"""Realistic subscription lifecycles as event lists, for the ordering property test and the bench.

A lifecycle is what Stripe would send about one tenant, oldest first: the subscription created
(maybe trialing, with the trial ending), its first invoice paid, renewals failing with a rising
``attempt_count`` (past_due), maybe a successful retry, a plan change, cancel at period end, the
deletion and the customer's deletion; each event in a random API shape.

``metadata=False`` leaves ``metadata.tenant`` off every object (a customer made outside this
tool): then nothing but a link to the customer finds the tenant, and events arriving before it
are parked. ``proofs`` (cycled per event) says which ``*.updated`` events carry
``data.previous_attributes``, as Stripe sends them: the top-level fields the change replaced.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing_cli.gateway import SubscriptionInfo
from billing_cli.services.webhooks.payloads import read_subscription
from billing_cli.timeparse import from_unix
from tests import events as ev

DAY = 86_400


@dataclass(frozen=True)
class Plan:
    """The choices that make one lifecycle (drawn by hypothesis or by a seeded random)."""

    trial: bool = False
    failures: int = 0
    recover: bool = False
    plan_change: bool = False
    cancel_at_period_end: bool = False
    deleted: bool = False
    customer_deleted: bool = False
    email_change: bool = False
    upcoming: bool = False


def lifecycle(
    plan: Plan,
    *,
    slug: str,
    customer_id: str,
    subscription_id: str,
    prices: tuple[str, str],
    start: int,
    steps: list[int],
    shapes: list[ev.Shape],
    id_prefix: str,
    metadata: bool = True,
    proofs: list[bool] | None = None,
) -> list[dict[str, Any]]:
    """The events of one tenant's lifecycle, oldest first.

    ``steps`` are the seconds between consecutive events (cycled; 0 makes same-second events),
    ``shapes`` the API shape of each event (cycled).
    """
    tenant = slug if metadata else None
    out: list[dict[str, Any]] = []
    last: list[dict[str, Any]] = []  # the subscription's fields as of its previous event
    clock = [start]
    price = [prices[0]]
    status = ["trialing" if plan.trial else "active"]
    cancel = [False]
    period = [start, start + 30 * DAY]
    trial_end = start + 14 * DAY if plan.trial else None

    def tick() -> tuple[int, str, ev.Shape]:
        n = len(out)
        clock[0] += steps[n % len(steps)]
        return clock[0], f"evt_{id_prefix}{n:04d}", shapes[n % len(shapes)]

    def sub(type_: str, **extra: Any) -> None:
        created, event_id, shape = tick()
        fields: dict[str, Any] = {
            "status": status[0],
            "price_id": price[0],
            "period_start": period[0],
            "period_end": period[1],
            "trial_end": trial_end,
            "cancel_at_period_end": cancel[0],
        }
        fields.update(extra)
        common: dict[str, Any] = {
            "subscription_id": subscription_id,
            "subscription_created": start,
            "customer_id": customer_id,
            "tenant": tenant,
            "shape": shape,
        }
        event = ev.subscription_event(type_, event_id=event_id, created=created, **common, **fields)
        n = len(out)
        if type_.endswith(".updated") and last and proofs and proofs[n % len(proofs)]:
            before = ev.subscription_event(type_, created=created, **common, **last[0])
            old, new = before["data"]["object"], event["data"]["object"]
            event["data"]["previous_attributes"] = {
                key: old[key] for key in old if old[key] != new.get(key)
            }
        last[:] = [fields]
        out.append(event)

    def invoice(type_: str, *, attempt_count: int, paid: bool) -> None:
        created, event_id, shape = tick()
        out.append(
            ev.invoice_event(
                type_,
                event_id=event_id,
                created=created,
                subscription_id=subscription_id,
                customer_id=customer_id,
                attempt_count=attempt_count,
                paid=paid,
                tenant=tenant,
                shape=shape,
            )
        )

    def customer(type_: str, **extra: Any) -> None:
        created, event_id, shape = tick()
        out.append(
            ev.customer_event(
                type_,
                event_id=event_id,
                created=created,
                customer_id=customer_id,
                tenant=tenant,
                shape=shape,
                **extra,
            )
        )

    sub("customer.subscription.created")
    invoice("invoice.paid", attempt_count=0 if plan.trial else 1, paid=True)
    if plan.trial:
        sub("customer.subscription.trial_will_end")
        status[0] = "active"
        sub("customer.subscription.updated")
        invoice("invoice.paid", attempt_count=1, paid=True)
    if plan.email_change:
        customer("customer.updated", email=f"accounts@{slug}.example", name=slug.upper())
    if plan.upcoming:
        invoice("invoice.upcoming", attempt_count=0, paid=False)
    if plan.failures:
        period[:] = [period[1], period[1] + 30 * DAY]
        for attempt in range(1, plan.failures + 1):
            invoice("invoice.payment_failed", attempt_count=attempt, paid=False)
            if attempt == 1:
                status[0] = "past_due"
                sub("customer.subscription.updated")
        if plan.recover:
            invoice("invoice.payment_succeeded", attempt_count=plan.failures + 1, paid=True)
            status[0] = "active"
            sub("customer.subscription.updated")
    if plan.plan_change:
        price[0] = prices[1]
        sub("customer.subscription.updated")
    if plan.cancel_at_period_end:
        cancel[0] = True
        sub("customer.subscription.updated")
    if plan.deleted:
        status[0] = "canceled"
        sub("customer.subscription.deleted", canceled_at=clock[0])
        if plan.customer_deleted:
            customer("customer.deleted")
    return out


def random_plan(rng: random.Random) -> Plan:
    """A lifecycle plan for the bench: most tenants pay, some fail, a few leave."""
    failures = rng.choice((0, 0, 0, 1, 2, 3, 4))
    deleted = rng.random() < 0.2
    return Plan(
        trial=rng.random() < 0.5,
        failures=failures,
        recover=failures > 0 and rng.random() < 0.6,
        plan_change=rng.random() < 0.3,
        cancel_at_period_end=rng.random() < 0.2,
        deleted=deleted,
        customer_deleted=deleted and rng.random() < 0.5,
        email_change=rng.random() < 0.2,
        upcoming=rng.random() < 0.5,
    )


def stripe_now(events: list[dict[str, Any]]) -> Callable[[str], SubscriptionInfo]:
    """A fake ``Gateway.retrieve_subscription``: each subscription as of its last event."""
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["type"].startswith("customer.subscription."):
            latest[event["data"]["object"]["id"]] = event["data"]["object"]

    def fetch(subscription_id: str) -> SubscriptionInfo:
        facts = read_subscription(latest[subscription_id])
        return SubscriptionInfo(
            id=facts.id,
            customer_id=facts.customer_id or "",
            status=facts.status,
            price_id=facts.price_id,
            item_id=None,
            current_period_start=facts.period_start,
            current_period_end=facts.period_end,
            trial_end=facts.trial_end,
            cancel_at_period_end=facts.cancel_at_period_end,
            canceled_at=facts.canceled_at,
            latest_invoice_id=None,
            created=from_unix(facts.created),
        )

    return fetch


def first_payment_failure(
    *,
    failures: int,
    outcome: str,
    slug: str,
    customer_id: str,
    subscription_id: str,
    price: str,
    start: int,
    steps: list[int],
    shapes: list[ev.Shape],
) -> list[dict[str, Any]]:
    """What Stripe sends when a subscription's first payment fails, oldest first.

    The subscription is created ``incomplete``, its first invoice fails ``failures`` times
    (Stripe leaves the status ``incomplete``: no ``customer.subscription.updated`` follows),
    then ``outcome``: ``pending`` (nothing more yet), ``paid`` (the invoice is paid and the
    subscription turns ``active``) or ``expired`` (23 hours pass: ``incomplete_expired``).
    """
    # (event type, subscription status or the invoice's attempt_count)
    script: list[tuple[str, str | int]] = [("customer.subscription.created", "incomplete")]
    script += [("invoice.payment_failed", attempt) for attempt in range(1, failures + 1)]
    if outcome == "paid":
        script += [
            ("invoice.payment_succeeded", failures + 1),
            ("customer.subscription.updated", "active"),
        ]
    elif outcome == "expired":
        script.append(("customer.subscription.updated", "incomplete_expired"))
    ids: dict[str, Any] = {
        "subscription_id": subscription_id,
        "customer_id": customer_id,
        "tenant": slug,
    }
    out: list[dict[str, Any]] = []
    created = start
    for n, (type_, what) in enumerate(script):
        created += steps[n % len(steps)]
        at: dict[str, Any] = {
            "event_id": f"evt_first{n:04d}",
            "created": created,
            "shape": shapes[n % len(shapes)],
        }
        if isinstance(what, int):
            paid = type_ != "invoice.payment_failed"
            out.append(ev.invoice_event(type_, attempt_count=what, paid=paid, **ids, **at))
        else:
            snapshot: dict[str, Any] = {"status": what, "price_id": price, "period_start": start}
            out.append(
                ev.subscription_event(type_, subscription_created=start, **snapshot, **ids, **at)
            )
    return out
