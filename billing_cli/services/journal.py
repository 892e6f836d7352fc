"""The Stripe write journal: every Stripe write in three phases, re-runnable after any failure.

Why: a timeout, a cut response, a 5xx or a crash after a request left says nothing about
whether Stripe acted. An idempotency key lets a re-run get Stripe's first answer back instead of
acting twice, but only if the re-run sends the *same* key, and only if nothing was holding the
database while Stripe was slow. So every command that writes to Stripe goes through here:

1. **Plan** (:func:`begin`, one short transaction): the intent row is written and committed
   before anything is sent. Its keys are derived from its id (:meth:`Intent.key`), never from
   state that can change between two runs. A re-run of the same operation on the same target
   with the same parameters finds the open intent and reuses it, whatever else was committed in
   between; different parameters are refused while it is open. ``open_scope`` is unique, so
   two operators racing on one tenant get one intent and one clear refusal.
2. **Call** (:func:`call`): Stripe is called with the intent's key and no transaction open. A
   multi-step command records a recovery point after each step (:func:`record_step`), so a
   re-run resumes where it stopped. An ambiguous failure leaves the intent open as ``unknown``
   and raises :class:`~billing_cli.errors.OutcomeUnknown`, whose message tells the operator
   that re-running the command finishes it safely.
3. **Apply** (the service's own transaction): Stripe's answer goes through the registers, the
   audit entry is written, and :func:`close` marks the intent ``succeeded`` or ``failed`` in
   that same transaction. A definite failure (card declined, invalid request) is closed and
   audited by :func:`fail`; a new attempt is then a new intent.

Stripe keeps idempotency keys for at least 24 hours. Past :data:`KEY_WINDOW`, a service looks
the object up before creating it again: everything the tool creates carries
``metadata.billing_intent=<id>`` (:meth:`Intent.metadata`).

Under ``--dry-run`` the same code runs: the intent is planned in a transaction that is rolled
back, recovery points stay in memory, and the DryRunGateway records the writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlmodel import Session

from billing_cli.errors import (
    Conflict,
    DatabaseError,
    GatewayError,
    OutcomeUnknown,
)
from billing_cli.gateway import idempotency_key
from billing_cli.gateway.calls import for_intent
from billing_cli.models import OPEN_INTENT_STATUSES, Invocation, StripeIntent, utcnow
from billing_cli.repository import Database
from billing_cli.repository import intents as intents_repo
from billing_cli.services import audit
from billing_cli.timeparse import iso

T = TypeVar("T")

INTENT_METADATA_KEY = "billing_intent"
KEY_WINDOW = timedelta(hours=23)  # Stripe keeps keys at least 24 h; stay well inside that
LEASE = timedelta(minutes=5)  # how long a run may hold an intent before another may take over
FAMILIES = {
    "subscription.create": "subscription",
    "subscription.upgrade": "subscription",
    "subscription.cancel": "subscription",
    "subscription.resume": "subscription",
    "tenant.remove": "subscription",
    "payment.charge": "payment",
    "payment_method.attach": "payment_method",
    "plan.sync": "plan",
    "reconcile.cancel": "subscription",
    "invoice.pay": "invoice",
    "invoice.void": "invoice",
    "invoice.mark_uncollectible": "invoice",
    "payment.refund": "payment",
    "payment_method.detach": "payment_method",
    "payment_method.default": "payment_method",
    # services/payments/recovery.py: card, defaults, open invoices
    "payment.recover": "payment_method",
    "customer.update": "customer",
    # subscription adjustments (services/subscriptions/adjustments.py): one change at a time
    # per tenant
    "subscription.extend_trial": "subscription",
    "subscription.end_trial": "subscription",
    "subscription.pause": "subscription",
    "subscription.unpause": "subscription",
    "subscription.quantity": "subscription",
    # discounts and credit (services/catalog/discounts.py)
    "subscription.discount": "subscription",
    "subscription.remove_discount": "subscription",
    "customer.credit": "balance",
    "coupon.create": "coupon",
    "coupon.delete": "coupon",
    "webhook_endpoint.create": "webhook_endpoint",
    "webhook_endpoint.disable": "webhook_endpoint",
    "webhook_endpoint.enable": "webhook_endpoint",
    "webhook_endpoint.delete": "webhook_endpoint",
    # bulk price migration (services/subscriptions/price_migration.py): one intent per tenant
    "subscription.migrate_price": "subscription",
}


@dataclass
class Intent:
    """A service's handle on its journal row between phases (no session attached)."""

    id: str
    operation: str
    target: str
    tenant_slug: str | None
    attempts: int
    created_at: datetime
    dry_run: bool
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def resumed(self) -> bool:
        """True when an earlier run of this intent was interrupted."""
        return self.attempts > 1

    def key(self, step: str) -> str:
        """The idempotency key of one step: a function of the intent id alone."""
        return idempotency_key(f"{self.operation}.{step}", self.id)

    def metadata(self) -> dict[str, str]:
        """Metadata every object created under this intent carries, to be found again."""
        return {INTENT_METADATA_KEY: self.id}

    def key_may_have_expired(self, now: datetime | None = None) -> bool:
        """Past Stripe's key window a replayed key may create again: look before creating."""
        return self.resumed and (now or utcnow()) - self.created_at > KEY_WINDOW


def begin(
    db: Database,
    *,
    operation: str,
    target: str,
    tenant_slug: str | None,
    params: dict[str, Any],
    invocation: Invocation,
    check: Callable[[Session], None] | None = None,
    supersede: bool = False,
) -> Intent:
    """Phase 1: record (or reuse) the intent in one short transaction and commit it.

    ``check`` runs first in the same transaction: the service's own refusals (unknown tenant,
    a live subscription already there) so nothing is recorded for a refused command. It is not
    run again for a re-run of an open intent, whose checks already passed before the write that
    may have happened. ``supersede`` lets a new intent with other parameters replace an open
    one, for operations whose re-run finds what an interrupted run made (plans sync adopts).
    """
    family = FAMILIES[operation]
    scope = f"{family}:{tenant_slug or target}"
    digest = params_hash(operation, params)
    try:
        with db.transaction(dry_run=invocation.dry_run) as session:
            existing = intents_repo.open_in_scope(session=session, scope=scope)
            if existing is not None and supersede and existing.params_hash != digest:
                _close_row(existing, succeeded=False, error="superseded by a newer run")
                session.flush()
                existing = None
            if existing is not None:
                return _reuse(
                    existing, operation=operation, digest=digest, dry_run=invocation.dry_run
                )
            if check is not None:
                check(session)
            return _record(
                session, operation, target, tenant_slug, params, digest, scope, invocation
            )
    except DatabaseError as error:
        if "refused the change" in error.message:  # the unique open_scope: a racing operator won
            raise Conflict(
                f"another operator started a {family} change for {tenant_slug or target} at the "
                "same moment; see `billing intents list --open`"
            ) from None
        raise


def has_open(db: Database, *, operation: str, target: str) -> bool:
    """Whether an intent of ``operation``'s family is open for ``target`` (no tenant scope)."""
    with db.read() as session:
        scope = f"{FAMILIES[operation]}:{target}"
        return intents_repo.open_in_scope(session=session, scope=scope) is not None


def record_step(db: Database, intent: Intent, name: str, value: Any) -> None:
    """A recovery point: what one step of a multi-step write produced, committed at once."""
    intent.steps[name] = value
    if intent.dry_run:
        return
    with db.transaction() as session:
        row = _require(session, intent.id)
        row.steps = {**(row.steps or {}), name: value}
        row.updated_at = utcnow()
        session.add(row)


def call(db: Database, intent: Intent, step: str, send: Callable[[str], T], *, what: str) -> T:
    """Phase 2: one Stripe call under the step's key, with no database transaction open.

    A definite error is raised as it is (the caller closes the intent with :func:`fail`). An
    ambiguous one leaves the intent ``unknown`` and becomes :class:`OutcomeUnknown`. The call's
    log line names the intent and tenant, and a Stripe error is counted under the step
    (``<operation>.<step>``) by the gateway's error sinks (:func:`.observe.count_stripe_errors`).
    """
    label = f"{intent.operation}.{step}"
    try:
        with for_intent(intent_id=intent.id, step=label, tenant=intent.tenant_slug):
            return send(intent.key(step))
    except GatewayError as error:
        if not error.ambiguous:
            raise
        if not intent.dry_run:
            _leave_unknown(db, intent, error)
        raise OutcomeUnknown(
            f"{what} may or may not have happened in Stripe ({error.message}); "
            f"re-run the same command to finish it safely (intent {intent.id})"
        ) from error


def close(
    session: Session,
    intent: Intent,
    *,
    succeeded: bool,
    object_id: str | None = None,
    error: str | None = None,
) -> None:
    """Phase 3: mark the intent done, inside the transaction that applies Stripe's answer."""
    if intent.dry_run:
        return
    row = _require(session, intent.id)
    if row.status not in OPEN_INTENT_STATUSES:  # another run applied it first: roll this back
        raise Conflict(
            f"intent {intent.id} was finished by another run meanwhile ({row.status}); "
            "nothing more was changed"
        )
    _close_row(row, succeeded=succeeded, object_id=object_id, error=error)
    row.steps = dict(intent.steps)
    session.add(row)
    session.flush()


def _close_row(
    row: StripeIntent, *, succeeded: bool, object_id: str | None = None, error: str | None = None
) -> None:
    now = utcnow()
    row.status = "succeeded" if succeeded else "failed"
    row.open_scope = None
    row.lease_until = None
    row.stripe_object_id = object_id or row.stripe_object_id
    row.error = error
    row.updated_at = now
    row.finished_at = now


def fail(
    db: Database,
    intent: Intent,
    *,
    invocation: Invocation,
    target: str,
    outcome: str,
    error: GatewayError,
) -> None:
    """A definite failure: close the intent as failed and audit the attempt, together."""
    if intent.dry_run:
        return
    with db.transaction() as session:
        close(session, intent, succeeded=False, error=error.message)
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=intent.tenant_slug,
            outcome=outcome[:500],
            before=None,
            after={"intent": intent.id, "error": error.message[:1000]},
        )


@contextmanager
def failure_closes(
    db: Database, intent: Intent, *, invocation: Invocation, what: str
) -> Iterator[None]:
    """Around phase 2: a definite failure closes the intent as failed and audits it
    (``<what> failed: <Stripe's reason>``), then goes on up; an ambiguous one leaves the intent
    open (see :func:`call`)."""
    try:
        yield
    except GatewayError as error:
        if not error.ambiguous:
            fail(
                db,
                intent,
                invocation=invocation,
                target=intent.target,
                outcome=f"{what} failed: {error.message}",
                error=error,
            )
        raise


def params_hash(operation: str, params: dict[str, Any]) -> str:
    """What makes two runs "the same command": the operation and its parameters."""
    encoded = json.dumps([operation, params], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def new_intent_id() -> str:
    return f"bi_{secrets.token_hex(12)}"


# -- helpers ---------------------------------------------------------------------------------


def _reuse(existing: StripeIntent, *, operation: str, digest: str, dry_run: bool) -> Intent:
    if existing.operation != operation or existing.params_hash != digest:
        started = iso(existing.created_at) or "?"
        raise Conflict(
            f"{existing.target} has an unfinished {existing.operation} with other parameters "
            f"(intent {existing.id}, {existing.status}, started {started} by {existing.operator}); "
            f"finish it first: `billing intents resume {existing.id}`"
        )
    if not dry_run:
        _take_lease(existing)
    existing.attempts += 1
    existing.updated_at = utcnow()
    return _handle(existing, dry_run=dry_run)


def _take_lease(existing: StripeIntent) -> None:
    """Refuse to race a run that is still working on the intent; take over a dead one's.

    A run on this machine whose process is gone (killed, crashed) is taken over at once; a run
    elsewhere, only once its lease has expired.
    """
    now = utcnow()
    held = existing.lease_until is not None and existing.lease_until > now
    if held and _runner_alive(existing.runner):
        raise Conflict(
            f"intent {existing.id} ({existing.operation} on {existing.target}) is being run "
            f"right now by {existing.operator} ({existing.runner}); wait for it, then see "
            f"`billing intents show {existing.id}`"
        )
    existing.runner = runner_id()
    existing.lease_until = now + LEASE


def runner_id() -> str:
    """This process and thread, as ``host:pid:thread``."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{threading.get_ident()}"


def _runner_alive(runner: str | None) -> bool:
    """False when the runner is known to be gone: a process of this host that no longer
    exists, or this very thread (a sequential re-run in one process). True otherwise: another
    machine's run, another live process, another live thread of this one."""
    parts = (runner or "").rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid, thread = parts[0], int(parts[1]), parts[2]
    if host != socket.gethostname()[:80]:
        return True
    if pid == os.getpid():
        me = str(threading.get_ident())
        return thread != me and thread in {str(t.ident) for t in threading.enumerate()}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record(
    session: Session,
    operation: str,
    target: str,
    tenant_slug: str | None,
    params: dict[str, Any],
    digest: str,
    scope: str,
    invocation: Invocation,
) -> Intent:
    intent_id = new_intent_id()
    now = utcnow()
    row = StripeIntent(
        id=intent_id,
        operation=operation,
        family=FAMILIES[operation],
        target=target,
        tenant_slug=tenant_slug,
        params_hash=digest,
        params=params,
        idempotency_key=idempotency_key(operation, intent_id),
        status="pending",
        open_scope=scope,
        steps={},
        runner=runner_id(),
        lease_until=now + LEASE,
        operator=invocation.operator[:200],
        command=invocation.command[:200],
        attempts=1,
        created_at=now,
        updated_at=now,
    )
    intents_repo.add(session=session, intent=row)
    return _handle(row, dry_run=invocation.dry_run)


def _handle(row: StripeIntent, *, dry_run: bool) -> Intent:
    return Intent(
        id=row.id,
        operation=row.operation,
        target=row.target,
        tenant_slug=row.tenant_slug,
        attempts=row.attempts,
        created_at=row.created_at or utcnow(),
        dry_run=dry_run,
        steps=dict(row.steps or {}),
    )


def _require(session: Session, intent_id: str) -> StripeIntent:
    row = intents_repo.get(session=session, intent_id=intent_id, for_update=True)
    if row is None:
        raise Conflict(f"intent {intent_id} disappeared from the journal")
    return row


def _leave_unknown(db: Database, intent: Intent, error: GatewayError) -> None:
    with db.transaction() as session:
        row = _require(session, intent.id)
        row.status = "unknown"
        row.lease_until = None
        row.error = error.message
        row.steps = {**(row.steps or {}), **intent.steps}
        row.updated_at = utcnow()
        session.add(row)
