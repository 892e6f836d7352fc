"""``doctor --tenant``: "tenant not suspended" and "subscription not created", for one tenant.

Is it linked to a Stripe customer; does its local subscription row agree with Stripe's (the
comparison of ``subs show``,
:func:`billing_cli.services.subscriptions.lifecycle.show_subscription`);
which events about it reached the ledger and what processing did with them; and why it is or
is not suspended, according to the policy the webhook engine applies
(:func:`billing_cli.services.webhooks.policy.billing_suspension`); and, for a tenant that owes
money (suspended, past due or never paid), which invoice is open and the command that pays it.

A ledger row whose payload cannot be read (a malformed invoice) is skipped, never fatal: the
doctor is what an operator runs when things are broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billing_cli.errors import GatewayError
from billing_cli.gateway import Gateway
from billing_cli.money import format_money
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services.doctor.checklist import DoctorReport
from billing_cli.services.subscriptions.lifecycle import show_subscription
from billing_cli.services.webhooks.payloads import read_invoice
from billing_cli.services.webhooks.policy import billing_suspension
from billing_cli.timeparse import iso

RECENT_EVENTS_SCANNED = 1000
EVENTS_SHOWN = 5
# A subscription in one of these owes its open invoice (incomplete: the first one never paid).
OWING_STATUSES = frozenset({"past_due", "unpaid", "incomplete"})
RECOVER_FIX = "billing payments recover {slug} --payment-method pm_..."
PAY_FIX = "billing invoices pay {invoice}"
REPLAY_FIX = (
    "`billing webhooks replay --since 72h` applies what was missed; "
    "compare with `billing subs show {slug}`"
)


@dataclass(frozen=True)
class _TenantState:
    """What the checks need, read in one short transaction (no Stripe call inside it)."""

    status: str
    suspended_by: str | None
    suspension_reason: str | None
    customer_id: str | None
    subscription_id: str | None
    subscription_status: str | None
    failed_attempts: int
    events: list[tuple[str, str, str, str | None]]  # id, type, status, error


def check_tenant(
    report: DoctorReport,
    db: Database,
    gateway: Gateway | None,
    *,
    slug: str,
    max_failed_attempts: int,
) -> None:
    """Link, subscription against Stripe, recent events, and the suspension explained."""
    state = _read(db, slug)
    if state is None:
        report.add("tenant", "fail", f"no tenant {slug!r}", "`billing tenants list` shows them")
        return
    if state.customer_id is None:
        report.add(
            "tenant customer",
            "fail",
            f"{slug} is not linked to a Stripe customer",
            f"billing subs create {slug} --plan PLAN",
        )
    else:
        report.add("tenant customer", "ok", f"linked to {state.customer_id}")
    _check_subscription(report, db, gateway, slug, state)
    _check_events(report, slug, state)
    _check_suspension(report, slug, state, max_failed_attempts)
    _check_open_invoice(report, gateway, slug, state)


def _read(db: Database, slug: str) -> _TenantState | None:
    with db.read() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug=slug)
        if tenant is None or tenant.id is None:
            return None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        customer = row.stripe_customer_id if row else None
        subscription = row.stripe_subscription_id if row else None
        ids = {i for i in (customer, subscription) if i}
        events = []
        for event in events_repo.list_recent(session=session, limit=RECENT_EVENTS_SCANNED):
            if ids and _mentions(event.payload or {}, ids):
                events.append((event.stripe_event_id, event.type, event.status, event.error))
        return _TenantState(
            status=tenant.status,
            suspended_by=tenant.suspended_by,
            suspension_reason=tenant.suspension_reason,
            customer_id=customer,
            subscription_id=subscription,
            subscription_status=row.status if row else None,
            failed_attempts=row.failed_payment_attempts if row else 0,
            events=events[:EVENTS_SHOWN],
        )


def _mentions(payload: Mapping[str, Any], ids: set[str]) -> bool:
    """Whether an event's object is, or belongs to, the tenant's customer or subscription."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        return False
    if obj.get("id") in ids or obj.get("customer") in ids:
        return True
    if obj.get("object") != "invoice":
        return False
    try:
        return read_invoice(obj).subscription_id in ids
    except (ValueError, TypeError, KeyError, AttributeError):
        return False  # an unreadable row (e.g. a malformed attempt_count) is not the tenant's


def _check_subscription(
    report: DoctorReport, db: Database, gateway: Gateway | None, slug: str, state: _TenantState
) -> None:
    if state.subscription_id is None:
        report.add(
            "tenant subscription",
            "warn",
            f"{slug} has no subscription",
            f"billing subs create {slug} --plan PLAN",
        )
        return
    if gateway is None:
        report.add(
            "tenant subscription",
            "warn",
            f"{state.subscription_id} is {state.subscription_status} locally; "
            "Stripe not checked (see the stripe check)",
        )
        return
    try:
        compared = show_subscription(db, gateway, tenant_slug=slug)
    except GatewayError as error:
        report.add("tenant subscription", "fail", str(error), f"billing subs show {slug}")
        return
    differences: list[str] = compared["differences"]
    if differences:
        local, remote = compared["local"], compared["stripe"]
        listed = "; ".join(
            f"{key} here {local.get(key)!r}, Stripe {remote.get(key)!r}" for key in differences
        )
        report.add(
            "tenant subscription",
            "fail",
            f"the local row differs from Stripe: {listed}",
            REPLAY_FIX.format(slug=slug),
        )
    else:
        report.add(
            "tenant subscription",
            "ok",
            f"{state.subscription_id} is {state.subscription_status}, as in Stripe",
        )


def _check_events(report: DoctorReport, slug: str, state: _TenantState) -> None:
    if not state.events:
        report.add(
            "tenant events",
            "warn",
            f"no event about {slug}'s customer or subscription in the ledger",
            "`billing doctor` without --tenant checks the endpoint and the deliveries",
        )
        return
    shown = "; ".join(
        f"{event_id} {event_type} {status}" + (f" ({error})" if error else "")
        for event_id, event_type, status, error in state.events
    )
    if any(status == "failed" for _, _, status, _ in state.events):
        report.add("tenant events", "fail", f"latest: {shown}", "billing webhooks retry-failed")
    else:
        report.add("tenant events", "ok", f"latest: {shown}")


def _check_suspension(
    report: DoctorReport, slug: str, state: _TenantState, max_failed_attempts: int
) -> None:
    """Explain the tenant's status with the engine's own rule."""
    wanted = billing_suspension(
        status=state.subscription_status,
        attempts=state.failed_attempts,
        max_attempts=max_failed_attempts,
    )
    facts = (
        f"subscription {state.subscription_status or 'none'}, "
        f"{state.failed_attempts} of {max_failed_attempts} failed payment attempts"
    )
    if state.status == "suspended" and state.suspended_by == "manual":
        report.add(
            "tenant suspension",
            "ok",
            f"suspended by hand ({state.suspension_reason}); payments never lift a manual hold"
            f"; {facts}",
        )
    elif state.status == "suspended":
        if wanted:
            report.add(
                "tenant suspension", "ok", f"suspended, as the policy wants: {wanted} ({facts})"
            )
        else:
            report.add(
                "tenant suspension",
                "fail",
                f"suspended by billing, but the policy wants it active ({facts})",
                f"{REPLAY_FIX.format(slug=slug)}; or `billing tenants reactivate {slug}`",
            )
    elif wanted:
        report.add(
            "tenant suspension",
            "fail",
            f"active, but the policy would suspend it: {wanted} ({facts})",
            REPLAY_FIX.format(slug=slug),
        )
    else:
        report.add("tenant suspension", "ok", f"active: the policy does not suspend it ({facts})")


def _check_open_invoice(
    report: DoctorReport, gateway: Gateway | None, slug: str, state: _TenantState
) -> None:
    """For a tenant that owes money: the oldest open invoice and the command that pays it.

    A failed attempt on it means the card was declined: the fix is a new card, which
    ``payments recover`` attaches, makes the card that pays, and pays with. An invoice never
    attempted is paid with ``invoices pay``.
    """
    owing = state.status == "suspended" and state.suspended_by == "billing"
    if not owing and state.subscription_status not in OWING_STATUSES:
        return
    if gateway is None or state.customer_id is None:
        report.add(
            "tenant open invoice",
            "warn",
            f"{slug} owes money (subscription {state.subscription_status or 'none'}); "
            "Stripe not checked, so the open invoice is unknown",
            f"billing invoices list {slug}",
        )
        return
    try:
        invoices = gateway.list_invoices(customer_id=state.customer_id, status="open", limit=100)
    except GatewayError as error:
        report.add("tenant open invoice", "warn", f"could not list invoices: {error}")
        return
    if not invoices:
        report.add("tenant open invoice", "ok", f"{slug} has no open invoice in Stripe")
        return
    oldest = min(invoices, key=lambda i: (i.created is None, iso(i.created), i.id))
    amount = format_money(oldest.amount_remaining, oldest.currency)
    created = f", created {iso(oldest.created)}" if oldest.created else ""
    attempts = f", {oldest.attempt_count} failed attempt(s)" if oldest.attempt_count else ""
    more = f" ({len(invoices)} open in all)" if len(invoices) > 1 else ""
    fix = (
        RECOVER_FIX.format(slug=slug) if oldest.attempt_count else PAY_FIX.format(invoice=oldest.id)
    )
    report.add(
        "tenant open invoice",
        "fail",
        f"{oldest.id} is open: {amount} due{created}{attempts}{more}",
        fix,
    )
