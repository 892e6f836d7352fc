"""``billing webhooks endpoints disable|enable|delete ID``: switching a Stripe endpoint off and on.

Why these are journal writes and not plain calls: each changes where Stripe delivers money
events, so an answer lost after Stripe acted must not leave the operator guessing. The intent
(operation ``webhook_endpoint.<action>``, target ``webhook_endpoint:<id>``) is recorded before
the call and closed with the audit entry in one transaction afterwards, as for every Stripe write
(:mod:`.journal`).

A re-run after an ambiguous failure reads the endpoint first. Already in the state asked for
(disabled, enabled, gone) with the intent still open: Stripe acted and only the answer was lost,
so the intent is closed and the change audited without calling Stripe again. Not there yet:
the call is sent again under the intent's key (a disable or enable; Stripe replays its first
answer within the key window). A delete carries no key (Stripe ignores one on DELETE, which is
idempotent by nature): an endpoint already gone finishes the open intent, and none open means
an unknown id, a one-line error. Asked for a state the endpoint is already in, with no intent
open, nothing is written at all.

Disabling keeps the endpoint and its secret: Stripe stops delivering and, in live mode, keeps
the undelivered events for the Events API, so ``webhooks replay --undelivered`` catches up
after ``enable``. Deleting is final: a new endpoint for the URL gets a new signing secret.
"""

from __future__ import annotations

from typing import Any, Literal

from billing_cli.errors import NotFound
from billing_cli.gateway import Gateway, WebhookEndpointInfo
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.services import audit, journal
from billing_cli.services.stripe_ops import planned_writes
from billing_cli.services.webhooks.setup import endpoint_view

Action = Literal["disable", "enable", "delete"]
ACTIONS: tuple[Action, ...] = ("disable", "enable", "delete")
# journal operation -> action, for `billing intents resume`
OPERATIONS: dict[str, Action] = {f"webhook_endpoint.{action}": action for action in ACTIONS}
_DONE = {"disable": "disabled", "enable": "enabled", "delete": "deleted"}


def change_endpoint(
    db: Database, gateway: Gateway, *, invocation: Invocation, endpoint_id: str, action: Action
) -> Change:
    """Disable, enable or delete the endpoint ``endpoint_id`` (see the module's docstring)."""
    operation = f"webhook_endpoint.{action}"
    target = f"webhook_endpoint:{endpoint_id}"
    current = _find(gateway, endpoint_id)
    interrupted = journal.has_open(db, operation=operation, target=target)
    if current is None and not interrupted:
        raise NotFound(
            f"no webhook endpoint {endpoint_id}; `billing webhooks endpoints` lists them"
        )
    already = _already(current, action)
    if already and not interrupted:
        assert current is not None
        return Change.unchanged(
            target,
            endpoint_view(current),
            dry_run=invocation.dry_run,
            message=f"webhook endpoint {endpoint_id} is already {_DONE[action]}",
        )
    intent = journal.begin(
        db,
        operation=operation,
        target=target,
        tenant_slug=None,
        params={"endpoint": endpoint_id},
        invocation=invocation,
    )
    before = endpoint_view(current) if current is not None else None
    if already:
        after = None if current is None else endpoint_view(current)
        note = " (finished an interrupted run: Stripe had acted)"
    else:
        assert current is not None
        after = _send(db, gateway, invocation, intent, current, action)
        note = ""
    verb = f"would {action}" if invocation.dry_run else _DONE[action]
    message = f"{verb} webhook endpoint {endpoint_id} ({current.url if current else 'gone'})"
    return _recorded(db, gateway, invocation, intent, before, after, message + note)


def _find(gateway: Gateway, endpoint_id: str) -> WebhookEndpointInfo | None:
    return next((e for e in gateway.list_webhook_endpoints() if e.id == endpoint_id), None)


def _already(current: WebhookEndpointInfo | None, action: Action) -> bool:
    if action == "delete":
        return current is None
    return current is not None and current.enabled == (action == "enable")


def _send(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    intent: journal.Intent,
    current: WebhookEndpointInfo,
    action: Action,
) -> dict[str, Any] | None:
    """Phase 2, no transaction open: the endpoint as Stripe answers it (None once deleted)."""
    what = f"{action} webhook endpoint {current.id}"
    with journal.failure_closes(db, intent, invocation=invocation, what=what):
        if action == "delete":
            journal.call(
                db,
                intent,
                "endpoint",
                lambda _key: gateway.delete_webhook_endpoint(current.id),
                what=what,
            )
            return None
        answer = journal.call(
            db,
            intent,
            "endpoint",
            lambda key: gateway.set_webhook_endpoint_disabled(
                current.id, disabled=action == "disable", idempotency_key=key
            ),
            what=what,
        )
    return endpoint_view(answer)


def _recorded(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    intent: journal.Intent,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    message: str,
) -> Change:
    """Phase 3: the audit entry and the intent's close, in one transaction."""
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=intent.target,
            outcome=message,
            before=before,
            after=after,
        )
        journal.close(session, intent, succeeded=True, object_id=intent.target.split(":", 1)[1])
    return Change(
        target=intent.target,
        action=intent.operation.rsplit(".", 1)[1],
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
    )
