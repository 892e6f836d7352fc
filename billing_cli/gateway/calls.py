"""The one place Stripe's exceptions become ``GatewayError``s and every call is logged.

Each Stripe call in the adapter runs inside :func:`stripe_call`, which times it, logs one line on
the ``billing.stripe`` logger (operation, object ids, outcome, duration) and turns a
``stripe.StripeError`` into the matching member of :mod:`billing_cli.errors` with a single-line
message written for the operator. Keys never reach a message or a log line: Stripe's own texts
are scrubbed of anything that looks like an API key, a webhook secret or an idempotency key.

Two things the line cannot know by itself are handed in from outside:

- *which journal intent* a write belongs to: the journal runs its call inside
  :func:`for_intent`, so the line names the intent id and the tenant (and the error is counted
  under the intent's step, ``payment.charge.payment``, as ``billing check`` has always shown);
- *what the answer means*: a call that returns an object with a status Stripe uses for "not
  done yet" (a subscription ``incomplete``, a payment ``requires_action``) reports it through
  :meth:`Call.returned`, and the line says that status instead of ``ok``.

Every Stripe error but a card decline (a payment outcome, counted as such) and a "no such object"
(an answer to a lookup: the coupon an operator mistyped, the subscription already gone) is also
handed to the *error sinks* added with :func:`add_error_sink`: this is how reads count for
``billing check`` too (``subs show``, ``reconcile``, the engine's tie reads), without the gateway
opening a database session. The service layer's sink (:class:`billing_cli.services.observe.counters.
StripeErrorCounter`) keeps the counts in memory and writes them in a transaction of its own.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

from billing_cli.errors import (
    AuthenticationFailed,
    CardDeclined,
    GatewayError,
    IdempotencyConflict,
    InvalidRequest,
    NotFoundInStripe,
    PermissionMissing,
    RateLimited,
    StripeServerError,
    StripeUnreachable,
)

logger = logging.getLogger("billing.stripe")

_SECRET = re.compile(r"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9*]+|\bwhsec_[A-Za-z0-9*]+")
_IDEMPOTENCY = re.compile(r"billing:[a-z0-9_.\-]+:[0-9a-f]{32}")
# Statuses of a returned object that mean Stripe did not (yet) do what was asked.
NOT_DONE_STATUSES = frozenset(
    {
        "incomplete",
        "incomplete_expired",
        "past_due",
        "unpaid",
        "requires_payment_method",
        "requires_action",
        "requires_confirmation",
        "processing",
    }
)


class ErrorSink(Protocol):
    """Told of every Stripe error (but declines): the operation label and the error class."""

    def __call__(self, operation: str, error_class: str) -> None: ...


@dataclass(frozen=True)
class IntentLabel:
    """The journal intent a call is made for (see :func:`for_intent`)."""

    intent_id: str
    step: str  # ``<operation>.<step>``, the label the error counters use
    tenant: str | None


_SINKS: list[ErrorSink] = []
_SINKS_LOCK = threading.Lock()
_INTENT: ContextVar[IntentLabel | None] = ContextVar("billing_stripe_intent", default=None)


def add_error_sink(sink: ErrorSink) -> None:
    """Tell ``sink`` of every Stripe error from now on, in every thread of the process."""
    with _SINKS_LOCK:
        _SINKS.append(sink)


def remove_error_sink(sink: ErrorSink) -> None:
    with _SINKS_LOCK:
        if sink in _SINKS:
            _SINKS.remove(sink)


def _report(operation: str, error: GatewayError) -> None:
    if isinstance(error, CardDeclined | NotFoundInStripe):
        return  # a payment outcome (counted as such), or an answer to a lookup: not API errors
    with _SINKS_LOCK:
        sinks = list(_SINKS)
    for sink in sinks:
        try:
            sink(operation, type(error).__name__)
        except Exception as failure:  # counting must never hide the error being raised
            logger.warning("stripe error not counted: %s", scrub(str(failure)))


@contextmanager
def for_intent(*, intent_id: str, step: str, tenant: str | None) -> Iterator[None]:
    """Calls made inside name this journal intent and tenant in their log line."""
    token = _INTENT.set(IntentLabel(intent_id=intent_id, step=step, tenant=tenant))
    try:
        yield
    finally:
        _INTENT.reset(token)


class Call:
    """What a call inside :func:`stripe_call` learned of its answer (for the log line)."""

    def __init__(self) -> None:
        self.outcome = "ok"
        self.result_id: str | None = None

    def returned(self, obj: Any) -> None:
        """Note the object Stripe answered with: its id, and its status if "not done"."""
        object_id = getattr(obj, "id", None)
        self.result_id = object_id if isinstance(object_id, str) else None
        status = getattr(obj, "status", None)
        if isinstance(status, str) and status in NOT_DONE_STATUSES:
            self.outcome = status


def scrub(text: str) -> str:
    """One line of text with secrets and idempotency keys replaced by placeholders."""
    text = _SECRET.sub(lambda m: m.group(0).split("_")[0] + "_…", text)
    text = _IDEMPOTENCY.sub("<idempotency key>", text)
    return " ".join(text.split())


def _stripe_message(exc: stripe.StripeError) -> str:
    return scrub(exc.user_message or "") or "no message"


def translate(exc: stripe.StripeError, *, subject: str = "") -> GatewayError:
    """The BillingError for one Stripe exception (most specific class first).

    ``subject`` names the objects of the call (``customer=cus_1``) for messages that would
    otherwise not say what was missing.
    """
    message = _stripe_message(exc)
    if isinstance(exc, stripe.CardError):
        decline = exc.error.decline_code if exc.error is not None else None
        return CardDeclined(f"card declined: {decline or exc.code or 'unknown'}: {message}")
    if isinstance(exc, stripe.RateLimitError):
        return RateLimited(
            "Stripe rate limit reached (429) even after retries; wait a little and run it again"
        )
    if isinstance(exc, stripe.IdempotencyError):
        return IdempotencyConflict(
            "Stripe refused the request: its idempotency key was already used with different "
            "parameters (was the command re-run with other arguments within 24 hours?)"
        )
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 404:
            where = f" ({subject})" if subject else ""
            return NotFoundInStripe(f"not found in Stripe{where}: {message}")
        param = f" (parameter {exc.param})" if exc.param else ""
        return InvalidRequest(f"Stripe rejected the request{param}: {message}")
    if isinstance(exc, stripe.AuthenticationError):
        return AuthenticationFailed(
            "Stripe did not accept the API key; check STRIPE_SECRET_KEY (`billing config`)"
        )
    if isinstance(exc, stripe.PermissionError):
        return PermissionMissing(f"the restricted API key lacks a permission: {message}")
    if isinstance(exc, stripe.APIConnectionError):
        return StripeUnreachable(
            "could not reach Stripe (network error or timeout, after retries): "
            + message.split(". ")[0].rstrip(".")
        )
    status = f" (HTTP {exc.http_status})" if exc.http_status else ""
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500 or exc.http_status == 409:
        return StripeServerError(f"Stripe error{status} after retries: {message}")
    return GatewayError(f"Stripe error{status}: {message}")


def _describe(ids: dict[str, str | None]) -> str:
    return " ".join(f"{name}={value}" for name, value in ids.items() if value)


def _logged_ids(described: str) -> str:
    """The object ids, then the journal intent and tenant when the call is made for one."""
    label = _INTENT.get()
    intent = _describe({"intent": label.intent_id, "tenant": label.tenant}) if label else ""
    named = " ".join(part for part in (described, intent) if part)
    return f" {named}" if named else ""


@contextmanager
def stripe_call(operation: str, **ids: str | None) -> Iterator[Call]:
    """Run one Stripe call: log it, time it, translate its errors and report them to the sinks.

    ``ids`` name the objects involved (``customer="cus_..."``); never pass keys or idempotency
    keys, they would end up in the log. The yielded :class:`Call` takes the answer
    (:meth:`Call.returned`) where its status matters.
    """
    started = time.perf_counter()
    described = _describe(ids)
    logged = _logged_ids(described)
    call = Call()
    try:
        yield call
    except stripe.StripeError as exc:
        elapsed = round((time.perf_counter() - started) * 1000)
        outcome = type(exc).__name__
        logger.warning(
            "stripe %s%s -> %s (%d ms)",
            operation,
            logged,
            outcome,
            elapsed,
            extra={
                "stripe_operation": operation,
                "stripe_outcome": outcome,
                "duration_ms": elapsed,
            },
        )
        error = translate(exc, subject=described)
        label = _INTENT.get()
        _report(label.step if label is not None else operation, error)
        raise error from exc
    elapsed = round((time.perf_counter() - started) * 1000)
    result = f" {call.result_id}" if call.result_id else ""
    logger.info(
        "stripe %s%s -> %s%s (%d ms)",
        operation,
        logged,
        call.outcome,
        result,
        elapsed,
        extra={
            "stripe_operation": operation,
            "stripe_outcome": call.outcome,
            "duration_ms": elapsed,
        },
    )
