"""One plain-text template per notification kind: the subject and body a tenant receives.

A template reads only what the outbox row's payload (and, for an upcoming invoice, the event
that caused it) recorded, so a message sent late or resent says what was true when it was
queued. Money is shown in major units with its currency, dates as ``YYYY-MM-DD`` (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing_cli.money import format_money

SIGNATURE = "\n-- \nBilling\n"


@dataclass(frozen=True)
class MessageFacts:
    """What a template may use: the tenant, the row's payload, and settings that shape it."""

    tenant_name: str
    kind: str
    payload: dict[str, Any]
    max_failed_attempts: int
    due_date: str | None = None  # upcoming invoice: when Stripe will charge


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class UnknownKind(Exception):
    """No template for this kind of notification."""


def render(facts: MessageFacts) -> Rendered:
    """The subject and body of one notification."""
    template = _TEMPLATES.get(facts.kind)
    if template is None:
        raise UnknownKind(f"no template for notification kind {facts.kind!r}")
    subject, body = template(facts)
    return Rendered(" ".join(subject.split()), f"Hello {facts.tenant_name},\n\n{body}{SIGNATURE}")


def day(value: object) -> str | None:
    """A date from an ISO string or a Unix time, as YYYY-MM-DD; None when absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d")
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC).strftime("%Y-%m-%d")
    return None


def _money(payload: dict[str, Any]) -> str:
    amount = payload.get("amount_due")
    currency = payload.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return "the amount due"
    return format_money(amount, currency)


def _trial_will_end(f: MessageFacts) -> tuple[str, str]:
    when = day(f.payload.get("trial_end"))
    on = f"on {when}" if when else "in a few days"
    return (
        f"Your trial ends {on}",
        f"Your trial ends {on}. To keep your account running without a break, make sure a "
        "payment method is on file before then; your subscription then continues on its "
        "plan.\n",
    )


def _upcoming_invoice(f: MessageFacts) -> tuple[str, str]:
    amount = _money(f.payload)
    when = f" on {f.due_date}" if f.due_date else " soon"
    return (
        f"Upcoming invoice: {amount}{when}",
        f"Your next invoice, {amount}, will be charged to your payment method on file{when}.\n"
        f"Invoice reference: {f.payload.get('invoice') or 'not issued yet'}\n",
    )


def _payment_failed(f: MessageFacts) -> tuple[str, str]:
    amount = _money(f.payload)
    attempt = f.payload.get("attempt_count")
    of = f"attempt {attempt} of {f.max_failed_attempts}" if isinstance(attempt, int) else "a try"
    retry = day(f.payload.get("next_payment_attempt"))
    next_line = f"We will try again on {retry}.\n" if retry else ""
    return (
        f"Payment failed: {amount} ({of})",
        f"We could not collect {amount} for your subscription ({of}).\n{next_line}"
        f"After {f.max_failed_attempts} failed attempts your account is suspended until a "
        "payment succeeds. Please update your payment method.\n",
    )


def _suspended(f: MessageFacts) -> tuple[str, str]:
    by_billing = f.payload.get("by") == "billing"
    why = (
        "because your subscription's payments failed or it ended"
        if by_billing
        else f"by our team: {f.payload.get('reason') or 'no reason given'}"
    )
    fix = (
        "It is reactivated as soon as a payment succeeds."
        if by_billing
        else "Please contact us to lift it."
    )
    return "Your account is suspended", f"Your account has been suspended {why}.\n{fix}\n"


def _reactivated(_f: MessageFacts) -> tuple[str, str]:
    return "Your account is active again", "Your account is active again. Thank you.\n"


_TEMPLATES = {
    "trial_will_end": _trial_will_end,
    "upcoming_invoice": _upcoming_invoice,
    "payment_failed": _payment_failed,
    "suspended": _suspended,
    "reactivated": _reactivated,
}
