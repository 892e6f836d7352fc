"""A tenant's payment history, and refunds.

The history is read from Stripe (the customer's PaymentIntents with their charges: amount,
status, decline code, refunded amount). A refund goes through the intent journal
(:mod:`.journal`): the balance check (nothing refunded beyond what is left) runs before the
intent is recorded, so a refused refund writes nothing; a re-run after an ambiguous failure
reuses the open intent and its key, so Stripe answers with the first refund instead of
refunding twice; past Stripe's key window the refund is first looked for by its metadata.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway
from billing_cli.gateway.support_types import PaymentRecord, RefundInfo, RefundReason
from billing_cli.models import Change, Invocation
from billing_cli.money import format_money, to_minor_units
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import audit, journal
from billing_cli.services.journal import INTENT_METADATA_KEY, Intent
from billing_cli.services.stripe_ops import TENANT_METADATA_KEY, planned_writes
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.timeparse import iso

REFUND_REASONS: tuple[RefundReason, ...] = ("duplicate", "fraudulent", "requested_by_customer")
MAX_LIST = 100


def payment_view(payment: PaymentRecord) -> dict[str, Any]:
    """One row of the history (money also in major units)."""
    return {
        "id": payment.id,
        "created": iso(payment.created),
        "amount": payment.amount,
        "currency": payment.currency,
        "amount_display": format_money(payment.amount, payment.currency),
        "status": payment.status,
        "decline_code": payment.decline_code,
        "failure": payment.failure,
        "amount_refunded": payment.amount_refunded,
        "refunded_display": format_money(payment.amount_refunded, payment.currency),
        "refundable": payment.refundable,
        "description": payment.description,
        "charge": payment.charge_id,
    }


def list_payments(
    db: Database,
    gateway: Gateway,
    *,
    tenant_slug: str,
    limit: int = 20,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The tenant's payments, newest first (created since ``since``, when given)."""
    if not 1 <= limit <= MAX_LIST:
        raise UsageError(f"--limit must be between 1 and {MAX_LIST}")
    with db.read() as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug)
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        customer_id = row.stripe_customer_id if row else None
    if not customer_id:
        return []
    found = gateway.list_payment_history(
        customer_id=customer_id,
        limit=limit,
        created_gte=int(since.timestamp()) if since else None,
    )
    return [payment_view(payment) for payment in found]


def refund(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    payment_id: str,
    amount: str | None,
    reason: str | None,
) -> Change:
    """Refund ``amount`` (major units, in the payment's currency; all that is left when None)."""
    if not payment_id.startswith(("pi_", "ch_")):
        raise UsageError(f"payment id must look like pi_... or ch_..., not {payment_id!r}")
    payment = gateway.retrieve_payment(payment_id)
    minor = None if amount is None else to_minor_units(amount, payment.currency)
    return _refund(db, gateway, invocation, payment, minor, _check_reason(reason))


def refund_invoice(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    invoice_id: str,
    amount: str | None,
    reason: str | None,
) -> Change:
    """Refund the payment that paid an invoice: what support is handed is the invoice number.

    The invoice only names its PaymentIntent; the refund itself is :func:`refund` of that
    payment (same journal operation and target), so a re-run by invoice or by ``pi_`` id
    finishes the same intent and Stripe refunds once.
    """
    if not invoice_id.startswith("in_"):
        raise UsageError(f"--invoice must be an invoice id like in_..., not {invoice_id!r}")
    invoice = gateway.retrieve_invoice(invoice_id)
    if invoice.payment_intent_id is None:
        raise Conflict(f"invoice {invoice.id} ({invoice.status}) has no payment to refund")
    return refund(
        db,
        gateway,
        invocation=invocation,
        payment_id=invoice.payment_intent_id,
        amount=amount,
        reason=reason,
    )


def refund_minor(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    payment_id: str,
    amount: int | None,
    reason: str | None,
) -> Change:
    """As :func:`refund` with ``amount`` in minor units (``billing intents resume``)."""
    payment = gateway.retrieve_payment(payment_id)
    return _refund(db, gateway, invocation, payment, amount, _check_reason(reason))


def _refund(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    payment: PaymentRecord,
    minor: int | None,
    why: RefundReason | None,
) -> Change:
    tenant_slug = _tenant_of(db, payment)
    shown = format_money(minor if minor is not None else payment.refundable, payment.currency)
    target = f"payment:{payment.id}"

    def check(_session: Session) -> None:
        _check_balance(payment, minor)

    intent = journal.begin(
        db,
        operation="payment.refund",
        target=target,
        tenant_slug=tenant_slug,
        params={"payment": payment.id, "amount": minor, "reason": why},
        invocation=invocation,
        check=check,
    )
    with journal.failure_closes(
        db, intent, invocation=invocation, what=f"refund of {shown} of {payment.id}"
    ):
        made = _refund_step(db, gateway, intent, payment, minor, why, tenant_slug)
    before = _balance(payment, payment.amount_refunded)
    after = _balance(payment, payment.amount_refunded + made.amount)
    after["refund"] = made.id
    after["reason"] = made.reason
    done = format_money(made.amount, payment.currency)
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant_slug,
            outcome=f"refunded {done} of {payment.id}" + (f" ({why})" if why else ""),
            before=before,
            after=after,
        )
        journal.close(session, intent, succeeded=True, object_id=made.id)
    left = format_money(after["refundable"], payment.currency)
    verb = "would refund" if invocation.dry_run else "refunded"
    return Change(
        target=target,
        action="refund",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {done} of {payment.id} ({tenant_slug}); {left} left refundable",
        stripe_writes=planned_writes(gateway),
    )


def _refund_step(
    db: Database,
    gateway: Gateway,
    intent: Intent,
    payment: PaymentRecord,
    amount: int | None,
    reason: RefundReason | None,
    tenant_slug: str,
) -> RefundInfo:
    """Create the refund once; past Stripe's key window, look for it by metadata first."""
    if intent.key_may_have_expired():
        for found in gateway.list_refunds(payment_id=payment.id):
            if found.metadata.get(INTENT_METADATA_KEY) == intent.id:
                return found
    return journal.call(
        db,
        intent,
        "refund",
        lambda key: gateway.create_refund(
            payment_id=payment.id,
            amount=amount,
            reason=reason,
            metadata={TENANT_METADATA_KEY: tenant_slug} | intent.metadata(),
            idempotency_key=key,
        ),
        what=f"the refund of {payment.id}",
    )


def _check_balance(payment: PaymentRecord, amount: int | None) -> None:
    """Refuse, before anything is recorded or sent, a refund of more than is left."""
    left = payment.refundable

    def money(minor: int) -> str:
        return format_money(minor, payment.currency)

    if left <= 0:
        raise Conflict(
            f"nothing left to refund on {payment.id} ({payment.status}; "
            f"{money(payment.amount_refunded)} of {money(payment.amount)} already refunded)"
        )
    if amount is not None and amount > left:
        raise Conflict(
            f"refund of {money(amount)} is more than is left on {payment.id}: {money(left)} "
            f"({money(payment.amount_refunded)} of {money(payment.amount)} already refunded)"
        )


def _balance(payment: PaymentRecord, refunded: int) -> dict[str, Any]:
    return {
        "amount": payment.amount,
        "amount_refunded": refunded,
        "refundable": max(0, payment.amount_captured - refunded),
        "currency": payment.currency,
    }


def _check_reason(reason: str | None) -> RefundReason | None:
    if reason is None:
        return None
    for known in REFUND_REASONS:
        if reason == known:
            return known
    raise UsageError(f"--reason must be one of {', '.join(REFUND_REASONS)}")


def _tenant_of(db: Database, payment: PaymentRecord) -> str:
    with db.read() as session:
        tenant = (
            subscriptions_repo.tenant_for_customer(session=session, customer_id=payment.customer_id)
            if payment.customer_id
            else None
        )
        if tenant is None:
            raise NotFound(
                f"payment {payment.id} belongs to Stripe customer {payment.customer_id}, "
                "which no tenant has"
            )
        return tenant.slug
