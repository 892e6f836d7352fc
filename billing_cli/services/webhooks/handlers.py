"""What each handled event type does to the tenant database, inside the engine's transaction.

Every handler finds the tenant (by subscription id, then customer id, then the object's
``metadata.tenant`` slug, which this tool sets on the customers and subscriptions it creates),
writes the field group its event owns only when the event is newer than what the group already
holds (see :mod:`.policy` for why that makes delivery order and duplicates irrelevant), then
re-derives the effective status, the failed attempts and the tenant's billing suspension.
Suspensions and reactivations go through :func:`billing_cli.services.tenants.rules.suspend` /
``reactivate`` so they write the same audit entry and notification as a person's would, with
operator ``webhook:<event id>``.

The row is read into a plain :class:`~billing_cli.repository.webhook_rows.SubscriptionRecord`
(one locked, joined SELECT with its tenant) and written back with one UPDATE of the columns that
changed; ORM objects are loaded only on the rare paths that audit (suspension, reactivation,
name/e-mail sync). The before/after views of :class:`~billing_cli.models.Change` are built only
when the caller asked for them (``Context.collect_changes``: dry runs and replays).

On PostgreSQL the engine leaves its ledger claim pending (``Context.claim``) and the first
locked read of :func:`resolve` carries it (one round trip for both); that read raises
``ClaimTaken`` if the event id is already recorded. So every handler calls :func:`resolve`
before any other database work, and a handler that returns before resolving changes nothing
(the engine then runs the claim itself).

An event that names a customer no tenant has (and no tenant slug that finds one) is *parked*:
the handler answers ``deferred`` with the customer id, the engine records it so, and applies it
when a tenant gets linked to that customer (:mod:`.deferred`). A handler that links a tenant to
a customer (a row gets a ``stripe_customer_id`` it did not have) lists it in ``Context.linked``
for the engine to apply that customer's parked events in the same transaction.

A same-second tie between two snapshots of one subscription is settled by :mod:`.ties`.
A trial-ending notice is owed only while its subscription is not canceled, in every delivery
order: ``trial_will_end`` notifies only if, once applied, the row's snapshot is that
subscription and not canceled, and any news of the subscription's cancellation withdraws its
unsent notices (so delivered before or after the deletion, none is left to send).

An invoice of a subscription other than the row's current one is not dropped: it goes into the
payment register tagged with its subscription and counts once (and only while) that
subscription is the snapshot's (see :mod:`.policy`). ``customer.updated`` syncs the tenant's
name and e-mail from the Stripe customer (the customers are created from them, and support staff
edit the billing e-mail in the Dashboard); only non-empty values are copied, with an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlmodel import Session

from billing_cli.gateway import SubscriptionInfo
from billing_cli.models import Change, Invocation, Tenant, utcnow
from billing_cli.repository import ledger as ledger_repo
from billing_cli.repository import webhook_rows as rows_repo
from billing_cli.repository.ledger import PendingClaim
from billing_cli.repository.webhook_rows import SubscriptionRecord, TenantRecord
from billing_cli.services import audit
from billing_cli.services.subscriptions import paused_access
from billing_cli.services.tenants import rules as tenants
from billing_cli.services.views import tenant_view
from billing_cli.services.webhooks import policy, ties
from billing_cli.services.webhooks.payloads import (
    ParsedEvent,
    SubscriptionFacts,
    read_customer,
    read_invoice,
    read_subscription,
)
from billing_cli.services.webhooks.validation import customer_contact
from billing_cli.timeparse import iso

log = logging.getLogger("billing.webhooks")

# The row's fields a person sees (views.subscription_view plus plan id and price): a change to
# any of them bumps ``updated_at`` and is reported; keys and last_event_created are bookkeeping.
_VIEW_FIELDS = (
    "stripe_customer_id",
    "stripe_subscription_id",
    "status",
    "current_period_start",
    "current_period_end",
    "trial_end",
    "cancel_at_period_end",
    "canceled_at",
    "failed_payment_attempts",
    "plan_id",
    "stripe_price_id",
)


@dataclass
class Context:
    """One event being applied in one transaction."""

    session: Session
    event: ParsedEvent
    invocation: Invocation
    max_failed_attempts: int
    collect_changes: bool = True
    claim: PendingClaim | None = None  # the engine's claim, carried by the first locked read
    truths: Mapping[str, SubscriptionInfo] = field(default_factory=dict)  # read from Stripe
    can_fetch: bool = False  # a tie may ask the engine to read Stripe (ties.NeedsTruth)
    paused_access: str = "keep"  # BILLING_PAUSED_ACCESS, see services.paused_access
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)  # customers this event linked to a tenant
    needs_refresh: bool = False


@dataclass(frozen=True)
class HandlerResult:
    status: str  # "processed" | "ignored" | "deferred"
    reason: str = ""
    customer_id: str | None = None  # the customer a deferred event waits for
    keep_reason: bool = False  # store the reason on the ledger row although processed


Handler = Callable[[Context], HandlerResult]
Found = tuple[SubscriptionRecord, TenantRecord]


def resolve(
    ctx: Context, *, subscription_id: str | None, customer_id: str | None, slug: str | None
) -> Found | None:
    """The tenant's row (locked), found by subscription id, customer id, then tenant slug.

    A tenant found by slug that has no row yet gets a new record, inserted by :func:`_finish`.
    The first read carries ``ctx.claim`` (later ones see it settled).
    """
    session, claim = ctx.session, ctx.claim
    found = None
    if subscription_id:
        found = rows_repo.lock_by_subscription(
            session=session, subscription_id=subscription_id, claim=claim
        )
    if found is None and customer_id:
        found = rows_repo.lock_by_customer(session=session, customer_id=customer_id, claim=claim)
    if found is not None:
        return found
    if slug:
        by_slug = rows_repo.lock_by_tenant_slug(session=session, slug=slug, claim=claim)
        if by_slug is not None:
            record, tenant = by_slug
            return (record or SubscriptionRecord(tenant_id=tenant.id)), tenant
    if customer_id:  # a late event about a customer ``customer.deleted`` removed from its row
        return rows_repo.lock_by_deleted_customer(
            session=session, customer_id=customer_id, claim=claim
        )
    return None


def find_or_park(
    ctx: Context,
    *,
    kind: str,
    object_id: str | None,
    subscription_id: str | None,
    customer_id: str | None,
    slug: str | None,
) -> Found | HandlerResult:
    """:func:`resolve`, or the result that parks the event (it names a customer) or ignores it.

    On PostgreSQL the customer's advisory lock is taken before parking and the lookup repeated:
    a transaction linking that customer either committed first (the repeat finds the tenant) or
    waits for this one and then sees the parked event (:func:`.deferred.apply_parked`).
    """
    found = resolve(ctx, subscription_id=subscription_id, customer_id=customer_id, slug=slug)
    if found is not None:
        return found
    unknown = _unknown(kind, object_id, customer_id, slug)
    if not customer_id:
        return HandlerResult("ignored", unknown)
    if ledger_repo.lock_customer(session=ctx.session, customer_id=customer_id):
        found = resolve(ctx, subscription_id=subscription_id, customer_id=customer_id, slug=slug)
        if found is not None:
            return found
    return HandlerResult(
        "deferred",
        f"parked until a tenant is linked to customer {customer_id} ({unknown})",
        customer_id=customer_id,
    )


def _unknown(kind: str, object_id: str | None, customer_id: str | None, slug: str | None) -> str:
    return (
        f"unknown {kind} {object_id or '(no id)'}: no tenant has it, customer "
        f"{customer_id or '(none)'} or metadata tenant {slug or '(none)'}"
    )


def _row_view(values: Mapping[str, Any]) -> dict[str, Any]:
    """The row as ``Change.before``/``after`` show it (views.subscription_view without the plan
    slug, plus plan id and price)."""
    return {
        "stripe_customer_id": values["stripe_customer_id"],
        "stripe_subscription_id": values["stripe_subscription_id"],
        "status": values["status"],
        "current_period_start": iso(values["current_period_start"]),
        "current_period_end": iso(values["current_period_end"]),
        "trial_end": iso(values["trial_end"]),
        "cancel_at_period_end": values["cancel_at_period_end"],
        "canceled_at": iso(values["canceled_at"]),
        "failed_payment_attempts": values["failed_payment_attempts"],
        "last_event_created": values["last_event_created"],
        "plan_id": values["plan_id"],
        "stripe_price_id": values["stripe_price_id"],
    }


def on_subscription(ctx: Context) -> HandlerResult:
    """customer.subscription.created/updated/deleted/trial_will_end: the snapshot register."""
    facts = read_subscription(ctx.event.obj)
    found = find_or_park(
        ctx,
        kind="subscription",
        object_id=facts.id,
        subscription_id=facts.id,
        customer_id=facts.customer_id,
        slug=facts.tenant_slug,
    )
    if isinstance(found, HandlerResult):
        return found
    row, tenant = found
    before = row.values()
    event = ctx.event
    key = policy.subscription_key(
        subscription_created=facts.created,
        event_id=event.id,
        created=event.created,
        event_type=event.type,
        status=facts.status,
    )
    canceled = {facts.id} if facts.status == "canceled" or event.type.endswith("deleted") else set()
    if policy.same_moment(key, row.subscription_event_key) and ties.row_snapshot(
        row
    ) != ties.facts_snapshot(facts):
        settled = ties.settle(
            ctx.session,
            event,
            row=row,
            facts=facts,
            truths=ctx.truths,
            can_fetch=ctx.can_fetch,
            slug=tenant.slug,
        )
        ctx.notes.append(settled.note)
        ctx.needs_refresh = settled.winner == "unresolved"
        if settled.winner == "incoming":
            _write_snapshot(
                ctx, row, facts, key, pause_collection=paused_access.pause_of(ctx.event.obj)
            )
        elif settled.winner == "stripe":
            assert settled.truth is not None and settled.key is not None
            _write_snapshot(
                ctx,
                row,
                settled.truth,
                settled.key,
                pause_collection=row.pause_collection,
            )
            if settled.truth.status == "canceled":
                canceled.add(settled.truth.id)
    elif policy.is_newer(key, row.subscription_event_key):
        _write_snapshot(
            ctx, row, facts, key, pause_collection=paused_access.pause_of(ctx.event.obj)
        )
    elif policy.snapshot_subscription_created(row.subscription_event_key) > facts.created:
        ctx.notes.append(f"older than the tenant's subscription {row.stripe_subscription_id}")
    else:
        ctx.notes.append("older than the subscription state already applied")
    policy.refresh(row)
    for subscription_id in canceled:
        _withdraw_trial_notices(ctx, tenant, subscription_id)
    if (
        event.type == "customer.subscription.trial_will_end"
        and row.stripe_subscription_id == facts.id
        and row.status != "canceled"
    ):
        payload = {"subscription": facts.id, "trial_end": iso(facts.trial_end)}
        _notify(ctx, tenant, "trial_will_end", payload)
    return _finish(ctx, row, tenant, before)


def _write_snapshot(
    ctx: Context,
    row: SubscriptionRecord,
    facts: SubscriptionFacts,
    key: str,
    *,
    pause_collection: str | None,
) -> None:
    """Write a snapshot (an event's or Stripe's answer) into the register and its fields.

    ``pause_collection`` is the snapshot's ``pause_collection.behavior`` (BILLING_PAUSED_ACCESS
    reads it); Stripe's answer to a tie does not carry it, so that path keeps the stored one.
    """
    previous_price = row.stripe_price_id
    policy.write_snapshot(
        row, key=key, subscription_id=facts.id, status=facts.status, price_id=facts.price_id
    )
    if facts.customer_id and not policy.customer_deleted(row.customer_event_key):
        row.stripe_customer_id = facts.customer_id
    if facts.price_id != previous_price or row.plan_id is None:
        plan_id = (
            rows_repo.plan_id_for_price(session=ctx.session, price_id=facts.price_id)
            if facts.price_id
            else None
        )
        row.plan_id = plan_id
        if plan_id is None:
            ctx.notes.append(f"price {facts.price_id} matches no plan")
    row.current_period_start = facts.period_start
    row.current_period_end = facts.period_end
    row.trial_end = facts.trial_end
    row.cancel_at_period_end = facts.cancel_at_period_end
    row.canceled_at = facts.canceled_at
    row.pause_collection = pause_collection


def _withdraw_trial_notices(ctx: Context, tenant: TenantRecord, subscription_id: str) -> None:
    """A canceled subscription is owed no trial-ending notice: drop its unsent ones."""
    withdrawn = rows_repo.withdraw_notifications(
        session=ctx.session,
        tenant_id=tenant.id,
        kind="trial_will_end",
        subscription_id=subscription_id,
    )
    if withdrawn:
        ctx.notes.append(f"withdrew {withdrawn} unsent trial_will_end notification(s)")


def on_invoice(ctx: Context) -> HandlerResult:
    """invoice.paid/payment_succeeded/payment_failed: the payment register; upcoming: notify."""
    facts = read_invoice(ctx.event.obj)
    if facts.subscription_id is None:
        return HandlerResult("ignored", f"invoice {facts.id} is not for a subscription")
    found = find_or_park(
        ctx,
        kind="subscription",
        object_id=facts.subscription_id,
        subscription_id=facts.subscription_id,
        customer_id=facts.customer_id,
        slug=facts.tenant_slug,
    )
    if isinstance(found, HandlerResult):
        return found
    row, tenant = found
    before = row.values()
    event = ctx.event
    money = {"amount_due": facts.amount_due, "currency": facts.currency, "invoice": facts.id}
    if event.type == "invoice.upcoming":
        _notify(ctx, tenant, "upcoming_invoice", {**money, "subscription": facts.subscription_id})
        return _finish(ctx, row, tenant, before)
    paid = event.type != "invoice.payment_failed"
    key = policy.payment_key(
        subscription_id=facts.subscription_id,
        event_id=event.id,
        created=event.created,
        invoice_created=facts.created,
        invoice_period_end=facts.period_end,
        paid=paid,
        attempt_count=facts.attempt_count,
    )
    if policy.is_newer(key, row.payment_event_key):
        row.payment_event_key = key
        if row.stripe_subscription_id is None:
            row.stripe_subscription_id = facts.subscription_id
        deleted = policy.customer_deleted(row.customer_event_key)
        if facts.customer_id and row.stripe_customer_id is None and not deleted:
            row.stripe_customer_id = facts.customer_id
        if row.stripe_subscription_id != facts.subscription_id:
            ctx.notes.append(
                f"for subscription {facts.subscription_id}, not the tenant's current "
                f"{row.stripe_subscription_id}: counts only once that one is replaced by it"
            )
        if not paid:
            payload = {**money, "attempt_count": policy.payment_attempts(key)}
            payload["next_payment_attempt"] = facts.next_payment_attempt
            _notify(ctx, tenant, "payment_failed", payload)
    else:
        ctx.notes.append("older than the payment state already applied")
    return _finish(ctx, row, tenant, before)


def on_customer(ctx: Context) -> HandlerResult:
    """customer.created: link; updated: link, sync name and e-mail; deleted: forget the id.

    A ``customer.created`` found by its tenant metadata links the tenant to the customer when
    it has none yet (so the customer's parked events apply); it changes nothing else.
    """
    facts = read_customer(ctx.event.obj)
    found = find_or_park(
        ctx,
        kind="customer",
        object_id=facts.id,
        subscription_id=None,
        customer_id=facts.id,
        slug=facts.tenant_slug,
    )
    if isinstance(found, HandlerResult):
        return found
    row, tenant = found
    event = ctx.event
    before = row.values()
    if event.type == "customer.created":
        log.info("customer %s created for tenant %s", facts.id, tenant.slug)
        if row.stripe_customer_id is not None or policy.customer_deleted(row.customer_event_key):
            return HandlerResult("processed", f"customer of tenant {tenant.slug}; nothing to do")
        row.stripe_customer_id = facts.id
        return _finish(ctx, row, tenant, before)
    if facts.deleted or event.type == "customer.deleted":
        row.customer_event_key = policy.customer_register(row.customer_event_key, deleted=True)
        if row.stripe_customer_id in (None, facts.id):
            row.stripe_customer_id = None
            row.deleted_customer_id = facts.id
        return _finish(ctx, row, tenant, before)
    key = policy.customer_key(event_id=event.id, created=event.created)
    cleaned = False
    if not policy.customer_update_is_newer(key, row.customer_event_key):
        ctx.notes.append("older than the customer state already applied")
    else:
        row.customer_event_key = policy.customer_register(row.customer_event_key, update=key)
        if not policy.customer_deleted(row.customer_event_key):
            row.stripe_customer_id = row.stripe_customer_id or facts.id
        contact = customer_contact(name=facts.name, email=facts.email)
        ctx.notes.extend(contact.notes)
        cleaned = bool(contact.notes)
        tenant = _sync_tenant(ctx, tenant, name=contact.name, email=contact.email)
    result = _finish(ctx, row, tenant, before)
    # What was cleaned or refused stays on the ledger row (`webhooks show`), as the README says.
    return replace(result, keep_reason=True) if cleaned else result


def _sync_tenant(
    ctx: Context, record: TenantRecord, *, name: str | None, email: str | None
) -> TenantRecord:
    synced = " and ".join(
        what
        for what, new, old in (("name", name, record.name), ("email", email, record.email))
        if new and new != old
    )
    if not synced:
        return record
    tenant = _load_tenant(ctx, record)
    before = tenant_view(tenant)
    tenant.name = name or tenant.name
    tenant.email = email or tenant.email
    after = tenant_view(tenant)
    ctx.session.add(tenant)
    target = f"tenant:{tenant.slug}"
    audit.record(
        ctx.session,
        invocation=ctx.invocation,
        target=target,
        tenant_slug=tenant.slug,
        outcome=f"synced {synced} from Stripe",
        before=before,
        after=after,
    )
    if ctx.collect_changes:
        ctx.changes.append(
            Change(
                target=target,
                action="sync",
                before=before,
                after=after,
                dry_run=ctx.invocation.dry_run,
                message=f"synced tenant {tenant.slug}'s {synced} from Stripe",
            )
        )
    return replace(record, name=tenant.name, email=tenant.email)


def _load_tenant(ctx: Context, record: TenantRecord) -> Tenant:
    """The ORM tenant, for the paths that audit it (read and locked by :func:`resolve`)."""
    return rows_repo.attach_tenant(session=ctx.session, record=record)


def _notify(ctx: Context, tenant: TenantRecord, kind: str, payload: dict[str, Any]) -> None:
    rows_repo.add_notification(
        session=ctx.session,
        tenant_id=tenant.id,
        kind=kind,
        payload={**payload, "event": ctx.event.id},
        created_at=utcnow(),
    )
    ctx.notes.append(f"notification {kind} for {tenant.slug}")


def _finish(
    ctx: Context, row: SubscriptionRecord, tenant: TenantRecord, before: dict[str, Any]
) -> HandlerResult:
    """Re-derive the effective fields and the tenant's suspension; write what changed.

    ``last_event_created`` is the newest event that reached the row, applied or stale, so it
    too is the same whatever the delivery order.
    """
    policy.refresh(row)
    row.last_event_created = max(row.last_event_created or 0, ctx.event.created)
    after = row.values()
    linked = after["stripe_customer_id"]
    if linked is not None and linked != before["stripe_customer_id"]:
        ctx.linked.append(linked)  # the engine applies its parked events next
    if any(before[name] != after[name] for name in _VIEW_FIELDS):
        row.updated_at = after["updated_at"] = utcnow()
        if ctx.collect_changes:
            old, new = _row_view(before), _row_view(after)
            ctx.changes.append(
                Change(
                    target=f"subscription:{tenant.slug}",
                    action=ctx.event.type,
                    before=old,
                    after=new,
                    dry_run=ctx.invocation.dry_run,
                    message=f"subscription of {tenant.slug}: {old['status']} -> {new['status']}",
                )
            )
    if row.id is None:
        row.id = rows_repo.insert_row(session=ctx.session, values=after)
    else:
        changed = {name: value for name, value in after.items() if before[name] != value}
        if changed:
            rows_repo.update_row(session=ctx.session, row_id=row.id, values=changed)
    if row.status is None:  # nothing known about the subscription: no grounds to act
        return _processed(ctx)
    reason = paused_access.suspension(
        policy.billing_suspension(
            status=row.status,
            attempts=row.failed_payment_attempts,
            max_attempts=ctx.max_failed_attempts,
        ),
        status=row.status,
        pause_collection=row.pause_collection,
        access=ctx.paused_access,
    )
    change = tenants.follow_billing(
        ctx.session,
        reason=reason,
        status=tenant.status,
        suspended_by=tenant.suspended_by,
        load=lambda: _load_tenant(ctx, tenant),
        invocation=ctx.invocation,
    )
    if change is not None and ctx.collect_changes:
        ctx.changes.append(change)
    return _processed(ctx)


def _processed(ctx: Context) -> HandlerResult:
    return HandlerResult("processed", "; ".join(ctx.notes), keep_reason=ctx.needs_refresh)


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": on_subscription,
    "customer.subscription.updated": on_subscription,
    "customer.subscription.deleted": on_subscription,
    "customer.subscription.trial_will_end": on_subscription,
    "invoice.paid": on_invoice,
    "invoice.payment_succeeded": on_invoice,
    "invoice.payment_failed": on_invoice,
    "invoice.upcoming": on_invoice,
    "customer.created": on_customer,
    "customer.updated": on_customer,
    "customer.deleted": on_customer,
}


Names = tuple[str | None, str | None, str | None]
"""What an event names: (subscription id, customer id, tenant slug)."""


def names_of(event: ParsedEvent) -> Names:
    """The keys :func:`resolve` will look the event's tenant up by, for a replay batch to read
    every row it needs in one statement. A malformed object names nothing: its handler fails,
    and the batch is re-run event by event."""
    try:
        if event.type.startswith("customer.subscription."):
            sub = read_subscription(event.obj)
            return sub.id, sub.customer_id, sub.tenant_slug
        if event.type.startswith("invoice."):
            invoice = read_invoice(event.obj)
            return invoice.subscription_id, invoice.customer_id, invoice.tenant_slug
        if event.type.startswith("customer."):
            customer = read_customer(event.obj)
            return None, customer.id, customer.tenant_slug
    except Exception:
        return None, None, None
    return None, None, None
