"""``billing payments recover``: the support desk's step after a decline, in one command.

After a card declines, support gets a working card from the customer and must (1) attach it, (2)
make it *the card that pays* (the customer's invoice default and the live subscription's own
default, which Stripe charges first: docs/architecture.md), (3) pay what is open, oldest invoice
first, and (4) see whether the tenant has its access back. Done by hand, step 2 is the one
people get wrong: the old card keeps being charged.

One journal intent (``payment.recover``) spans the whole recovery, so that a re-run after any
interruption resumes it instead of starting over. Its recovery points are the attached card, the
two defaults (:func:`.stripe_ops.default_method_step`), the list of invoices that were open when
it started, and each invoice paid. Each payment is :func:`.invoices.collect`, with its own
``invoice.pay`` intent and key: an interrupted payment is finished by the re-run (Stripe answers
the same key with the first answer, so nothing is charged twice), applied locally as the
``invoice.paid`` webhook would be, and the tenant's billing suspension is lifted by the same rule
(once nothing is left unpaid; a manual hold never).

A decline stops the recovery with one line naming the invoice and the card: the card stays
attached and is still the card that pays; the intent is closed as failed and audited, so a new
attempt is a new recovery (it finds the card already attached and does not attach it again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing_cli.errors import CardDeclined, Conflict, UsageError
from billing_cli.gateway import Gateway
from billing_cli.gateway.support_types import InvoiceInfo
from billing_cli.models import Change, Invocation
from billing_cli.money import format_money
from billing_cli.repository import Database
from billing_cli.services import audit, journal
from billing_cli.services.journal import Intent
from billing_cli.services.payments import invoices
from billing_cli.services.payments.methods import card_label, card_of, paying_method_id
from billing_cli.services.stripe_ops import (
    TenantRef,
    default_method_step,
    live_subscription,
    planned_writes,
)
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.timeparse import iso

MAX_OPEN = 100


@dataclass(frozen=True)
class _Start:
    """The tenant as found before anything is sent."""

    tenant: TenantRef
    customer_id: str
    status: str
    suspended_by: str | None


def recover(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    payment_method: str,
    max_failed_attempts: int,
) -> Change:
    """Attach ``payment_method``, make it the card that pays, pay the open invoices oldest
    first, and say where the tenant's access stands."""
    start = _start(db, tenant_slug, payment_method)
    tenant, customer_id = start.tenant, start.customer_id
    subscription = live_subscription(tenant)
    intent = journal.begin(
        db,
        operation="payment.recover",
        target=f"payment_method:{tenant.slug}",
        tenant_slug=tenant.slug,
        params={"payment_method": payment_method},
        invocation=invocation,
    )
    if "before" not in intent.steps:  # a re-run reports what the first run found
        card = paying_method_id(gateway, customer_id, subscription)
        found = {"card": card, "status": start.status, "suspended_by": start.suspended_by}
        journal.record_step(db, intent, "before", found)
    with journal.failure_closes(
        db, intent, invocation=invocation, what=f"recovering {tenant.slug} with {payment_method}"
    ):
        method_id = default_method_step(
            db, gateway, intent, customer_id, payment_method, subscription_id=subscription
        )
        owed = _owed(db, gateway, intent, customer_id)
    card = card_label(card_of(gateway, customer_id, method_id))
    steps = [
        f"{_verb(invocation, 'attach')} {card} to {tenant.slug}",
        f"{_verb(invocation, 'make')} it the card that pays (customer {customer_id}"
        + (f" and subscription {subscription})" if subscription else ")"),
    ]
    reactivated = False
    for invoice in owed:
        paid = _pay(db, gateway, invocation, intent, invoice, method_id, card, max_failed_attempts)
        if paid is not None:
            steps.append(paid[0].message)
            reactivated = reactivated or paid[1]
    return _finish(db, gateway, invocation, intent, start, method_id, owed, steps, reactivated)


def _start(db: Database, tenant_slug: str, payment_method: str) -> _Start:
    if not payment_method.startswith("pm_"):
        raise UsageError(f"--payment-method must be an id like pm_..., not {payment_method!r}")
    with db.read() as session:
        row = tenant_rules.require_tenant(session, tenant_slug)
        tenant = TenantRef.of(session, row)
        status, suspended_by = row.status, row.suspended_by
    if not tenant.customer_id:
        raise Conflict(
            f"tenant {tenant.slug} has no Stripe customer, so nothing to recover; attach a card "
            "with `billing payments methods attach` or subscribe it with `billing subs create`"
        )
    return _Start(tenant, tenant.customer_id, status, suspended_by)


def _owed(db: Database, gateway: Gateway, intent: Intent, customer_id: str) -> list[InvoiceInfo]:
    """The invoices open when the recovery started, oldest first (a recovery point, so a
    re-run pays the same ones, including one whose payment went through unrecorded)."""
    known = intent.steps.get("invoices")
    if known is None:
        found = gateway.list_invoices(customer_id=customer_id, status="open", limit=MAX_OPEN)
        ordered = sorted(found, key=_age)
        journal.record_step(db, intent, "invoices", [i.id for i in ordered])
        return ordered
    return [gateway.retrieve_invoice(str(invoice_id)) for invoice_id in known]


def _age(invoice: InvoiceInfo) -> tuple[float, str, str]:
    """Oldest first; within one second, by number (a customer's invoices are numbered in
    sequence)."""
    created = invoice.created.timestamp() if invoice.created else 0.0
    return created, invoice.number or "", invoice.id


def _pay(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    intent: Intent,
    invoice: InvoiceInfo,
    method_id: str,
    card: str,
    max_failed_attempts: int,
) -> tuple[Change, bool] | None:
    """Pay one invoice with the recovered card: the change, and whether it lifted the tenant's
    suspension (in a dry run: would). None when an earlier run already paid it."""
    step = f"paid {invoice.id}"
    if intent.steps.get(step) or _paid_and_applied(db, intent, invoice):
        return None
    try:
        change, effect = invoices.collect(
            db,
            gateway,
            invocation=invocation,
            invoice_id=invoice.id,
            payment_method=method_id,
            max_failed_attempts=max_failed_attempts,
        )
    except CardDeclined as error:
        journal.fail(
            db,
            intent,
            invocation=invocation,
            target=intent.target,
            outcome=f"recovery stopped: {error.message}",
            error=error,
        )
        raise CardDeclined(
            f"{error.message}; {card} stays attached and is the card that pays"
        ) from error
    journal.record_step(db, intent, step, True)
    lifted = effect is not None and effect.changed and effect.action == "reactivate"
    return change, lifted


def _paid_and_applied(db: Database, intent: Intent, invoice: InvoiceInfo) -> bool:
    """Paid, and no payment of ours left to apply: an earlier run finished it (or the customer
    paid it meanwhile). A paid invoice with an open ``invoice.pay`` intent is finished instead."""
    if invoice.status != "paid":
        return False
    return not journal.has_open(db, operation="invoice.pay", target=intent.tenant_slug or "")


def _finish(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    intent: Intent,
    start: _Start,
    method_id: str,
    owed: list[InvoiceInfo],
    steps: list[str],
    reactivated: bool,
) -> Change:
    """The audit entry and the intent's close, together; the tenant's access as it now is."""
    slug = start.tenant.slug
    with db.transaction(dry_run=invocation.dry_run) as session:
        row = tenant_rules.require_tenant(session, slug)
        status, suspended_by = row.status, row.suspended_by
        if invocation.dry_run and reactivated:  # the dry run's payments were not applied
            status, suspended_by = "active", None
        before = {**intent.steps["before"], "unpaid": _total(owed)}
        after = {
            "card": method_id,
            "status": status,
            "suspended_by": suspended_by,
            "unpaid": _total(owed, settled=True),
            "paid": [_owed_view(invoice) for invoice in owed],
        }
        audit.record(
            session,
            invocation=invocation,
            target=intent.target,
            tenant_slug=slug,
            outcome=f"recovered with {method_id}: {len(owed)} invoice(s) paid",
            before=before,
            after=after,
        )
        journal.close(session, intent, succeeded=True, object_id=method_id)
    access = _access(invocation, slug, status, suspended_by, reactivated)
    verb = "would recover" if invocation.dry_run else "recovered"
    paid = f"{len(owed)} open invoice(s), {_total(owed)}" if owed else "nothing was unpaid"
    return Change(
        target=intent.target,
        action="recover",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {slug}: {method_id} is the card that pays; {paid}; {access}",
        stripe_writes=planned_writes(gateway),
        side_effects=(*steps, access),
    )


def _access(
    invocation: Invocation, slug: str, status: str, suspended_by: str | None, reactivated: bool
) -> str:
    """Where the tenant's access stands (or would stand) once the invoices are paid."""
    if reactivated:
        return f"{'would reactivate' if invocation.dry_run else 'reactivated'} {slug}"
    if status == "active":
        return f"{slug} is active"
    if suspended_by == "manual":
        return (
            f"{slug} stays suspended: a manual hold is lifted only by a person "
            f"(`billing tenants reactivate {slug}`)"
        )
    return f"{slug} stays suspended ({suspended_by or 'unknown'})"


def _owed_view(invoice: InvoiceInfo) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "created": iso(invoice.created),
        "amount": format_money(invoice.amount_remaining or invoice.amount_paid, invoice.currency),
    }


def _total(owed: list[InvoiceInfo], *, settled: bool = False) -> str:
    """What the invoices come to, per currency (``0`` when there are none); ``settled``: what
    is left once they are paid, in the same currencies."""
    sums: dict[str, int] = {}
    for invoice in owed:
        amount = 0 if settled else invoice.amount_remaining or invoice.amount_paid
        sums[invoice.currency] = sums.get(invoice.currency, 0) + amount
    return ", ".join(format_money(v, c) for c, v in sorted(sums.items())) or "0"


def _verb(invocation: Invocation, verb: str) -> str:
    past = {"attach": "attached", "make": "made"}
    return f"would {verb}" if invocation.dry_run else past[verb]
