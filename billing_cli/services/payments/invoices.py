"""A tenant's invoices: what was billed, what failed, and retrying, voiding or writing one off.

Reads come from Stripe (paged list calls); the local database only says which customer is the
tenant's. The three writes go through the intent journal (:mod:`.journal`) in its three phases.

Retrying an invoice (``pay``) is the support desk's "they fixed their card, try again now". A
paid invoice is applied locally the way the ``invoice.paid`` webhook applies it: the payment
register (:mod:`.webhooks.policy`) takes a paid outcome of this second for the invoice's
subscription, the subscription snapshot is refreshed from Stripe through
:func:`.subscription_updates.apply_subscription`, and :func:`.subscriptions.follow_billing_policy`
reactivates a tenant that *billing* suspended (never a manual hold). So past_due and the failed
attempts are reset exactly as the webhook would reset them, and the webhook arriving later
changes nothing. A decline closes the intent as failed and is audited; Stripe counts the attempt
and its ``invoice.payment_failed`` webhook records it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import CardDeclined, Conflict, GatewayError, NotFound, UsageError
from billing_cli.gateway import Gateway, SubscriptionInfo
from billing_cli.gateway.support_types import InvoiceInfo
from billing_cli.models import Change, Invocation, utcnow
from billing_cli.money import format_money, with_display
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import audit, journal
from billing_cli.services.payments.methods import card_label, card_of, paying_method_id
from billing_cli.services.stripe_ops import planned_writes, stripe_row
from billing_cli.services.subscriptions.lifecycle import follow_billing_policy, side_effects
from billing_cli.services.subscriptions.updates import apply_subscription, subscription_row_view
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.webhooks import policy
from billing_cli.timeparse import iso

STATUSES = ("draft", "open", "paid", "uncollectible", "void")
PAYABLE = frozenset({"open", "uncollectible"})
MAX_LIST = 100


def invoice_view(invoice: InvoiceInfo, *, with_lines: bool = False) -> dict[str, Any]:
    """An invoice as tables and ``--json`` show it (money also in major units)."""

    view: dict[str, Any] = with_display(
        {
            "id": invoice.id,
            "number": invoice.number,
            "status": invoice.status,
            "created": iso(invoice.created),
            "currency": invoice.currency,
            "amount_due": invoice.amount_due,
            "amount_paid": invoice.amount_paid,
            "amount_remaining": invoice.amount_remaining,
        }
    )
    view |= {
        "payment": invoice.payment_intent_id,
        "period_start": iso(invoice.period_start),
        "period_end": iso(invoice.period_end),
        "attempt_count": invoice.attempt_count,
        "next_payment_attempt": iso(invoice.next_payment_attempt),
        "billing_reason": invoice.billing_reason,
        "subscription": invoice.subscription_id,
        "customer": invoice.customer_id,
        "hosted_invoice_url": invoice.hosted_invoice_url,
    }
    if with_lines:
        view["lines"] = [
            {
                "description": line.description,
                "amount": line.amount,
                "amount_display": format_money(line.amount, line.currency),
                "quantity": line.quantity,
                "period_start": iso(line.period_start),
                "period_end": iso(line.period_end),
            }
            for line in invoice.lines
        ]
    return view


def list_invoices(
    db: Database,
    gateway: Gateway,
    *,
    tenant_slug: str | None,
    status: str | None,
    limit: int,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The tenant's invoices, newest first; without a tenant, every tenant's.

    Across tenants ("which invoices failed today": ``--status open --since 24h``) Stripe is
    read with paged list calls over all customers, and each invoice is tied to its tenant by
    the customer ids the tenant_subscription rows hold (one query for the whole page); an
    invoice of a customer no tenant has keeps ``tenant`` empty rather than being hidden.
    """
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_LIST:
        raise UsageError(f"--limit must be between 1 and {MAX_LIST}")
    created_gte = int(since.timestamp()) if since else None
    if tenant_slug is not None:
        customer_id = _customer_of(db, tenant_slug)
        if customer_id is None:
            return []
        found = gateway.list_invoices(
            customer_id=customer_id, status=status, limit=limit, created_gte=created_gte
        )
        return [invoice_view(invoice) for invoice in found]
    found = gateway.list_all_invoices(status=status, created_gte=created_gte, limit=limit)
    with db.read() as session:
        tenants = subscriptions_repo.slugs_for_customers(
            session=session, customer_ids=[invoice.customer_id for invoice in found]
        )
    return [{"tenant": tenants.get(i.customer_id), **invoice_view(i)} for i in found]


def show_invoice(db: Database, gateway: Gateway, *, invoice_id: str) -> dict[str, Any]:
    """One invoice with its lines, and the tenant it belongs to (when one has its customer)."""
    invoice = gateway.retrieve_invoice(_check_id(invoice_id))
    with db.read() as session:
        tenant = subscriptions_repo.tenant_for_customer(
            session=session, customer_id=invoice.customer_id
        )
        slug = tenant.slug if tenant else None
    return {"tenant": slug, **invoice_view(invoice, with_lines=True)}


@dataclass(frozen=True)
class _Target:
    """The invoice as read before the write, and whose it is."""

    invoice: InvoiceInfo
    tenant_slug: str

    @property
    def label(self) -> str:
        return f"invoice {self.invoice.number or self.invoice.id}"

    @property
    def amount(self) -> str:
        """What is owed; once paid (an interrupted run's payment went through), what was."""
        invoice = self.invoice
        owed = invoice.amount_paid if invoice.status == "paid" else invoice.amount_remaining
        return format_money(owed, invoice.currency)


def pay_invoice(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    invoice_id: str,
    payment_method: str | None,
    max_failed_attempts: int,
) -> Change:
    """Attempt to collect an open (or uncollectible) invoice now."""
    change, _effect = collect(
        db,
        gateway,
        invocation=invocation,
        invoice_id=invoice_id,
        payment_method=payment_method,
        max_failed_attempts=max_failed_attempts,
    )
    return change


def collect(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    invoice_id: str,
    payment_method: str | None,
    max_failed_attempts: int,
) -> tuple[Change, Change | None]:
    """:func:`pay_invoice`, also handing back what the payment did to the tenant's access
    (its suspension lifted, or None), for commands that pay several invoices in a row."""
    if payment_method is not None and not payment_method.startswith("pm_"):
        raise UsageError(f"--payment-method must be an id like pm_..., not {payment_method!r}")
    target = _load(db, gateway, invoice_id)
    invoice = target.invoice
    card = _card_tried(gateway, invoice, payment_method)
    intent = _begin(
        db,
        invocation,
        "invoice.pay",
        target,
        {"invoice": invoice.id, "payment_method": payment_method},
        allowed=PAYABLE,
    )
    if invoice.status == "paid":  # an interrupted run's payment went through
        paid = invoice
    else:
        paid = _call(
            db,
            invocation,
            intent,
            target,
            "pay",
            lambda key: gateway.pay_invoice(
                invoice.id, payment_method=payment_method, idempotency_key=key
            ),
            failed=f"payment of {target.label} ({target.amount})",
            card=card,
        )
    live = gateway.retrieve_subscription(paid.subscription_id) if paid.subscription_id else None
    with db.transaction(dry_run=invocation.dry_run) as session:
        before, after, effect = _follow_payment(
            session, target.tenant_slug, paid, live, invocation, max_failed_attempts
        )
        audit.record(
            session,
            invocation=invocation,
            target=f"invoice:{invoice.id}",
            tenant_slug=target.tenant_slug,
            outcome=f"collected {target.amount} for {target.label}",
            before={"invoice": _brief(invoice), "subscription": before},
            after={"invoice": _brief(paid), "subscription": after},
        )
        journal.close(session, intent, succeeded=True, object_id=invoice.id)
    if invocation.dry_run:
        message = (
            f"would attempt to collect {target.amount} for {target.label} of "
            f"{target.tenant_slug} from {card} (the card may still decline; nothing was sent)"
        )
    else:
        message = (
            f"paid: collected {target.amount} for {target.label} of {target.tenant_slug} "
            f"from {card}{_reactivated(effect, target.tenant_slug)}"
        )
    change = Change(
        target=f"invoice:{invoice.id}",
        action="pay",
        before={"invoice": _brief(invoice), "subscription": before},
        after={"invoice": _brief(paid), "subscription": after},
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
        side_effects=side_effects(effect),
    )
    return change, effect


def void_invoice(
    db: Database, gateway: Gateway, *, invocation: Invocation, invoice_id: str
) -> Change:
    """Void an open or uncollectible invoice: nothing more will be collected for it."""
    return _close_invoice(
        db,
        gateway,
        invocation,
        invoice_id,
        operation="invoice.void",
        allowed=frozenset({"open", "uncollectible"}),
        final="void",
        send=lambda invoice_id, key: gateway.void_invoice(invoice_id, idempotency_key=key),
        verbs=("would void", "voided", "voiding"),
    )


def mark_uncollectible(
    db: Database, gateway: Gateway, *, invocation: Invocation, invoice_id: str
) -> Change:
    """Write an open invoice off as uncollectible (it can still be paid later)."""
    return _close_invoice(
        db,
        gateway,
        invocation,
        invoice_id,
        operation="invoice.mark_uncollectible",
        allowed=frozenset({"open"}),
        final="uncollectible",
        send=lambda invoice_id, key: gateway.mark_invoice_uncollectible(
            invoice_id, idempotency_key=key
        ),
        verbs=("would mark uncollectible", "marked uncollectible", "marking uncollectible"),
    )


# -- helpers ---------------------------------------------------------------------------------


def _close_invoice(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    invoice_id: str,
    *,
    operation: str,
    allowed: frozenset[str],
    final: str,
    send: Callable[[str, str], InvoiceInfo],
    verbs: tuple[str, str, str],
) -> Change:
    target = _load(db, gateway, invoice_id)
    invoice = target.invoice
    intent = _begin(db, invocation, operation, target, {"invoice": invoice.id}, allowed=allowed)
    if invoice.status == final:  # an interrupted run's write went through
        result = invoice
    else:
        result = _call(
            db,
            invocation,
            intent,
            target,
            "update",
            lambda key: send(invoice.id, key),
            failed=f"{verbs[2]} {target.label}",
        )
    verb = verbs[0] if invocation.dry_run else verbs[1]
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=f"invoice:{invoice.id}",
            tenant_slug=target.tenant_slug,
            outcome=f"{verbs[1]} {target.label} ({target.amount} unpaid)",
            before=_brief(invoice),
            after=_brief(result),
        )
        journal.close(session, intent, succeeded=True, object_id=invoice.id)
    return Change(
        target=f"invoice:{invoice.id}",
        action=final,
        before=_brief(invoice),
        after=_brief(result),
        dry_run=invocation.dry_run,
        message=f"{verb} {target.label} of {target.tenant_slug} ({target.amount} unpaid)",
        stripe_writes=planned_writes(gateway),
    )


def _follow_payment(
    session: Session,
    tenant_slug: str,
    paid: InvoiceInfo,
    live: SubscriptionInfo | None,
    invocation: Invocation,
    max_failed_attempts: int,
) -> tuple[dict[str, Any], dict[str, Any], Change | None]:
    """Apply a paid invoice as the ``invoice.paid`` webhook would, then the tenant policy."""
    tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
    row = stripe_row(session, tenant)
    before = subscription_row_view(session, row)
    if paid.status == "paid" and paid.subscription_id:
        now = utcnow().timestamp()
        second = int(now)
        key = policy.payment_key(
            subscription_id=paid.subscription_id,
            event_id=f"local.{min(round((now - second) * 1_000_000), 999_999):06d}",
            created=second,
            invoice_created=int(paid.created.timestamp()) if paid.created else 0,
            invoice_period_end=int(paid.period_end.timestamp()) if paid.period_end else 0,
            paid=True,
            attempt_count=paid.attempt_count,
        )
        if policy.is_newer(key, row.payment_event_key):
            row.payment_event_key = key
    if live is not None:
        apply_subscription(session, row, live)  # refreshes the effective status and attempts
    else:
        policy.refresh(row)
        subscriptions_repo.save(session=session, subscription=row)
    effect = follow_billing_policy(
        session, tenant, row, invocation=invocation, max_failed_attempts=max_failed_attempts
    )
    return before, subscription_row_view(session, row), effect


def _load(db: Database, gateway: Gateway, invoice_id: str) -> _Target:
    invoice = gateway.retrieve_invoice(_check_id(invoice_id))
    with db.read() as session:
        tenant = subscriptions_repo.tenant_for_customer(
            session=session, customer_id=invoice.customer_id
        )
        if tenant is None:
            raise NotFound(
                f"invoice {invoice.id} belongs to Stripe customer {invoice.customer_id}, "
                "which no tenant has"
            )
        return _Target(invoice, tenant.slug)


def _begin(
    db: Database,
    invocation: Invocation,
    operation: str,
    target: _Target,
    params: dict[str, Any],
    *,
    allowed: frozenset[str],
) -> journal.Intent:
    """Phase 1; the status check runs only for a new intent (a re-run finishes its own)."""

    def check(_session: Session) -> None:
        status = target.invoice.status
        if status not in allowed:
            raise Conflict(
                f"{target.label} is {status}; only {' or '.join(sorted(allowed))} invoices "
                f"can be {_PAST[operation]}"
            )

    return journal.begin(
        db,
        operation=operation,
        target=f"invoice:{target.invoice.id}",
        tenant_slug=target.tenant_slug,
        params=params,
        invocation=invocation,
        check=check,
    )


_PAST = {
    "invoice.pay": "paid",
    "invoice.void": "voided",
    "invoice.mark_uncollectible": "marked uncollectible",
}


def _call(
    db: Database,
    invocation: Invocation,
    intent: journal.Intent,
    target: _Target,
    step: str,
    send: Callable[[str], InvoiceInfo],
    *,
    failed: str,
    card: str | None = None,
) -> InvoiceInfo:
    """Phase 2; a definite failure closes the intent, is audited, and is one clear line."""
    try:
        return journal.call(db, intent, step, send, what=failed)
    except GatewayError as error:
        if error.ambiguous:
            raise
        journal.fail(
            db,
            intent,
            invocation=invocation,
            target=f"invoice:{target.invoice.id}",
            outcome=f"{failed} failed: {error.message}",
            error=error,
        )
        if isinstance(error, CardDeclined):
            tried = f" by {card}" if card else ""
            raise CardDeclined(
                f"declined: {target.label} of {target.tenant_slug} ({target.amount}) was not "
                f"paid{tried} ({error.message.removeprefix('card declined: ')})"
            ) from error
        raise


def _card_tried(gateway: Gateway, invoice: InvoiceInfo, payment_method: str | None) -> str:
    """The card a payment attempt charges: the one named, else the card that pays."""
    method = payment_method or paying_method_id(
        gateway, invoice.customer_id, invoice.subscription_id
    )
    return card_label(card_of(gateway, invoice.customer_id, method))


def _reactivated(effect: Change | None, tenant_slug: str) -> str:
    """The tenant's access coming back with the payment, said in the summary line."""
    if effect is not None and effect.changed and effect.action == "reactivate":
        return f"; {tenant_slug} reactivated"
    return ""


def _brief(invoice: InvoiceInfo) -> dict[str, Any]:
    return {
        "status": invoice.status,
        "amount_remaining": invoice.amount_remaining,
        "currency": invoice.currency,
        "attempt_count": invoice.attempt_count,
    }


def _check_id(invoice_id: str) -> str:
    if not invoice_id.startswith("in_"):
        raise UsageError(f"invoice id must look like in_..., not {invoice_id!r}")
    return invoice_id


def _customer_of(db: Database, tenant_slug: str) -> str | None:
    with db.read() as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug)
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        return row.stripe_customer_id if row else None
