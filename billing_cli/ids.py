"""Ids as operators type them, checked for form at the command line before any lookup.

A mistyped id (``tenants show ACME``, ``webhooks show in_123``) used to reach the database or
Stripe and come back as "not found", or worse, as Stripe's answer about some other kind of
object: ``webhooks replay --event ch_123`` asked the Events API for a charge. Each id the CLI
takes is checked here first, so the answer is one line naming the form expected (exit 2), and
an id of the wrong kind is named for what it is.
"""

from __future__ import annotations

import re

from billing_cli.errors import UsageError
from billing_cli.text import shown

# Matched with fullmatch: ``$`` would also accept a value ending in a newline ("acme\n").
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Stripe's ids: a lower-case prefix, an underscore, then letters, digits (and, in test mode,
# more underscores). Object ids are at most 255 characters.
_STRIPE_ID = re.compile(r"([a-z]+)_[A-Za-z0-9_]{1,250}")
_INTENT_ID = re.compile(r"bi_[0-9a-f]{24}")
# What an operator may paste by mistake, named so the error says what it is.
_KINDS = {
    "evt": "an event",
    "in": "an invoice",
    "ch": "a charge",
    "pi": "a payment intent",
    "pm": "a payment method",
    "cus": "a customer",
    "sub": "a subscription",
    "we": "a webhook endpoint",
    "price": "a price",
    "prod": "a product",
    "re": "a refund",
    "bi": "a billing intent",
}


def check_slug(slug: str) -> str:
    """A tenant's or plan's slug, in the form ``tenants add`` and ``plans add`` accept."""
    if not SLUG_PATTERN.fullmatch(slug):
        raise UsageError(
            f"invalid slug {shown(slug)}: use 1-63 lower-case letters, digits and dashes, "
            "starting with a letter or digit"
        )
    return slug


def check_stripe_id(value: str, *, prefix: str) -> str:
    """A Stripe id of one kind (``evt``, ``we``...): a well-formed id of another kind is named."""
    match = _STRIPE_ID.fullmatch(value)
    wanted = f"{_KINDS.get(prefix, prefix)} id ({prefix}_...)"
    if match is None:
        raise UsageError(f"{shown(value)} is not {wanted}")
    if match.group(1) != prefix:
        kind = _KINDS.get(match.group(1), "another object's")
        raise UsageError(f"{shown(value)} is {kind} id, not {wanted}")
    return value


def check_intent_id(value: str) -> str:
    """A journal intent's id, as ``intents list`` shows it (``bi_`` and 24 hex digits)."""
    if _INTENT_ID.fullmatch(value) is None:
        raise UsageError(f"{shown(value)} is not an intent id (bi_ and 24 hex digits)")
    return value
