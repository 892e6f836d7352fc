"""Discounts and credits: coupons, a subscription's discount, a customer's credit balance.

Every Stripe write is described here by what differs and carried out over the intent journal by
:func:`.changes.run` (record the intent; call Stripe with its key and no transaction open; apply
with the audit entry and the intent's close in one transaction); a discount is a subscription
update (:class:`.adjustments.SubscriptionUpdate`).

Choices where the issue was silent:

- ``subs discount --coupon`` replaces any discount the subscription has (one discount at a
  time, as support staff think of it); ``--remove`` clears them all.
- ``tenants credit --amount X`` *credits* the customer: it is sent to Stripe as ``-X`` (Stripe's
  sign: a negative balance transaction is money the customer has). A negative ``X`` is a debit
  (the customer owes more) and needs ``--debit``. The currency must be the customer's balance
  currency once Stripe has fixed one (by a subscription or an earlier transaction).
- Coupons are account-wide: their intents have no tenant, and ``coupons create`` refuses an id
  Stripe already has unless this very intent made it (a re-run).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, NotFoundInStripe, UsageError
from billing_cli.gateway import Gateway, SubscriptionPreview
from billing_cli.gateway.types import (
    BalanceTransactionInfo,
    CouponDuration,
    CouponInfo,
    DeletedObject,
    DiscountInfo,
)
from billing_cli.models import Change, Invocation
from billing_cli.money import check_currency, format_money, to_minor_units
from billing_cli.repository import Database
from billing_cli.services import journal
from billing_cli.services.changes import Applied, StripeChange, run
from billing_cli.services.journal import INTENT_METADATA_KEY
from billing_cli.services.stripe_ops import TENANT_METADATA_KEY, TenantRef
from billing_cli.services.subscriptions.adjustments import (
    AdjustmentResult,
    BillingRules,
    SubscriptionUpdate,
)
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.text import REASON_MAX, stripe_text
from billing_cli.timeparse import iso

DURATIONS: tuple[CouponDuration, ...] = ("once", "repeating", "forever")


def coupon_view(coupon: CouponInfo) -> dict[str, Any]:
    if coupon.percent_off is not None:
        off = f"{coupon.percent_off:g}% off"
    else:
        off = f"{format_money(coupon.amount_off, coupon.currency)} off"
    months = f" for {coupon.duration_in_months} months" if coupon.duration == "repeating" else ""
    return {
        "id": coupon.id,
        "percent_off": coupon.percent_off,
        "amount_off": coupon.amount_off,
        "currency": coupon.currency,
        "duration": coupon.duration,
        "duration_in_months": coupon.duration_in_months,
        "valid": coupon.valid,
        "times_redeemed": coupon.times_redeemed,
        "summary": f"{off}, {coupon.duration}{months}",
    }


def list_coupons(gateway: Gateway) -> list[dict[str, Any]]:
    return [coupon_view(c) for c in gateway.list_coupons()]


def create_coupon(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    coupon_id: str,
    percent_off: float | None,
    amount_off: str | None,
    currency: str | None,
    duration: str,
    months: int | None,
) -> Change:
    """Create a coupon (``--percent-off N`` or ``--amount-off X --currency C``)."""
    how = _check_duration(duration, months)
    minor, code = _check_off(percent_off, amount_off, currency)
    if (
        not coupon_id
        or len(coupon_id) > 200
        or not coupon_id.replace("-", "").replace("_", "").isalnum()
    ):
        raise UsageError("coupon id: letters, digits, - and _ only (at most 200)")
    target = f"coupon:{coupon_id}"
    existing = _find_coupon(gateway, coupon_id)
    taken = f"coupon {coupon_id} already exists in Stripe"
    if existing is not None and not journal.has_open(db, operation="coupon.create", target=target):
        raise Conflict(taken)  # refused before anything is recorded

    def ours(intent: journal.Intent) -> CouponInfo | None:
        """The coupon an interrupted run of this intent made; another run's is refused."""
        if existing is not None and existing.metadata.get(INTENT_METADATA_KEY) != intent.id:
            _fail(db, intent, invocation, taken)
        return existing

    def apply(_session: Session, coupon: CouponInfo, _intent: journal.Intent) -> Applied:
        after = coupon_view(coupon)
        return Applied(None, after, f"coupon {coupon_id} created: {after['summary']}")

    change = StripeChange(
        operation="coupon.create",
        target=target,
        tenant_slug=None,
        params={
            "coupon": coupon_id,
            "percent_off": percent_off,
            "amount_off": minor,
            "currency": code,
            "duration": how,
            "months": months,
        },
        action="create",
        what=f"creating coupon {coupon_id}",
        verbs=("create", "created"),
        step="coupon",
        send=lambda key, intent: gateway.create_coupon(
            coupon_id=coupon_id,
            percent_off=percent_off,
            amount_off=minor,
            currency=code,
            duration=how,
            duration_in_months=months,
            metadata=intent.metadata(),
            idempotency_key=key,
        ),
        find=ours,
        apply=apply,
        message=lambda coupon, _: f"coupon {coupon_id}: {coupon_view(coupon)['summary']}",
    )
    return run(db, gateway, invocation, change).change


def delete_coupon(
    db: Database, gateway: Gateway, *, invocation: Invocation, coupon_id: str
) -> Change:
    """Delete a coupon so it can no longer be given; discounts it already gave keep running.

    Stripe ignores idempotency keys on DELETE, so "already done" is judged from Stripe's state:
    a re-run that finds the coupon gone while this command's intent is still open (the earlier
    delete landed, its answer was lost) finishes it, audit and close, without calling again; the
    coupon's summary comes from the recovery point recorded before the call.
    """
    target = f"coupon:{coupon_id}"
    existing = _find_coupon(gateway, coupon_id)
    interrupted = journal.has_open(db, operation="coupon.delete", target=target)
    if existing is None and not interrupted:
        raise NotFound(f"no coupon {coupon_id!r} in Stripe; `billing coupons list` shows them")
    before = coupon_view(existing) if existing is not None else None

    def apply(_session: Session, _gone: DeletedObject, intent: journal.Intent) -> Applied:
        was = before or intent.steps.get("coupon")
        summary = f": {was['summary']}" if was else ""
        return Applied(was, None, f"coupon {coupon_id} deleted{summary}")

    change = StripeChange(
        operation="coupon.delete",
        target=target,
        tenant_slug=None,
        params={"coupon": coupon_id},
        action="delete",
        what=f"deleting coupon {coupon_id}",
        verbs=("delete", "deleted"),
        step="coupon",
        send=lambda key, _intent: gateway.delete_coupon(coupon_id, idempotency_key=key),
        apply=apply,
        message=lambda _gone, _intent: (
            f"coupon {coupon_id}; discounts it already gave keep running"
        ),
        already=None if existing is not None else DeletedObject(id=coupon_id, object="coupon"),
        remember={"coupon": before} if before is not None else {},
    )
    return run(db, gateway, invocation, change).change


def set_discount(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    coupon_id: str | None,
    preview: bool | None = None,
    rules: BillingRules = BillingRules(),
) -> AdjustmentResult:
    """Apply ``coupon_id`` to the tenant's subscription (replacing its discount), or remove
    the discount (``None``). The dry run shows the next invoice as it would then be."""
    update = SubscriptionUpdate.read(db, gateway, invocation, tenant_slug, rules)
    tenant, live = update.tenant, update.live
    coupon = _require_coupon(gateway, coupon_id) if coupon_id else None
    if coupon is not None and not coupon.valid:
        raise Conflict(f"coupon {coupon.id} is no longer valid")
    current = gateway.subscription_discounts(live.id)
    now_coupons = [d.coupon.id for d in current if d.coupon is not None]
    was = ", ".join(now_coupons) or "none"
    if coupon is not None:
        summary = coupon_view(coupon)["summary"]
        why = f"{tenant.slug}'s subscription already has coupon {coupon_id}"
        verbs, message = ("give", "gave"), f"{tenant.slug} coupon {coupon.id} ({summary})"
        outcome = f"discount {coupon.id} applied ({summary})"
    else:
        why = f"{tenant.slug}'s subscription has no discount"
        verbs, message = ("remove", "removed"), f"{tenant.slug}'s discount ({was})"
        outcome = f"discount removed ({was})"
    change = update.change(
        operation="subscription.discount" if coupon_id else "subscription.remove_discount",
        params={"subscription": live.id, "coupon": coupon_id},
        done=now_coupons == [coupon_id] if coupon_id else not current,
        why=why,
        action="discount",
        what=f"changing {tenant.slug}'s discount",
        verbs=verbs,
        send=lambda key: gateway.set_subscription_discount(live.id, coupon_id, idempotency_key=key),
        outcome=outcome,
        message=message,
        extra=lambda _info, _intent: (
            {"discount": ", ".join(now_coupons) or None},
            {"discount": coupon_id},
        ),
        preview=lambda: gateway.preview_subscription_invoice(
            live.id, SubscriptionPreview(coupon=coupon_id, without_discounts=coupon_id is None)
        ),
        want_preview=preview,
    )
    return run(db, gateway, invocation, change)


def credit(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    amount: str,
    currency: str,
    reason: str,
    debit: bool = False,
) -> Change:
    """Credit (positive ``amount``) or, with ``debit``, debit the tenant's Stripe balance."""
    reason = stripe_text(reason, option="--reason", limit=REASON_MAX)  # the entry's description
    negative = amount.strip().startswith("-")
    if negative and not debit:
        raise UsageError(
            f"--amount {amount} is a debit (the customer would owe more); pass --debit to mean it"
        )
    minor = to_minor_units(amount.strip().lstrip("-"), currency)
    code = check_currency(currency)
    stripe_amount = minor if negative else -minor  # Stripe: negative is credit to the customer
    tenant = _tenant(db, tenant_slug)
    if not tenant.customer_id:
        raise NotFound(f"tenant {tenant.slug} has no Stripe customer yet")
    customer_id = tenant.customer_id
    customer = gateway.retrieve_customer(customer_id)
    if customer.currency and customer.currency != code:
        raise Conflict(
            f"{tenant.slug}'s Stripe balance is in {customer.currency.upper()}; "
            f"a credit in {code.upper()} is refused"
        )
    kind = "debit" if negative else "credit"
    money = format_money(minor, code)

    def apply(_session: Session, made: BalanceTransactionInfo, _intent: journal.Intent) -> Applied:
        before = _balance_view(made.ending_balance - made.amount, code)
        after = _balance_view(made.ending_balance, code)
        return Applied(before, after, f"{kind} {money}: {reason.strip()}")

    change = StripeChange(
        operation="customer.credit",
        target=f"balance:{tenant.slug}",
        tenant_slug=tenant.slug,
        params={"customer": customer_id, "amount": stripe_amount, "currency": code, "text": reason},
        action=kind,
        what=f"the {kind} of {money} to {tenant.slug}",
        failed=f"{kind} of {money}",
        verbs=(kind, f"{kind}ed"),
        step="balance",
        send=lambda key, intent: gateway.create_balance_transaction(
            customer_id,
            amount=stripe_amount,
            currency=code,
            description=reason.strip(),
            metadata={TENANT_METADATA_KEY: tenant.slug} | intent.metadata(),
            idempotency_key=key,
        ),
        find=lambda intent: _find_transaction(gateway, customer_id, intent),
        apply=apply,
        message=lambda made, _: (
            f"{tenant.slug} {money} ({reason.strip()}); "
            f"balance {_balance_view(made.ending_balance, code)['balance_display']}"
        ),
    )
    return run(db, gateway, invocation, change).change


def tenant_billing(db: Database, gateway: Gateway, *, tenant_slug: str) -> dict[str, Any] | None:
    """The tenant's active discount and credit balance, from Stripe (None: no customer)."""
    tenant = _tenant(db, tenant_slug)
    if not tenant.customer_id:
        return None
    customer = gateway.retrieve_customer(tenant.customer_id)
    discounts: tuple[DiscountInfo, ...] = ()
    if tenant.subscription_id:
        discounts = gateway.subscription_discounts(tenant.subscription_id)
    return {
        "discount": [
            {
                **(coupon_view(d.coupon) if d.coupon else {"id": None}),
                "start": iso(d.start),
                "end": iso(d.end),
            }
            for d in discounts
        ],
        **_balance_view(customer.balance, customer.currency),
    }


# -- helpers -----------------------------------------------------------------------------------


def _tenant(db: Database, slug: str) -> TenantRef:
    """The tenant, read in one short transaction."""
    with db.read() as session:
        return TenantRef.of(session, tenant_rules.require_tenant(session, slug))


def _balance_view(balance: int, currency: str | None) -> dict[str, Any]:
    """Stripe's sign turned round for people: ``credit`` is what the customer has to spend."""
    return {
        "balance": balance,
        "currency": currency,
        "balance_display": (
            f"{format_money(-balance, currency)} credit"
            if balance < 0
            else (f"{format_money(balance, currency)} owed" if balance > 0 else "none")
        )
        if currency
        else "none",
    }


def _find_transaction(
    gateway: Gateway, customer_id: str, intent: journal.Intent
) -> BalanceTransactionInfo | None:
    """Past Stripe's key window, the transaction an earlier run of this intent made."""
    if not intent.key_may_have_expired():
        return None
    for made in gateway.list_balance_transactions(customer_id):
        if made.metadata.get(INTENT_METADATA_KEY) == intent.id:
            return made
    return None


def _find_coupon(gateway: Gateway, coupon_id: str) -> CouponInfo | None:
    try:
        return gateway.retrieve_coupon(coupon_id)
    except NotFoundInStripe:
        return None


def _require_coupon(gateway: Gateway, coupon_id: str) -> CouponInfo:
    found = _find_coupon(gateway, coupon_id)
    if found is None:
        raise NotFound(f"no coupon {coupon_id!r} in Stripe; `billing coupons list` shows them")
    return found


def _fail(db: Database, intent: journal.Intent, invocation: Invocation, message: str) -> None:
    """Close the intent as failed (nothing was sent) and refuse."""
    if not invocation.dry_run:
        with db.transaction() as session:
            journal.close(session, intent, succeeded=False, error=message)
    raise Conflict(message)


def _check_duration(duration: str, months: int | None) -> CouponDuration:
    for known in DURATIONS:
        if duration == known:
            if (known == "repeating") != (months is not None):
                raise UsageError("--months goes with --duration repeating, and only with it")
            if months is not None and not 1 <= months <= 36:
                raise UsageError("--months must be between 1 and 36")
            return known
    raise UsageError(f"--duration must be one of {', '.join(DURATIONS)}")


def _check_off(
    percent_off: float | None, amount_off: str | None, currency: str | None
) -> tuple[int | None, str | None]:
    if (percent_off is None) == (amount_off is None):
        raise UsageError("give exactly one of --percent-off N or --amount-off X --currency C")
    if percent_off is not None:
        if not 0 < percent_off <= 100:
            raise UsageError("--percent-off must be above 0 and at most 100")
        if currency is not None:
            raise UsageError("--currency goes with --amount-off only")
        return None, None
    if currency is None:
        raise UsageError("--amount-off needs --currency")
    assert amount_off is not None
    return to_minor_units(amount_off, currency), check_currency(currency)
