"""The one place Stripe's exceptions become ``GatewayError``s and every call is logged.

Each Stripe call in the adapter runs inside :func:`stripe_call`, which times it, logs one line on
the ``billing.stripe`` logger (operation, object ids, outcome, duration) and turns a
``stripe.StripeError`` into the matching member of :mod:`billing_cli.errors` with a single-line
message written for the operator. Keys never reach a message or a log line: Stripe's own texts
are scrubbed of anything that looks like an API key, a webhook secret or an idempotency key.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def stripe_call(operation: str, **ids: str | None) -> Iterator[None]:
    """Run one Stripe call: log it, time it, and translate its errors.

    ``ids`` name the objects involved (``customer="cus_..."``); never pass keys or idempotency
    keys, they would end up in the log.
    """
    started = time.perf_counter()
    described = _describe(ids)
    try:
        yield
    except stripe.StripeError as exc:
        elapsed = round((time.perf_counter() - started) * 1000)
        outcome = type(exc).__name__
        logger.warning(
            "stripe %s%s -> %s (%d ms)",
            operation,
            f" {described}" if described else "",
            outcome,
            elapsed,
            extra={
                "stripe_operation": operation,
                "stripe_outcome": outcome,
                "duration_ms": elapsed,
            },
        )
        raise translate(exc, subject=described) from exc
    elapsed = round((time.perf_counter() - started) * 1000)
    logger.info(
        "stripe %s%s -> ok (%d ms)",
        operation,
        f" {described}" if described else "",
        elapsed,
        extra={"stripe_operation": operation, "stripe_outcome": "ok", "duration_ms": elapsed},
    )
