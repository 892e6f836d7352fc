"""Whether a notice is still true: the re-check every notification passes when it is sent.

A notification is a claim about the tenant (your trial ends on D, a payment failed, your account
is suspended, it is active again), queued when an event made it true. By the time ``notifications
send`` runs, later events may have made it false: the trial ended and was paid for, the invoice
was paid, the tenant was reactivated, or a newer notice of the same kind says something else.
:func:`verdict` compares the claim with the tenant's current local state (the tenant row and
its subscription row, which the webhook registers keep in step with Stripe whatever the
delivery order) and names the reason a notice no longer holds; the sender withdraws such a
notice instead of mailing it, and ``notifications list``/``show`` show the same verdict.

Local state is the source on purpose: it is what the tool already trusts for suspensions, it
needs no call to Stripe inside the sender's transaction, and "the invoice was paid" is exactly
the payment register's reset of ``failed_payment_attempts``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from billing_cli.mail.templates import day
from billing_cli.repository.notifications import TenantState

Check = Callable[[Mapping[str, Any], TenantState, datetime], str | None]


def verdict(
    *, notice_id: int, kind: str, payload: Mapping[str, Any], state: TenantState, now: datetime
) -> str | None:
    """None when the notice's claim holds now; otherwise why it is to be withdrawn."""
    newest = state.newest.get(kind)
    if newest is not None and newest > notice_id:
        return f"superseded by the newer {kind} notice #{newest}"
    check = _CHECKS.get(kind)
    return check(payload, state, now) if check else None


def _canceled(payload: Mapping[str, Any], state: TenantState) -> str | None:
    if state.subscription_status == "canceled":
        return "the subscription is canceled"
    named = payload.get("subscription")
    if named and state.subscription_id and named != state.subscription_id:
        return f"the subscription {named} is no longer the tenant's"
    return None


def _trial(payload: Mapping[str, Any], state: TenantState, now: datetime) -> str | None:
    other = _canceled(payload, state)
    if other:
        return other
    if state.subscription_status != "trialing" or state.trial_end is None:
        return f"the trial is over (the subscription is {state.subscription_status or 'unknown'})"
    if state.trial_end <= now:
        return "the trial is over"
    if day(state.trial_end) != day(payload.get("trial_end")):
        return f"the trial now ends on {day(state.trial_end)}"
    return None


def _upcoming(payload: Mapping[str, Any], state: TenantState, _now: datetime) -> str | None:
    return _canceled(payload, state)


def _payment_failed(payload: Mapping[str, Any], state: TenantState, _now: datetime) -> str | None:
    other = _canceled(payload, state)
    if other:
        return other
    if state.failed_attempts == 0:
        return "the invoice was paid after the failure notice"
    return None


def _suspended(_payload: Mapping[str, Any], state: TenantState, _now: datetime) -> str | None:
    if state.status != "suspended":
        return "the tenant was reactivated after the suspension notice"
    return None


def _reactivated(_payload: Mapping[str, Any], state: TenantState, _now: datetime) -> str | None:
    if state.status != "active":
        return "the tenant was suspended again after the reactivation notice"
    suspension = state.newest.get("suspended")
    if suspension is not None and suspension not in state.sent:
        # the customer was never told of the suspension this lifts: "active again" would
        # answer a message they did not get
        return f"the suspension it lifts was never announced (notice #{suspension} not sent)"
    return None


_CHECKS: dict[str, Check] = {
    "trial_will_end": _trial,
    "upcoming_invoice": _upcoming,
    "payment_failed": _payment_failed,
    "suspended": _suspended,
    "reactivated": _reactivated,
}
