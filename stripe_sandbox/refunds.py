"""Refunds for the sandbox: ``POST /v1/refunds`` and ``GET /v1/refunds``.

localstripe behaviours replaced: its ``Refund`` accepts any amount (a refund beyond what is left
on the charge succeeds), rejects ``reason``, ignores an already fully refunded charge and emits
no event. Here, as in Stripe: ``payment_intent`` or ``charge``; ``amount`` defaults to what is
left; more than is left is refused (``amount_too_large``, or ``charge_already_refunded`` when
nothing is left); ``reason`` is one of Stripe's three; ``metadata`` is kept; the charge's
``amount_refunded``/``refunded`` follow (localstripe derives them from the stored refunds);
``refund.created`` and ``charge.refunded`` are emitted. Listing filters by ``payment_intent``
or ``charge``, newest first.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox import common, events

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _charge_for(data: common.JSON) -> tuple[Any, str | None]:
    """The charge a refund request names, and the PaymentIntent when it named one."""
    intent_id = common._opt_str(data.pop("payment_intent", None), "payment_intent")
    charge_id = common._opt_str(data.pop("charge", None), "charge")
    if (intent_id is None) == (charge_id is None):
        raise common._bad("charge", "Provide exactly one of charge or payment_intent.")
    if intent_id is not None:
        intent = common._get("payment_intent", intent_id)
        charge = intent.latest_charge
        if charge is None or charge.status != "succeeded":
            raise common._error(
                400,
                f"PaymentIntent {intent_id} has no successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        return charge, intent_id
    charge = common._get("charge", str(charge_id))
    return charge, charge.payment_intent


def create_refund(data: common.JSON) -> Any:
    charge, intent_id = _charge_for(data)
    if charge.status != "succeeded":
        raise common._bad("charge", "Cannot refund a failed payment.")
    left = int(charge.amount) - int(charge.amount_refunded)
    if left <= 0:
        raise common._error(
            400,
            f"Charge {charge.id} has already been refunded.",
            code="charge_already_refunded",
        )
    amount = common._opt_int(data.pop("amount", None), "amount", minimum=1)
    if amount is not None and amount > left:
        raise common._error(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
            param="amount",
            code="amount_too_large",
        )
    reason = common._opt_str(data.pop("reason", None), "reason")
    if reason is not None and reason not in REASONS:
        raise common._bad("reason", f"Invalid reason: must be one of {', '.join(REASONS)}.")
    metadata = common._merge_metadata({}, data.pop("metadata", None))
    common._unknown(data, set())
    refund = ls.Refund(charge=charge.id, amount=amount or left, metadata=metadata)
    refund.payment_intent = intent_id
    refund.reason = reason
    events.emit("refund.created", refund)
    events.emit("charge.refunded", charge)
    return refund


async def _create(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    return common._respond(create_refund(data)._export(expand=expand))


async def _list(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    refunds: list[Any] = common._newest_first(common._all("refund", ls.Refund))
    if "payment_intent" in data:
        intent_id = data.pop("payment_intent")
        refunds = [r for r in refunds if r.payment_intent == intent_id]
    if "charge" in data:
        charge_id = data.pop("charge")
        refunds = [r for r in refunds if r.charge == charge_id]
    common._unknown(data, {"limit", "starting_after", "ending_before"})
    return common._list_response("/v1/refunds", refunds, data, expand)


ROUTES: list[tuple[str, str, common.Handler]] = [
    ("POST", "/v1/refunds", _create),
    ("GET", "/v1/refunds", _list),
]
