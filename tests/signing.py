"""Sign webhook payloads exactly as Stripe does, so tests send real signed deliveries.

Our own HMAC, not stripe-python's helper: if the verifier and the signer shared code, a bug in
it would pass unseen. Stripe signs ``f"{t}.{payload}"`` with HMAC-SHA256 under the endpoint's
secret and sends ``Stripe-Signature: t=<t>,v1=<hex digest>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload`` signed with ``secret``."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def signed_delivery(
    event: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery of ``event``, as Stripe would POST it."""
    body = json.dumps(event, indent=2).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(body, secret, timestamp=timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return body, headers
