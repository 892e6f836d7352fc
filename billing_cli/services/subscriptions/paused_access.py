"""What a paused subscription does to the tenant's access: one rule for the CLI and webhooks.

Stripe's ``pause_collection`` stops collecting payment (invoices kept as drafts, marked
uncollectible or voided) while the subscription stays ``active``: Stripe itself says nothing
about access. That is our policy, set by ``BILLING_PAUSED_ACCESS``:

- ``keep`` (default): a pause is a courtesy to a customer in trouble; the tenant keeps working.
- ``suspend``: no collection, no service; the tenant is suspended by ``billing`` while paused
  and reactivated (like any billing suspension) when collection resumes.

The paused state is part of the subscription snapshot register (it is copied only when a
snapshot is applied, see :mod:`billing_cli.services.webhooks.policy`), and the rule below is a
pure function of the stored row and the setting, so the tenant's final state does not depend
on the order in which ``customer.subscription.updated`` events arrive, nor on whether the CLI
or a webhook applied the pause first. It only ever adds a reason: the other billing reasons
(canceled, failed payments) keep precedence, and a manual suspension is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PAUSED_REASON = "billing: collection paused"


def pause_of(subscription: Mapping[str, Any]) -> str | None:
    """``pause_collection.behavior`` of a Subscription payload (either API shape), or None."""
    pause = subscription.get("pause_collection")
    if isinstance(pause, Mapping):
        behavior = pause.get("behavior")
        return behavior if isinstance(behavior, str) and behavior else None
    return None


def suspension(
    reason: str | None, *, status: str | None, pause_collection: str | None, access: str
) -> str | None:
    """The billing suspension reason once the paused-access policy is applied to ``reason``
    (what :func:`~billing_cli.services.webhooks.policy.billing_suspension` said)."""
    if reason is not None or access != "suspend" or pause_collection is None:
        return reason
    if status in ("canceled", "incomplete_expired"):
        return reason
    return PAUSED_REASON
