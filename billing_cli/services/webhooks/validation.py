"""Hostile values in a signed event, checked where the event comes in.

A valid signature proves who sent the bytes, not that they fit: a replayed file can hold
anything, and even Stripe's own objects carry text a customer typed. Two kinds of bad value are
told apart, because they call for opposite answers:

* **The envelope** (id, type, ``created``, ``api_version``) is what the ledger stores and keys on.
  An id with a NUL or of 5,000 characters cannot be stored, so processing it would fail every
  time and the endpoint's 500 would make Stripe redeliver it forever. Such an event is refused
  whole with ``WebhookError`` (400, nothing stored; a replay refuses the batch before applying
  anything).
* **Fields of the object** (a customer's name and e-mail) are Stripe's truth about someone else's
  input. Refusing them would fail the event for good, so they are made to fit instead: an
  e-mail that is not an address is not synced, a name is cut to its column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from billing_cli.errors import WebhookError
from billing_cli.text import EMAIL_MAX, TENANT_NAME_MAX, clip, printable, shown

# The ledger's column sizes (billing_cli.models.WebhookEvent).
EVENT_ID_MAX = 255
EVENT_TYPE_MAX = 100
API_VERSION_MAX = 64
# 9999-12-31T23:59:59Z, the last second a datetime holds: anything later overflows on reading.
MAX_UNIX_TIME = 253_402_300_799

# Stripe's ids and types are short ASCII words; anything else was not made by Stripe.
_EVENT_ID = re.compile(r"[A-Za-z0-9_\-.:]+")
_EVENT_TYPE = re.compile(r"[a-z0-9_.*]+")
_API_VERSION = re.compile(r"[A-Za-z0-9_\-.]+")
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")


def check_envelope(
    *, event_id: str, event_type: str, created: int, api_version: str | None
) -> None:
    """Refuse an envelope the ledger could not store (raises WebhookError: 400, nothing stored)."""
    if len(event_id) > EVENT_ID_MAX or not _EVENT_ID.fullmatch(event_id):
        raise WebhookError(
            f"malformed event: id {shown(event_id)} is not a Stripe id "
            f"(at most {EVENT_ID_MAX} letters, digits and _-.:)"
        )
    if len(event_type) > EVENT_TYPE_MAX or not _EVENT_TYPE.fullmatch(event_type):
        raise WebhookError(f"malformed event {event_id}: type {shown(event_type)} is not valid")
    if created > MAX_UNIX_TIME:
        raise WebhookError(f"malformed event {event_id}: created {created} is out of range")
    if api_version is not None and (
        len(api_version) > API_VERSION_MAX or not _API_VERSION.fullmatch(api_version)
    ):
        raise WebhookError(f"malformed event {event_id}: api_version is not valid")


def check_unix_time(value: int, name: str) -> int:
    """A timestamp inside an object; out of range is a ValueError (that event fails alone)."""
    if not 0 <= value <= MAX_UNIX_TIME:
        raise ValueError(f"{name} {value} is out of range for a Unix timestamp")
    return value


@dataclass(frozen=True)
class CustomerContact:
    """A customer's name and e-mail as they may be stored; None where nothing should change."""

    name: str | None
    email: str | None
    notes: tuple[str, ...] = ()


def customer_contact(*, name: str | None, email: str | None) -> CustomerContact:
    """Make Stripe's name and e-mail fit the tenant's columns, saying what was done."""
    notes: list[str] = []
    if name is not None:
        cleaned = printable(name).strip()
        if printable(name) != name:
            notes.append("control characters removed from the name")
        if len(cleaned) > TENANT_NAME_MAX:
            notes.append(f"name cut to {TENANT_NAME_MAX} characters")
        name = clip(cleaned, TENANT_NAME_MAX) or None
    if email is not None and (len(email) > EMAIL_MAX or not _EMAIL.fullmatch(email)):
        notes.append(f"e-mail {shown(email)} is not an address; kept the tenant's")
        email = None
    return CustomerContact(name=name, email=email, notes=tuple(notes))
