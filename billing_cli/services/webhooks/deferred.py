"""Deferred (parked) events: events that name a Stripe customer no tenant has yet.

Stripe does not order deliveries, and a tenant is linked to its customer by whichever comes
first: the subscription the CLI creates, a ``customer.created``/``updated`` or subscription
event carrying ``metadata.tenant``, ``subs refresh`` or ``reconcile``. An event that arrives
before that link (an invoice before the subscription event, a customer made in the Dashboard)
cannot be applied to anyone yet, and dropping it would make the final state depend on the
order. So the engine parks it: ledger status ``deferred``, with the customer id on the row
(indexed). When the link appears, :func:`apply_parked` applies that customer's parked events
through the engine's handlers in the same transaction, in order-key order; the handlers'
registers make the result the same as if the link had come first. Events for a customer that
never belongs to a tenant stay parked and are listed by ``billing webhooks list --status
deferred``.
"""

from __future__ import annotations

from sqlmodel import Session

from billing_cli.services.webhooks.applier import EventApplier, EventOutcome, Run


def apply_parked(
    session: Session,
    customer_id: str,
    *,
    max_failed_attempts: int,
    dry_run: bool = False,
    collect_changes: bool = False,
) -> list[EventOutcome]:
    """Apply the events parked for ``customer_id``; call it right after linking a tenant to it.

    Contract for callers (``subs create``, ``subs refresh``, ``reconcile --fix``):

    - Call it in the *same* transaction that linked the tenant, after the link is written (the
      tenant's ``tenant_subscription.stripe_customer_id`` is ``customer_id``; an ORM change is
      flushed first) and after every Stripe call: it makes none. A same-second tie it cannot
      settle keeps the stored snapshot and its outcome says "needs refresh" (a caller that
      just wrote Stripe's answer has nothing to fear: that write outranks the parked events).
    - Each parked event is applied as the webhook engine would apply it on delivery (same
      handlers, registers, suspension rule, audit entries as ``webhook:<event id>``), oldest
      first (creations before updates before deletions within a second), each in a SAVEPOINT:
      one that fails is recorded ``failed`` (``billing webhooks retry-failed`` retries it) and
      the others and the link stand. Their ledger rows leave ``deferred``. If one links
      another customer, that customer's parked events follow.
    - On PostgreSQL it takes the customer's advisory lock, so an event being parked
      concurrently is either applied here or finds the link itself.
    - ``dry_run`` marks audit entries and changes as a dry run (the caller's transaction is
      rolled back anyway); ``collect_changes`` fills each outcome's before/after.
    - The events are applied with Core statements: when any was applied, the session's ORM
      objects are expired on return (everything was flushed before the first SAVEPOINT), so
      the caller's ``TenantSubscription``/``Tenant`` objects reload what the events changed.
    - Idempotent: a second call finds nothing parked and returns an empty list.

    Returns the outcomes in the order applied (empty when nothing was parked).
    """
    applier = EventApplier(
        max_failed_attempts=max_failed_attempts, collect_changes=collect_changes or dry_run
    )
    outcomes = applier.apply_parked(session, customer_id, Run(source="deferred", dry_run=dry_run))
    if outcomes:
        session.expire_all()
    return outcomes
