"""Ordering and tenant policy: why the final state does not depend on delivery order.

Stripe does not order deliveries and sends duplicates. The engine therefore never applies an
event "on top of" the row; it keeps, on ``TenantSubscription``, one last-writer-wins register per
field group, each guarded by the order key of the newest write applied to it. Keys are strings
of fixed-width fields compared as strings; every key ends in an id, so keys are total orders and
a duplicate has an equal key (which changes nothing):

- the *subscription snapshot* (Stripe's status, price/plan, period, trial end, cancel flags,
  the subscription id) from ``customer.subscription.*`` and from the CLI's own writes, keyed
  ``<subscription created>:<canceled>:<event created>:<rank>:<event id>``
  (``{:012d}:{0|1}:{:012d}:{0-2|9}:{id}``):

  - *subscription created* (the Subscription object's own ``created``) comes first, so a newer
    subscription of the tenant outranks everything about an older one: after a cancellation
    the CLI may create a new subscription for the same tenant, whose events then apply, while
    the old subscription's late events are refused;
    Stripe stamps ``created`` to the second, so two subscriptions of one tenant created in the
    same second tie here and the canceled one wins (a tie-break preferring the live one would
    not be a total order, and convergence needs one). No real re-subscription follows the
    previous subscription's creation within a second; a script that does so should wait.
  - *canceled* (1 for ``customer.subscription.deleted`` or a terminal status, ``canceled`` or
    ``incomplete_expired``) comes next, so a deletion or an expired first payment is terminal
    for its subscription: no later-delivered or same-second update of that subscription
    revives it;
  - then the event's ``created``, a *rank* for events of one second (created 0, updated and
    trial_will_end 1, deleted 2; a local write 9, see below) and the event id.

  Two *different* events of one subscription, one second and one rank (Stripe sends several
  ``customer.subscription.updated`` in a second: creation then first payment, trial end then
  invoice) are a *tie* the key cannot order (:func:`same_moment`); their random ids say nothing
  about which came last. :mod:`.ties` settles it by Stripe's truth: ``data.previous_attributes``
  where it proves the order, else the subscription read from Stripe, written with
  :func:`truth_key` (rank 9 of the tie's second: it outranks every event of that second and
  is outranked by any later event, so it converges like any other write).

  :func:`local_snapshot_key` gives the key of a write the CLI makes from Stripe's own answer
  (``subs create/upgrade/cancel/resume``) at unix time ``at``: it ranks like an event created
  at ``at`` (rank 9, id ``local.<µs>``, so two CLI writes of one second keep their order). An
  event of that same second that says something else is a tie too: Stripe may have emitted it
  after answering the CLI, so it is settled by Stripe's truth, not by the rank
  (:func:`same_moment`).
- the *payment state* from ``invoice.payment_failed``/``payment_succeeded``/``paid``, keyed
  ``<event created>:<invoice created>:<invoice period end>:<paid>:<attempt_count>:<event id>``
  ``|<subscription id>``: within one second a later invoice beats an earlier one, a paid
  invoice beats a failure of it, and a later attempt beats an earlier one. The register holds
  the newest payment event of *any* of the tenant's subscriptions and says whose it is (the
  part after ``|``); it counts only while that subscription is the snapshot's. So when the
  snapshot switches to a new subscription the old one's failures stop counting (the failed
  attempts read 0 until the new subscription's own invoices arrive), and an invoice of the new
  subscription delivered *before* its ``customer.subscription.created`` is kept, not dropped,
  and counts as soon as the snapshot arrives: both delivery orders converge. (An invoice of a
  subscription other than the snapshot's therefore changes no visible field; the CLI only
  creates a subscription after the previous one ended, so an older subscription's payment
  events are older than the new one's and cannot displace them.) Failed attempts are the
  invoice's ``attempt_count``, 0 once paid: a pure function of the key
  (:func:`failed_attempts`), never a count of events.
- the *customer* (tenant name/email sync) from ``customer.updated``, keyed
  ``<event created>:<event id>``, stored as ``<deleted>:<key>`` with a terminal *deleted* flag
  set by ``customer.deleted`` (which clears ``stripe_customer_id`` for good).

The registers hold the value of the greatest write of their group, whatever the arrival order:
separate registers are what let an older plan change still apply after a newer payment event.
The *effective* ``status`` and ``failed_payment_attempts`` are then pure functions of the
registers (:func:`refresh`), and so is the tenant's billing suspension
(:func:`billing_suspension`): suspended by ``billing`` when the subscription is canceled, or
past_due/unpaid with attempts >= the limit; a tenant suspended by ``billing`` is reactivated
otherwise (e.g. by a new subscription after a canceled one); a ``manual`` suspension is never
touched. Applying pure functions after every write makes the final tenant state
order-independent too.
"""

from __future__ import annotations

from typing import Protocol

_SUBSCRIPTION_RANKS = {
    "customer.subscription.created": 0,
    "customer.subscription.deleted": 2,
}
_LOCAL_RANK = 9
_LOCAL_ID = "local"
# Statuses a subscription never leaves: its snapshot key carries the terminal flag, so no
# later-delivered or same-second event of the subscription revives it. A first payment that is
# never made ends in ``incomplete_expired`` as surely as a deletion ends in ``canceled``.
TERMINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})
# Statuses of a subscription whose first invoice is not paid yet (or never was). Stripe keeps
# them through failed attempts of that invoice: a failure never makes them past_due.
UNSTARTED_STATUSES = frozenset({"incomplete", "incomplete_expired"})


class Registers(Protocol):
    """The ``tenant_subscription`` fields the policy reads and writes.

    Both ``billing_cli.models.TenantSubscription`` (the CLI's ORM rows) and the engine's
    ``billing_cli.repository.webhook_rows.SubscriptionRecord`` have them.
    """

    stripe_subscription_id: str | None
    stripe_status: str | None
    stripe_price_id: str | None
    status: str | None
    failed_payment_attempts: int
    subscription_event_key: str | None
    payment_event_key: str | None


# -- keys -------------------------------------------------------------------------------------


def subscription_key(
    *, subscription_created: int, event_id: str, created: int, event_type: str, status: str
) -> str:
    """Order key of a subscription snapshot delivered by an event."""
    canceled = status in TERMINAL_STATUSES or event_type == "customer.subscription.deleted"
    rank = _SUBSCRIPTION_RANKS.get(event_type, 1)
    return _snapshot_key(subscription_created, canceled, created, rank, event_id)


def local_snapshot_key(*, subscription_created: int, status: str, at: float) -> str:
    """Order key of a snapshot the CLI writes from Stripe's answer at unix time ``at``.

    It ranks like an event created in second ``at`` about the same subscription and beats such
    an event of the same second; two CLI writes of one second are ordered by their microseconds
    (the id part, ``local.<µs>``). A canceled status is terminal for the subscription as for
    events.
    """
    second = int(at)
    micro = min(round((at - second) * 1_000_000), 999_999)
    local_id = f"{_LOCAL_ID}.{micro:06d}"
    terminal = status in TERMINAL_STATUSES
    return _snapshot_key(subscription_created, terminal, second, _LOCAL_RANK, local_id)


def truth_key(*, subscription_created: int, status: str, second: int, fetched_at: int) -> str:
    """Order key of a subscription read from Stripe to settle a tie of events in ``second``."""
    return _snapshot_key(
        subscription_created,
        status in TERMINAL_STATUSES,
        second,
        _LOCAL_RANK,
        f"stripe.{fetched_at:012d}",
    )


def same_moment(key: str, stored: str | None) -> bool:
    """True when the event keyed ``key`` ties ``stored``: both about the same subscription with
    the same cancellation flag in the same second, and ``stored`` is either another event of
    the same rank, or a write the CLI made from Stripe's answer in that second.

    The CLI's write ranks above the second's events, yet Stripe may have emitted an event of
    that second *after* answering the CLI (a payment right after a plan change): its order
    against the write is not in the keys, so such an event is settled by Stripe's truth like
    any tie (:mod:`.ties`), not by the rank. A snapshot read from Stripe to settle a tie
    (``stripe.<read time>``) was read after the second's events and never ties; two keys that
    are both local writes or both Stripe reads are ordered by their ids.
    """
    if stored is None or key == stored:
        return False
    mine, theirs = key.split(":", 4), stored.split(":", 4)
    if mine[3] == str(_LOCAL_RANK):
        return False
    if theirs[3] == str(_LOCAL_RANK):
        return mine[:3] == theirs[:3] and theirs[4].startswith(f"{_LOCAL_ID}.")
    return mine[:4] == theirs[:4]


def snapshot_event_id(key: str) -> str:
    """The event id (or local/Stripe write id) a snapshot key ends in."""
    return key.split(":", 4)[4]


def _snapshot_key(
    subscription_created: int, canceled: bool, created: int, rank: int, event_id: str
) -> str:
    return f"{subscription_created:012d}:{int(canceled)}:{created:012d}:{rank}:{event_id}"


def payment_key(
    *,
    subscription_id: str,
    event_id: str,
    created: int,
    invoice_created: int,
    invoice_period_end: int,
    paid: bool,
    attempt_count: int,
) -> str:
    """Order key of a payment outcome, tagged with the subscription it is about."""
    invoice = f"{invoice_created:012d}:{invoice_period_end:012d}"
    return f"{created:012d}:{invoice}:{int(paid)}:{attempt_count:06d}:{event_id}|{subscription_id}"


def customer_key(*, event_id: str, created: int) -> str:
    """Order key of a customer update."""
    return f"{created:012d}:{event_id}"


def is_newer(key: str, stored: str | None) -> bool:
    """True when a write with ``key`` should overwrite a group last written with ``stored``."""
    return stored is None or key > stored


# -- reading keys -----------------------------------------------------------------------------


def snapshot_subscription_created(key: str | None) -> int:
    """The subscription ``created`` of a snapshot key; -1 for none."""
    return int(key.split(":", 1)[0]) if key else -1


def snapshot_event_created(key: str | None) -> int:
    """The event (or local write) time of a snapshot key; -1 for none."""
    return int(key.split(":", 3)[2]) if key else -1


def payment_created(key: str | None) -> int:
    return int(key.split(":", 1)[0]) if key else -1


def payment_subscription(key: str | None) -> str | None:
    """The subscription a payment key is about."""
    return key.rpartition("|")[2] if key else None


def payment_attempts(key: str) -> int:
    """Failed attempts a payment key records: 0 when paid, else the invoice's attempt_count."""
    fields = key.rpartition("|")[0].split(":", 5)
    return 0 if fields[3] == "1" else max(1, int(fields[4]))


# -- the customer register --------------------------------------------------------------------


def customer_register(
    stored: str | None, *, update: str | None = None, deleted: bool = False
) -> str:
    """The stored customer register: ``<deleted>:<key of the newest update applied>``.

    A deletion sets the flag (terminal: the customer link is never restored) but keeps the
    update key, so an older update that arrives after the deletion still syncs exactly as it
    would have before it: the name and e-mail converge on the newest update either way.
    """
    flag = "1" if deleted or customer_deleted(stored) else "0"
    newest = update if update is not None else (stored[2:] if stored else "")
    return f"{flag}:{newest}"


def customer_update_is_newer(key: str, stored: str | None) -> bool:
    return stored is None or key > stored[2:]


def customer_deleted(stored: str | None) -> bool:
    """True once ``customer.deleted`` was applied to the register."""
    return stored is not None and stored.startswith("1:")


# -- writing the snapshot and deriving the effective state ------------------------------------


def apply_snapshot(
    row: Registers, *, key: str, subscription_id: str, status: str, price_id: str | None
) -> bool:
    """Write the snapshot register when ``key`` is newer than the stored one; True if written.

    Switching to another subscription needs no reset: the payment register counts only for the
    subscription it is tagged with (see the module docstring). Recomputes the effective status
    and failed attempts either way.
    """
    applied = is_newer(key, row.subscription_event_key)
    if applied:
        write_snapshot(
            row, key=key, subscription_id=subscription_id, status=status, price_id=price_id
        )
    refresh(row)
    return applied


def write_snapshot(
    row: Registers, *, key: str, subscription_id: str, status: str, price_id: str | None
) -> None:
    """Write the snapshot register unconditionally (a settled tie, :mod:`.ties`); recompute."""
    row.subscription_event_key = key
    row.stripe_subscription_id = subscription_id
    row.stripe_status = status
    row.stripe_price_id = price_id
    refresh(row)


def apply_local_snapshot(
    row: Registers,
    *,
    subscription_id: str,
    subscription_created: int,
    status: str,
    price_id: str | None,
    key: str,
) -> bool:
    """Write what Stripe answered a CLI command into the snapshot register, like an event would.

    For ``billing_cli.services.subscriptions.lifecycle`` after
    ``subs create/upgrade/cancel/resume``::

        at = utcnow().timestamp()
        key = policy.local_snapshot_key(
            subscription_created=int(info.created.timestamp()), status=info.status, at=at
        )
        if policy.apply_local_snapshot(
            row, subscription_id=info.id, subscription_created=..., status=info.status,
            price_id=info.price_id, key=key,
        ):
            ...copy the plan, period, trial end and cancel flags from ``info`` too...
        # then act on policy.billing_suspension(status=row.status, ...)

    Returns False, and writes nothing but the recomputed effective fields, when the row already
    holds a newer snapshot (a webhook of a later second, a deletion of this subscription, or a
    newer subscription): then the caller must not copy the other snapshot fields either.
    ``status`` and ``failed_payment_attempts`` are recomputed by the same rule the webhook
    engine uses, so a new subscription after a canceled one starts with no failed attempts.
    """
    if snapshot_subscription_created(key) != subscription_created:
        raise ValueError("key was not made for this subscription_created")
    return apply_snapshot(
        row, key=key, subscription_id=subscription_id, status=status, price_id=price_id
    )


def payment_counts(row: Registers) -> bool:
    """True when the payment register is about the row's current subscription."""
    key = row.payment_event_key
    return key is not None and payment_subscription(key) == row.stripe_subscription_id


def failed_attempts(row: Registers) -> int:
    """Failed payment attempts of the current subscription, from the payment register."""
    key = row.payment_event_key
    return payment_attempts(key) if key is not None and payment_counts(row) else 0


def effective_status(row: Registers) -> str | None:
    """The status the tool acts on, from the snapshot and payment registers.

    Canceled and incomplete_expired are terminal. Otherwise the newer register wins, the payment
    on the same second (a payment is the fact Stripe derives the status from): a failed payment
    means past_due (or unpaid, if Stripe already said so; incomplete stays incomplete: Stripe
    does not move a subscription whose first payment failed to past_due), a successful one
    active (trialing stays trialing: a trial's $0 invoice is paid too). A payment register
    about another subscription is ignored.
    """
    reported = row.stripe_status
    if reported in TERMINAL_STATUSES:
        return reported
    key = row.payment_event_key
    if key is None or not payment_counts(row):
        return reported
    if reported is not None and payment_created(key) < snapshot_event_created(
        row.subscription_event_key
    ):
        return reported
    if payment_attempts(key) == 0:
        return "trialing" if reported == "trialing" else "active"
    if reported in UNSTARTED_STATUSES:
        return reported  # a failed first payment: Stripe keeps it incomplete, never past_due
    return "unpaid" if reported == "unpaid" else "past_due"


def refresh(row: Registers) -> None:
    """Recompute the effective ``status`` and ``failed_payment_attempts`` from the registers."""
    row.failed_payment_attempts = failed_attempts(row)
    row.status = effective_status(row)


def billing_suspension(*, status: str | None, attempts: int, max_attempts: int) -> str | None:
    """Why billing wants the tenant suspended, or None when it wants it active."""
    if status == "canceled":
        return "billing: subscription canceled"
    if status in ("past_due", "unpaid") and attempts >= max_attempts:
        return f"billing: {attempts} failed payment attempts"
    return None
