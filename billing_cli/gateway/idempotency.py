"""Deterministic idempotency keys for Stripe writes.

stripe-python only adds a random key to its own retries, which does not help an operator who
re-runs a command after a crash or a timeout. A key derived from the operation and its target
does: Stripe keeps keys for at least 24 hours and answers a replayed key with the first response,
so the re-run gets the first subscription or charge back instead of making a second one.
Services choose the parts (what is acted on and the values that make it that request).
"""

from __future__ import annotations

import hashlib
import json
import re

_OPERATION = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
_PREFIX = "billing"


def idempotency_key(operation: str, *parts: str | int) -> str:
    """Return ``billing:<operation>:<32 hex of sha256(parts)>`` for one logical write.

    The parts are JSON-encoded before hashing, so ``("a:b",)`` and ``("a", "b")`` differ and
    ``1`` differs from ``"1"``. At least one part (the target) is required: a key made from the
    operation alone would make every customer's write collide.
    """
    if not _OPERATION.match(operation):
        raise ValueError(
            f"operation {operation!r} must be 1-100 lowercase letters, digits, '_', '.' or '-'"
        )
    if not parts:
        raise ValueError("an idempotency key needs at least one part naming the target")
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, str | int):
            raise TypeError(f"idempotency key parts must be str or int, not {type(part).__name__}")
    encoded = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:32]
    return f"{_PREFIX}:{operation}:{digest}"
