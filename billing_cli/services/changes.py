"""One shape for a Stripe change: a service describes it, :func:`run` carries it out.

Why: every command that writes to Stripe walks the same journal (:mod:`.journal`): plan the
intent, call Stripe with its key and no transaction open, apply the answer with the audit entry
and the intent's close in one transaction; dry-run it through the same path; answer a re-run
after a crash or a timeout by finishing, never by acting twice. Written out per command, that
skeleton drifts: one command forgets the recovery point, another audits outside the apply's
transaction. So a service states only what differs (a :class:`StripeChange`) and :func:`run`
owns the rest:

- the plan (:func:`journal.begin`), with the service's refusals (``check``) in its transaction;
- the *nothing to do* path: when Stripe already shows the change (``already``) and no
  interrupted run is open, no intent is recorded and ``unchanged`` answers (no audit entry);
- recovery points (``remember``) recorded once, before the call;
- Stripe's preview of the invoice the change makes, fetched before the call when wanted;
- the call under the intent's key with no transaction open, skipped when an interrupted run's
  write already shows (``already``) or is found again (``find``, e.g. past the key window); a
  definite failure closes the intent as failed and audits it, an ambiguous one leaves it open
  and tells the operator to re-run;
- the apply transaction: the service's ``apply``, the audit entry, ``after_apply``, the close;
- the result: a :class:`~billing_cli.models.Change` with the message, the Stripe writes a dry
  run would send and the side effects, plus the invoice preview.

Under ``--dry-run`` the gateway is a DryRunGateway and every transaction is rolled back, so the
same code path reads real state, records the writes it would send and writes nothing.

Writing a new Stripe change (``subs migrate`` is the next one)
--------------------------------------------------------------
1. Validate the arguments and read what the change depends on (for a subscription,
   :func:`.subscription_updates.live_subscription`); raise a ``UsageError``/``Conflict`` here,
   before anything is recorded.
2. Judge from Stripe's live state whether the change is already made; if so, pass that state as
   ``already`` and say in ``unchanged`` what the command answers then (for a subscription,
   :func:`.subscription_updates.sync_unchanged`, which still syncs the local row).
3. Describe the change: ``operation`` (add it to :data:`.journal.FAMILIES`), ``target``,
   ``params`` (everything that makes two runs "the same command"; hashed by the journal, so
   no value that changes between runs, such as "now"), ``send`` (one gateway call taking the
   idempotency key and the intent), ``apply`` (the local writes, returning before/after and
   the audit outcome), ``verbs`` and ``message`` (the operator's sentence). An update of a
   tenant's subscription states only its own parts through
   :meth:`.adjustments.SubscriptionUpdate.change`, which adds the rest (target, the row's
   apply through the registers, the tenant's access, the ``from`` recovery point).
4. ``return run(db, gateway, invocation, change)``. Test the dry run, a refusal, and a re-run
   after a fault injected *after* Stripe acted (``tests/faults.py``): one Stripe write, one
   audit entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlmodel import Session

from billing_cli.gateway import Gateway, InvoicePreview
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.services import audit, journal
from billing_cli.services.journal import Intent
from billing_cli.services.payments.invoice_views import preview_view
from billing_cli.services.stripe_ops import planned_writes
from billing_cli.services.subscriptions.updates import NothingToDo


class StripeObject(Protocol):
    """What the runner needs of Stripe's answer: its id, recorded on the intent."""

    @property
    def id(self) -> str: ...


A = TypeVar("A", bound=StripeObject)


@dataclass(frozen=True)
class Applied:
    """What a change's local apply did: the before/after it shows and audits, the audit
    entry's outcome, and anything else it did to the tenant (suspension, notice)."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None
    outcome: str
    side_effects: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeResult:
    """A change, with Stripe's preview of the invoice it makes when money is involved."""

    change: Change
    preview: InvoicePreview | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.change.to_dict()
        data["invoice_preview"] = None if self.preview is None else preview_view(self.preview)
        return data


@dataclass(frozen=True)
class StripeChange(Generic[A]):
    """Everything that makes one Stripe write different from another; :func:`run` does the rest.

    ``send`` receives the intent's idempotency key and the intent, whose ``metadata()`` every
    object it creates carries, to be found again past the key window. ``apply`` and ``message``
    receive Stripe's answer and the intent, whose ``steps`` hold the recovery points, so that
    a re-run can still say what the change was from.
    """

    operation: str
    target: str
    tenant_slug: str | None
    params: dict[str, Any]
    action: str
    what: str  # "extending acme's trial": says what may or may not have happened
    verbs: tuple[str, str]  # ("extend", "extended"): "would extend" under --dry-run
    send: Callable[[str, Intent], A]
    apply: Callable[[Session, A, Intent], Applied]
    message: Callable[[A, Intent], str]  # the sentence after the verb
    step: str = "update"  # the name the idempotency key is derived from
    check: Callable[[Session], None] | None = None  # refusals, in the plan's transaction
    already: A | None = None  # Stripe's state when it already shows the change
    # the answer then, if no run is open; without it, what already shows is applied and audited
    unchanged: Callable[[], Change] | None = None
    find: Callable[[Intent], A | None] | None = None  # an earlier run's object, looked up again
    remember: Mapping[str, Any] = field(default_factory=dict)  # recovery points before the call
    preview: Callable[[], InvoicePreview] | None = None
    want_preview: bool | None = None  # None: only under --dry-run
    failed: str | None = None  # "<failed> failed: <reason>" in the audit; default ``what``
    # more local writes in the same transaction; returns what they did, listed as side effects
    after_apply: Callable[[Session, A], Sequence[str]] | None = None


def run(
    db: Database, gateway: Gateway, invocation: Invocation, change: StripeChange[A]
) -> ChangeResult:
    """Carry out ``change`` over the journal: plan, call, apply (see the module docstring)."""
    intent = _plan(db, invocation, change)
    if intent is None:
        assert change.unchanged is not None  # _check raises NothingToDo only then
        return ChangeResult(change.unchanged())  # outside the except: a refusal stands alone
    preview = _before_call(db, invocation, intent, change)
    answer = _call(db, invocation, intent, change)
    with db.transaction(dry_run=invocation.dry_run) as session:
        applied = change.apply(session, answer, intent)
        audit.record(
            session,
            invocation=invocation,
            target=change.target,
            tenant_slug=change.tenant_slug,
            outcome=applied.outcome[:500],
            before=applied.before,
            after=applied.after,
        )
        also = () if change.after_apply is None else tuple(change.after_apply(session, answer))
        journal.close(session, intent, succeeded=True, object_id=answer.id)
    would, did = change.verbs
    verb = f"would {would}" if invocation.dry_run else did
    done = Change(
        target=change.target,
        action=change.action,
        before=applied.before,
        after=applied.after,
        dry_run=invocation.dry_run,
        message=f"{verb} {change.message(answer, intent)}",
        stripe_writes=planned_writes(gateway),
        side_effects=applied.side_effects + also,
    )
    return ChangeResult(done, preview)


def _plan(db: Database, invocation: Invocation, change: StripeChange[A]) -> Intent | None:
    """Phase 1: the intent recorded or reused; None when there is nothing to do."""
    try:
        return journal.begin(
            db,
            operation=change.operation,
            target=change.target,
            tenant_slug=change.tenant_slug,
            params=change.params,
            invocation=invocation,
            check=lambda session: _check(session, change),
        )
    except NothingToDo:
        return None


def _check(session: Session, change: StripeChange[A]) -> None:
    """The plan's refusals: the service's own, then "already done" when nothing is open.

    Runs only when no interrupted run is open (the journal reuses an open intent without it),
    so an interrupted run whose write already shows is finished, not answered as unchanged.
    """
    if change.check is not None:
        change.check(session)
    if change.already is not None and change.unchanged is not None:
        raise NothingToDo


def _before_call(
    db: Database, invocation: Invocation, intent: Intent, change: StripeChange[A]
) -> InvoicePreview | None:
    """Recovery points, then the invoice preview; neither when the write already shows."""
    if change.already is not None:
        return None
    for name, value in change.remember.items():
        if name not in intent.steps:
            journal.record_step(db, intent, name, value)
    wanted = invocation.dry_run if change.want_preview is None else change.want_preview
    return change.preview() if change.preview is not None and wanted else None


def _call(db: Database, invocation: Invocation, intent: Intent, change: StripeChange[A]) -> A:
    """Stripe's answer: the state that already shows, an earlier run's object, or the call."""
    if change.already is not None:
        return change.already
    with journal.failure_closes(
        db, intent, invocation=invocation, what=change.failed or change.what
    ):
        found = change.find(intent) if change.find is not None else None
        if found is not None:
            return found
        return journal.call(
            db, intent, change.step, lambda key: change.send(key, intent), what=change.what
        )
