"""Invoices, payments and refunds from Stripe's objects, in every API shape we meet.

* an invoice names its subscription at ``parent.subscription_details.subscription`` since
  2025-03-31 (basil), at ``subscription`` before;
* a PaymentIntent carries its charge as ``latest_charge`` (an id, or the object when expanded)
  since 2022-11-15, as ``charges.data[]`` before; a history row can also be a bare Charge;
* a decline code sits on the PaymentIntent's ``last_payment_error.decline_code``, and on the
  charge as ``outcome.reason`` / ``failure_code``.

Like :mod:`.converters`, these accept plain mappings or anything with ``to_dict()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing_cli.gateway.converters import as_dict, timestamp
from billing_cli.gateway.support_types import (
    InvoiceInfo,
    InvoiceLineInfo,
    PaymentRecord,
    RefundInfo,
)


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _ref(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    ref = _map(value).get("id")
    return ref if isinstance(ref, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def invoice_subscription(d: Mapping[str, Any]) -> str | None:
    """The invoice's subscription in either shape."""
    details = _map(_map(d.get("parent")).get("subscription_details"))
    return _ref(details.get("subscription")) or _ref(d.get("subscription"))


def invoice_payment_intent(d: Mapping[str, Any]) -> str | None:
    """The PaymentIntent that pays (or paid) the invoice, in either shape.

    From 2025-03-31 an invoice lists its payments (``payments.data[].payment``); the paid one
    is the one that counts, else the default one, else the first. Before, ``payment_intent``.
    """
    raw = _map(d.get("payments")).get("data")
    payments = [_map(p) for p in raw] if isinstance(raw, list) else []
    ranked = sorted(
        payments, key=lambda p: (p.get("status") != "paid", p.get("is_default") is not True)
    )
    for payment in ranked:
        found = _ref(_map(payment.get("payment")).get("payment_intent"))
        if found:
            return found
    return _ref(d.get("payment_intent"))


def _failure(error: Any) -> str | None:
    data = _map(error)
    if not data:
        return None
    code = _text(data.get("decline_code")) or _text(data.get("code")) or "declined"
    message = _text(data.get("message"))
    return f"{code}: {message}" if message else code


def invoice_line_info(obj: Any, *, currency: str) -> InvoiceLineInfo:
    d = as_dict(obj)
    period = _map(d.get("period"))
    return InvoiceLineInfo(
        description=_text(d.get("description")),
        amount=_int(d.get("amount")) or 0,
        currency=_text(d.get("currency")) or currency,
        quantity=_int(d.get("quantity")),
        period_start=timestamp(period.get("start")),
        period_end=timestamp(period.get("end")),
    )


def invoice_info(obj: Any) -> InvoiceInfo:
    """An Invoice with its first page of lines (Stripe embeds up to 10)."""
    d = as_dict(obj)
    currency = _text(d.get("currency")) or ""
    raw_lines = _map(d.get("lines")).get("data")
    amount_due = _int(d.get("amount_due")) or 0
    amount_paid = _int(d.get("amount_paid")) or 0
    remaining = _int(d.get("amount_remaining"))
    return InvoiceInfo(
        id=str(d["id"]),
        number=_text(d.get("number")),
        status=_text(d.get("status")) or "",
        customer_id=_ref(d.get("customer")) or "",
        subscription_id=invoice_subscription(d),
        currency=currency,
        amount_due=amount_due,
        amount_paid=amount_paid,
        amount_remaining=amount_due - amount_paid if remaining is None else remaining,
        attempt_count=_int(d.get("attempt_count")) or 0,
        next_payment_attempt=timestamp(d.get("next_payment_attempt")),
        billing_reason=_text(d.get("billing_reason")),
        hosted_invoice_url=_text(d.get("hosted_invoice_url")),
        created=timestamp(d.get("created")),
        period_start=timestamp(d.get("period_start")),
        period_end=timestamp(d.get("period_end")),
        lines=tuple(
            invoice_line_info(line, currency=currency)
            for line in (raw_lines if isinstance(raw_lines, list) else [])
        ),
        payment_intent_id=invoice_payment_intent(d),
    )


def _charge_of(d: Mapping[str, Any]) -> dict[str, Any]:
    """The PaymentIntent's charge: ``latest_charge`` expanded, or the old ``charges.data[0]``."""
    latest = d.get("latest_charge")
    if isinstance(latest, Mapping):
        return dict(latest)
    old = _map(d.get("charges")).get("data")
    if isinstance(old, list) and old:
        return _map(old[0])
    return {}


def payment_record(obj: Any) -> PaymentRecord:
    """A PaymentIntent (with its charge expanded) or a Charge, as one row of the history."""
    d = as_dict(obj)
    if d.get("object") == "charge" or str(d.get("id", "")).startswith(("ch_", "py_")):
        charge, error = d, {}
    else:
        charge, error = _charge_of(d), _map(d.get("last_payment_error"))
    outcome = _map(charge.get("outcome"))
    charge_ok = charge.get("status") == "succeeded"
    captured = _int(charge.get("amount_captured"))
    if captured is None:  # older shapes: a succeeded, captured charge took its whole amount
        captured = (_int(charge.get("amount")) or 0) if charge_ok and charge.get("captured") else 0
    decline = (
        _text(error.get("decline_code"))
        or (None if charge_ok else _text(outcome.get("reason")))
        or (None if charge_ok else _text(charge.get("failure_code")))
    )
    failure = _failure(error) or (None if charge_ok else _text(charge.get("failure_message")))
    return PaymentRecord(
        id=str(d["id"]),
        customer_id=_ref(d.get("customer")) or _ref(charge.get("customer")),
        created=timestamp(d.get("created")),
        amount=_int(d.get("amount")) or 0,
        currency=_text(d.get("currency")) or "",
        status=_text(d.get("status")) or "",
        description=_text(d.get("description")) or _text(charge.get("description")),
        charge_id=_ref(d.get("latest_charge")) or _text(charge.get("id")),
        amount_captured=captured if charge_ok else 0,
        amount_refunded=_int(charge.get("amount_refunded")) or 0,
        decline_code=decline,
        failure=failure,
    )


def refund_info(obj: Any) -> RefundInfo:
    d = as_dict(obj)
    return RefundInfo(
        id=str(d["id"]),
        amount=_int(d.get("amount")) or 0,
        currency=_text(d.get("currency")) or "",
        status=_text(d.get("status")) or "",
        reason=_text(d.get("reason")),
        charge_id=_ref(d.get("charge")),
        payment_intent_id=_ref(d.get("payment_intent")),
        metadata={str(k): str(v) for k, v in _map(d.get("metadata")).items() if v is not None},
    )
