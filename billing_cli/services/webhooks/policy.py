"""Ordering and tenant policy: why the final state does not depend on delivery order.

Stripe does not order deliveries and sends duplicates. The engine therefore never applies an
event "on top of" the row; it keeps, on ``TenantSubscription``, one last-writer-wins register per
field group, each guarded by the order key of the newest event applied to it:

- the *subscription snapshot* (Stripe's status, price/plan, period, trial end, cancel flags,
  subscription id) from ``customer.subscription.*``, keyed
  ``(canceled, event created, type rank, event id)``. ``canceled`` comes first so a deletion is
  terminal: no later-delivered or same-second update of that subscription can revive it.
- the *payment state* (failed attempts, taken from the invoice's ``attempt_count``, 0 once
  paid) from ``invoice.payment_failed``/``payment_succeeded``/``paid``, keyed
  ``(event created, invoice created, invoice period end, paid, attempt_count, event id)``:
  within one second a later invoice beats an earlier one, a paid invoice beats a failure of it,
  and a later attempt beats an earlier one.
- the *customer* (tenant name/email sync) from ``customer.updated``, keyed
  ``(event created, event id)``, with a terminal *deleted* flag set by ``customer.deleted``
  (which clears ``stripe_customer_id`` for good).

An event whose key is not newer than its group's stored key changes nothing (a duplicate has an
equal key). Keys are total orders (the event id breaks ties), so each register ends up holding the
value of the greatest event of its group, whatever the arrival order: separate registers are
what let an older plan change still apply after a newer payment event.

The *effective* ``status`` is then a pure function of the registers (:func:`effective_status`),
and so is the tenant's billing suspension (:func:`billing_suspension`): suspended by ``billing``
when the subscription is canceled, or past_due/unpaid with attempts >= the limit; a tenant
suspended by ``billing`` is reactivated otherwise; a ``manual`` suspension is never touched.
Applying a pure function after every event makes the final tenant state order-independent too.
"""

from __future__ import annotations

from billing_cli.models import TenantSubscription

_SUBSCRIPTION_RANKS = {
    "customer.subscription.created": 0,
    "customer.subscription.deleted": 2,
}


def subscription_key(*, event_id: str, created: int, event_type: str, status: str) -> str:
    """Order key of a subscription snapshot; canceled snapshots outrank every live one."""
    terminal = 1 if status == "canceled" or event_type == "customer.subscription.deleted" else 0
    rank = _SUBSCRIPTION_RANKS.get(event_type, 1)
    return f"{terminal}:{created:012d}:{rank}:{event_id}"


def payment_key(
    *,
    event_id: str,
    created: int,
    invoice_created: int,
    invoice_period_end: int,
    paid: bool,
    attempt_count: int,
) -> str:
    """Order key of a payment outcome."""
    invoice = f"{invoice_created:012d}:{invoice_period_end:012d}"
    return f"{created:012d}:{invoice}:{int(paid)}:{attempt_count:06d}:{event_id}"


def customer_key(*, event_id: str, created: int) -> str:
    """Order key of a customer update."""
    return f"{created:012d}:{event_id}"


def customer_register(
    stored: str | None, *, update: str | None = None, deleted: bool = False
) -> str:
    """The stored customer register: ``<deleted>:<key of the newest update applied>``.

    A deletion sets the flag (terminal: the customer link is never restored) but keeps the
    update key, so an older update that arrives after the deletion still syncs exactly as it
    would have before it: the name and e-mail converge on the newest update either way.
    """
    flag = "1" if deleted or is_terminal(stored) else "0"
    newest = update if update is not None else (stored[2:] if stored else "")
    return f"{flag}:{newest}"


def customer_update_is_newer(key: str, stored: str | None) -> bool:
    return stored is None or key > stored[2:]


def is_newer(key: str, stored: str | None) -> bool:
    """True when an event with ``key`` should overwrite a group last written with ``stored``."""
    return stored is None or key > stored


def is_terminal(key: str | None) -> bool:
    """A subscription or customer key written by a cancellation or deletion."""
    return key is not None and key.startswith("1:")


def subscription_created(key: str | None) -> int:
    return int(key.split(":", 2)[1]) if key else -1


def payment_created(key: str | None) -> int:
    return int(key.split(":", 1)[0]) if key else -1


def effective_status(row: TenantSubscription) -> str | None:
    """The status the tool acts on, from the snapshot and payment registers.

    Canceled is terminal. Otherwise the newer register wins, the payment on the same second (a
    payment is the fact Stripe derives the status from): a failed payment means past_due (or
    unpaid, if Stripe already said so), a successful one active (trialing stays trialing: a
    trial's $0 invoice is paid too).
    """
    reported = row.stripe_status
    if reported == "canceled":
        return "canceled"
    if row.payment_event_key is None:
        return reported
    if reported is not None and payment_created(row.payment_event_key) < subscription_created(
        row.subscription_event_key
    ):
        return reported
    if row.failed_payment_attempts == 0:
        return "trialing" if reported == "trialing" else "active"
    return "unpaid" if reported == "unpaid" else "past_due"


def billing_suspension(*, status: str | None, attempts: int, max_attempts: int) -> str | None:
    """Why billing wants the tenant suspended, or None when it wants it active."""
    if status == "canceled":
        return "billing: subscription canceled"
    if status in ("past_due", "unpaid") and attempts >= max_attempts:
        return f"billing: {attempts} failed payment attempts"
    return None
