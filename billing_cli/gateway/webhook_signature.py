"""Checking the ``Stripe-Signature`` of a webhook delivery, and turning its body into a dict.

It sits in the gateway because stripe-python does the check (``WebhookSignature.verify_header``:
the same parser, constant-time comparison and tolerance rule Stripe ships), and only the gateway
imports stripe. The web endpoint calls :func:`verify_signature` before anything else, so a
delivery that fails here is answered 400 and never reaches the event engine or the database.

Several secrets may be given while the endpoint's secret is rolled: Stripe then signs each
delivery with the old and the new secret, and a delivery that verifies with any one of them is
accepted.

The tolerance is checked both ways. stripe-python refuses a timestamp more than ``tolerance``
seconds old (a replayed capture); a timestamp more than ``tolerance`` seconds in the future is
refused here too: Stripe stamps a delivery when it sends it, so one from the future is either a
forged capture prepared for later replay or a clock far off, and in both cases the safe answer
is 400 (Stripe retries, and a clock fixed by then lets the retry through).

Every failure is one :class:`~billing_cli.errors.WebhookError` with a short reason of our own:
stripe-python's messages are long and carry the header, and none of ours ever echo the secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from billing_cli.errors import WebhookError

DEFAULT_TOLERANCE_SECONDS = 300

# stripe-python's message fragments -> our one-line reasons (its messages are advice to a
# developer, too long for a log line).
# The last item is the refusal's counting code (WebhookError.reason).
_REASONS = (
    ("Unable to extract timestamp", "malformed Stripe-Signature header", "bad_signature"),
    ("expected scheme", "no v1 signature in the Stripe-Signature header", "bad_signature"),
    ("matching the expected signature", "signature does not match the payload", "bad_signature"),
    ("tolerance zone", "timestamp outside the tolerance", "stale_timestamp"),
    ("No Stripe-Signature header", "missing Stripe-Signature header", "missing_signature"),
    ("No webhook secret", "no webhook secret configured", "bad_signature"),
)


class NonFiniteNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a body: Python's json reads them, JSON has
    none. Taken in, PostgreSQL refuses the payload's jsonb (the event fails for good, and the
    endpoint's 500 makes Stripe redeliver it for days) and SQLite stores invalid JSON."""


def refuse_constant(name: str) -> NoReturn:
    """``parse_constant`` for every event decoder: refuse a non-finite number."""
    raise NonFiniteNumber(f"{name} is not a JSON number")


def load_verifier() -> None:
    """Import stripe now, so the first delivery does not pay for it (called at app start)."""
    import stripe  # noqa: F401


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """Verify ``header`` over the raw ``payload`` with ``secret`` (or any of several secrets);
    return the event as a dict.

    Raises :class:`WebhookError` for a missing or malformed header, a signature that matches
    none of the secrets, a timestamp more than ``tolerance`` seconds old or in the future, or a
    body that is not a JSON object.
    """
    secrets = [s for s in ([secret] if isinstance(secret, str) else secret) if s.strip()]
    if not secrets:
        raise WebhookError("no webhook secret configured", reason="bad_signature")
    if not header:
        raise WebhookError("missing Stripe-Signature header", reason="missing_signature")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError("body is not UTF-8") from None
    _verify_with_any(text, header, secrets, tolerance)
    _refuse_future(header, tolerance)
    try:
        event = json.loads(text, parse_constant=refuse_constant)
    except NonFiniteNumber as error:
        raise WebhookError(f"body is not valid JSON: {error}") from None
    except (ValueError, RecursionError):
        raise WebhookError("body is not valid JSON") from None
    if not isinstance(event, dict):
        raise WebhookError("body is JSON but not an object")
    return event


def _verify_with_any(text: str, header: str, secrets: Sequence[str], tolerance: int) -> None:
    """Pass when one secret verifies. Of the refusals, a stale timestamp wins: stripe-python
    checks the time only once the signature matched, so it says which secret signed."""
    import stripe

    failures: list[tuple[str, str]] = []
    for one in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, one, tolerance)
        except stripe.SignatureVerificationError as error:
            failures.append(_reason(str(error), tolerance))
        else:
            return
    stale = [f for f in failures if f[1] == "stale_timestamp"]
    message, reason = (stale or failures)[0]
    raise WebhookError(message, reason=reason)


def _refuse_future(header: str, tolerance: int) -> None:
    """Refuse a (verified) timestamp more than ``tolerance`` seconds ahead of this clock."""
    stamps = [v for k, _, v in (item.partition("=") for item in header.split(",")) if k == "t"]
    if tolerance and stamps and int(stamps[0]) > time.time() + tolerance:
        raise WebhookError(
            f"timestamp outside the tolerance ({tolerance} s): in the future",
            reason="stale_timestamp",
        )


def _reason(message: str, tolerance: int) -> tuple[str, str]:
    for fragment, reason, code in _REASONS:
        if fragment in message:
            if reason.startswith("timestamp"):
                return f"{reason} ({tolerance} s)", code
            return reason, code
    return "signature verification failed", "bad_signature"
