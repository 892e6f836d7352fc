"""Payment intents created and listed directly (one-off charges).

localstripe behaviours replaced:
- ``POST /v1/payment_intents``: accepts ``description``, ``off_session`` and other common
  parameters localstripe rejects; emits ``payment_intent.created``.
- ``GET /v1/payment_intents``: added (localstripe has no list), newest first, by customer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox.common import (
    _all,
    _bool,
    _created_filter,
    _list_response,
    _newest_first,
    _opt_str,
    _params,
    _pop_expand,
    _respond,
    _unknown,
)
from stripe_sandbox.events import emit


async def _create_payment_intent(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    confirm = _bool(data.pop("confirm", False), "confirm")
    off_session = data.pop("off_session", None)
    if off_session is not None:
        _bool(off_session, "off_session")
    description = _opt_str(data.pop("description", None), "description")
    for ignored in (
        "statement_descriptor",
        "statement_descriptor_suffix",
        "receipt_email",
        "setup_future_usage",
        "automatic_payment_methods",
        "return_url",
        "error_on_requires_action",
        "confirmation_method",
    ):
        data.pop(ignored, None)
    pi = ls.PaymentIntent(**data)
    pi.description = description
    emit("payment_intent.created", pi)
    if confirm:
        pi._confirm(on_failure_now=pi._report_failure)
    return _respond(pi._export(expand=expand))


async def _list_payment_intents(request: web.Request) -> web.Response:
    """``GET /v1/payment_intents`` (localstripe has no list): newest first, by customer."""
    data = await _params(request)
    expand = _pop_expand(data)
    intents: list[Any] = _newest_first(_all("payment_intent", ls.PaymentIntent))
    if "customer" in data:
        customer = data.pop("customer")
        intents = [pi for pi in intents if pi.customer == customer]
    intents = _created_filter(intents, data)
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/payment_intents", intents, data, expand)
