"""The sandbox's ``pause_collection`` on subscriptions (absent from localstripe and extensions).

``POST /v1/subscriptions/{id}`` with ``pause_collection[behavior]`` (``keep_as_draft``,
``mark_uncollectible``, ``void``) and optional ``pause_collection[resumes_at]`` pauses
collection; ``pause_collection=""`` resumes it. As in Stripe the subscription's status does
not change, and ``customer.subscription.updated`` is emitted with ``previous_attributes``. The
parameter reaches it through :mod:`.subscription_updates`.

Replaces: ``Subscription._export``'s constant ``"pause_collection": None``. Not modelled: what
renewal invoices do while paused (the sandbox's clock control still bills them).
"""

from __future__ import annotations

from typing import Any

from stripe_sandbox import billing_cycle, common, subscription_updates, subscriptions

JSON = dict[str, Any]
BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")


def set_pause(sub: subscriptions.Subscription, raw: Any) -> None:
    """Apply a ``pause_collection`` parameter to ``sub`` and emit the update event."""
    if sub.status in ("canceled", "incomplete_expired"):
        raise common._bad("pause_collection", "A canceled subscription cannot be paused.")
    before = sub._export()
    if raw in ("", None):
        sub._pause_collection = None  # type: ignore[attr-defined]
    else:
        if not isinstance(raw, dict):
            raise common._bad("pause_collection")
        common._unknown(raw, {"behavior", "resumes_at"})
        behavior = raw.get("behavior")
        if behavior not in BEHAVIORS:
            raise common._bad("pause_collection[behavior]")
        resumes_at = common._opt_int(
            raw.get("resumes_at"), "pause_collection[resumes_at]", minimum=common._now() + 1
        )
        sub._pause_collection = {"behavior": behavior, "resumes_at": resumes_at}  # type: ignore[attr-defined]
    billing_cycle._emit_sub_updated(sub, before)


ROUTES: list[tuple[str, str, common.Handler]] = []  # served by subscription_updates

_installed = False


def install() -> None:
    """Make exported subscriptions carry their ``pause_collection`` (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    subscription_updates.PARAMETERS["pause_collection"] = set_pause
    original = subscriptions.Subscription._export

    def export(self: subscriptions.Subscription, expand: list[str] | None = None) -> JSON:
        obj = original(self, expand)
        pause = getattr(self, "_pause_collection", None)
        obj["pause_collection"] = dict(pause) if pause else None
        return obj

    subscriptions.Subscription._export = export  # type: ignore[method-assign]
