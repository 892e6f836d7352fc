"""``billing reconcile``: every tenant compared with Stripe, drift reported, optionally healed.

Reads, in this order and never inside a database transaction held across a Stripe call:

1. one short read of every tenant with its subscription row, and the plans;
2. Stripe in bulk (:func:`.stripe_state.read_account`): every customer and every subscription
   (``status=all``, price expanded) in paged lists of 100, plus the plan catalogue exactly as
   ``plans list`` computes it. A run costs about two requests per 100 tenants, never one
   retrieve per tenant.

Then, per tenant, :func:`.drift.compare`; across tenants, *orphans*: live subscriptions tagged
``metadata.tenant=<slug>`` (on themselves or their customer) that no local tenant claims.

Writes, only when asked:

- ``cancel_orphans``: after ``confirm`` (a typed yes, or ``--yes``), orphans and the extra live
  subscriptions of double-billed tenants are canceled now through :func:`cancel_unwanted`, the
  one Stripe write of this module, made through the intent journal (a re-run after a crash
  sends the same key and gets Stripe's first answer), each with its own audit entry.
- ``fix``: each drifted tenant, in its own transaction, follows Stripe through
  :func:`.refresh.apply_from_stripe` (the registers, the billing policy, one audit entry),
  judged against its row as locked then. Never a Stripe write.

``dry_run`` runs the same path: cancels go to the ``DryRunGateway`` the caller passes, database
transactions roll back. The report ends with a health summary of the local state after the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from billing_cli.errors import ConfirmationDeclined, NotFound
from billing_cli.gateway import Gateway, SubscriptionInfo
from billing_cli.models import Invocation, utcnow
from billing_cli.repository import Database
from billing_cli.repository import intents as intents_repo
from billing_cli.repository import overview as overview_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services import audit, journal
from billing_cli.services.catalog import plans
from billing_cli.services.reconcile.drift import KINDS, LOCALLY_FIXABLE, Drift, LocalTenant, compare
from billing_cli.services.reconcile.refresh import apply_from_stripe, plan_prices, plan_slugs
from billing_cli.services.reconcile.stripe_state import StripeState, is_live, read_account
from billing_cli.services.stripe_ops import TENANT_METADATA_KEY, planned_writes
from billing_cli.timeparse import iso

LEDGER_STATUSES = ("failed", "deferred")
# The one command that heals each kind of drift (every other kind: ``--fix``, a local write).
_HEALED_BY = {
    "orphan": "billing reconcile --cancel-orphans",
    "double_billing": "billing reconcile --cancel-orphans",
    "plan_catalogue": "billing plans sync",
}
FIX_COMMAND = "billing reconcile --fix"
TRIAL_WINDOW = timedelta(days=7)
_PLAN_STATES_IN_STEP = frozenset({"in sync", "archived", "inactive"})


class ReconcileProgress(Protocol):
    """What the CLI's progress bar listens to; the service knows nothing about terminals."""

    def start(self, description: str, total: int | None) -> None: ...

    def advance(self) -> None: ...


@dataclass(frozen=True)
class Unwanted:
    """A live subscription ``--cancel-orphans`` ends: an orphan or a double billing extra."""

    subscription: SubscriptionInfo
    kind: str  # "orphan" | "double_billing"
    tenant: str | None  # the local tenant (double billing) or the slug it is tagged with
    known_tenant: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        sub = self.subscription
        return {
            "subscription": sub.id,
            "customer": sub.customer_id,
            "status": sub.status,
            "kind": self.kind,
            "tenant": self.tenant,
            "known_tenant": self.known_tenant,
            "why": self.why,
        }


@dataclass
class TenantResult:
    """One drifted tenant: what differs, and after ``--fix`` what still does."""

    local: LocalTenant
    drift: list[Drift]
    subscription: str | None
    choice: str
    remaining: list[Drift]
    extra_live: list[SubscriptionInfo] = field(default_factory=list)
    fixed: bool = False

    @property
    def tenant(self) -> str:
        return self.local.slug

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "kinds": sorted({d.kind for d in self.drift}),
            "drift": [d.to_dict() for d in self.drift],
            "subscription": self.subscription,
            "choice": self.choice,
            "fixed": self.fixed,
            "remaining": [d.to_dict() for d in self.remaining],
        }


@dataclass
class ReconcileReport:
    """Everything a reconcile run found and did."""

    dry_run: bool
    fix: bool
    cancel_orphans: bool
    tenants_checked: int
    tenants: list[TenantResult] = field(default_factory=list)
    orphans: list[Unwanted] = field(default_factory=list)
    canceled: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)
    stripe_writes: tuple[dict[str, Any], ...] = ()

    @property
    def drift_found(self) -> bool:
        """Exit code 1 when True: some drift was found (even if this run healed it)."""
        return bool(self.tenants or self.orphans or self.plans)

    def counts(self) -> dict[str, int]:
        """Drifted tenants per kind, plus orphans and plan catalogue drift."""
        found = dict.fromkeys(KINDS, 0)
        for result in self.tenants:
            for kind in {d.kind for d in result.drift}:
                found[kind] += 1
        found["orphan"] = len(self.orphans)
        found["plan_catalogue"] = len(self.plans)
        return {kind: n for kind, n in found.items() if n}

    def left(self) -> set[str]:
        """The kinds of drift this run left as they were (a dry run leaves everything)."""
        if self.dry_run:
            kinds = {d.kind for result in self.tenants for d in result.drift}
            return kinds | ({"orphan"} if self.orphans else set())
        kinds = {d.kind for result in self.tenants for d in result.remaining}
        canceled = {item["subscription"] for item in self.canceled}
        if any(o.subscription.id not in canceled for o in self.orphans):
            kinds.add("orphan")
        return kinds

    def next_steps(self) -> dict[str, list[str]]:
        """The commands that heal what is left, each with the kinds it heals.

        Never a command that cannot heal a kind: ``--fix`` only writes the local side, so it is
        not offered for orphans, double billing or the plan catalogue, nor again for drift a
        real ``--fix`` run just failed to heal.
        """
        steps: dict[str, list[str]] = {}
        kinds = self.left() | ({"plan_catalogue"} if self.plans else set())
        for kind in KINDS:
            if kind not in kinds:
                continue
            command = _HEALED_BY.get(kind, FIX_COMMAND)
            if command == FIX_COMMAND and self.fix and not self.dry_run:
                continue  # --fix ran and could not heal it: naming it again would not help
            steps.setdefault(command, []).append(kind)
        return steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "fix": self.fix,
            "cancel_orphans": self.cancel_orphans,
            "tenants_checked": self.tenants_checked,
            "drift_found": self.drift_found,
            "counts": self.counts(),
            "next_steps": self.next_steps(),
            "tenants": [t.to_dict() for t in self.tenants],
            "orphans": [o.to_dict() for o in self.orphans],
            "canceled": self.canceled,
            "plans": self.plans,
            "health": self.health,
            "stripe_writes": list(self.stripe_writes),
        }


def cancel_unwanted(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    subscription_id: str,
    target: str,
    tenant: str | None,
    outcome: str,
) -> SubscriptionInfo:
    """The one Stripe write of ``reconcile``: cancel an orphan or extra subscription now,
    through the intent journal (:mod:`.journal`), with its audit entry.

    A re-run after a timeout finds the open intent and sends the same key, so Stripe answers
    with its first cancellation instead of an error; ``billing intents resume`` finishes it too.
    """
    intent = journal.begin(
        db,
        operation="reconcile.cancel",
        target=target,
        tenant_slug=tenant,
        params={"subscription": subscription_id},
        invocation=invocation,
    )
    with journal.failure_closes(
        db, intent, invocation=invocation, what=f"canceling {subscription_id}"
    ):
        after = journal.call(
            db,
            intent,
            "cancel",
            lambda key: gateway.cancel_subscription_now(subscription_id, idempotency_key=key),
            what=f"canceling {subscription_id}",
        )
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant,
            outcome=outcome,
            before={"subscription": subscription_id},
            after={"subscription": after.id, "status": after.status},
        )
        journal.close(session, intent, succeeded=True, object_id=after.id)
    return after


def reconcile(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenants: Sequence[str] = (),
    fix: bool = False,
    cancel_orphans: bool = False,
    confirm: Callable[[list[Unwanted]], bool] | None = None,
    max_failed_attempts: int = 3,
    progress: ReconcileProgress | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    """Compare tenants (all, or those named) with Stripe; cancel and fix only when asked."""
    scope = list(dict.fromkeys(tenants))
    with db.read() as session:
        slugs = plan_slugs(session)
        everyone = [
            LocalTenant.of(tenant, row, slugs)
            for tenant, row in overview_repo.tenants_with_rows(session=session)
        ]
        price_map = plan_prices(session)
    missing = sorted(set(scope) - {local.slug for local in everyone})
    if missing:
        raise NotFound(f"no tenant {missing[0]!r}; `billing tenants list` shows the tenants")
    _start(progress, "reading Stripe", None)
    state = read_account(gateway)
    plan_drift = [
        {"plan": row["slug"], "state": row["state"], "differences": row["differences"]}
        for row in plans.list_plans(db, gateway)
        if row["state"] not in _PLAN_STATES_IN_STEP
    ]
    in_scope = [local for local in everyone if not scope or local.slug in scope]
    report = ReconcileReport(
        dry_run=invocation.dry_run,
        fix=fix,
        cancel_orphans=cancel_orphans,
        tenants_checked=len(in_scope),
        plans=plan_drift,
    )
    compared = _compare_all(state, everyone, in_scope, price_map, max_failed_attempts, progress)
    report.tenants = compared
    report.orphans = [] if scope else _orphans(state, everyone)
    if cancel_orphans:
        _cancel(db, gateway, state, report, invocation, confirm, price_map, max_failed_attempts)
    if fix:
        _fix(db, state, report, invocation, price_map, max_failed_attempts, progress)
    report.health = health(db, scope or None, now=now or utcnow())
    report.stripe_writes = planned_writes(gateway)
    return report


def _start(progress: ReconcileProgress | None, description: str, total: int | None) -> None:
    if progress is not None:
        progress.start(description, total)


def _compare_all(
    state: StripeState,
    everyone: list[LocalTenant],
    in_scope: list[LocalTenant],
    price_map: dict[str, str],
    max_failed_attempts: int,
    progress: ReconcileProgress | None,
) -> list[TenantResult]:
    _start(progress, "comparing tenants", len(in_scope))
    results: list[TenantResult] = []
    for local in in_scope:
        found = state.for_tenant(
            local.slug,
            stored_customer_id=local.customer_id,
            recorded_subscription_id=local.subscription_id,
        )
        drift = compare(
            local, found, plan_for_price=price_map, max_failed_attempts=max_failed_attempts
        )
        if drift:
            chosen = found.chosen.id if found.chosen else None
            results.append(
                TenantResult(local, drift, chosen, found.reason, list(drift), found.extra_live)
            )
        if progress is not None:
            progress.advance()
    return results


def _tag(state: StripeState, sub: SubscriptionInfo) -> str | None:
    """The tenant slug a subscription is tagged with, on itself or on its customer."""
    customer = state.customers.get(sub.customer_id)
    return sub.metadata.get(TENANT_METADATA_KEY) or (
        customer.metadata.get(TENANT_METADATA_KEY) if customer else None
    )


def _orphans(state: StripeState, everyone: list[LocalTenant]) -> list[Unwanted]:
    """Live, tenant-tagged subscriptions that no local tenant claims (untagged ones are not
    this tool's: the account may bill other products too)."""
    claimed: set[str] = set()
    for local in everyone:
        found = state.for_tenant(
            local.slug,
            stored_customer_id=local.customer_id,
            recorded_subscription_id=local.subscription_id,
        )
        claimed.update(s.id for s in found.subscriptions)
    orphans: list[Unwanted] = []
    for sub in state.subscriptions.values():
        tag = _tag(state, sub)
        if sub.id in claimed or not is_live(sub) or not tag:
            continue
        why = f"live subscription tagged tenant {tag!r}, which this database does not have"
        orphans.append(Unwanted(sub, "orphan", tag, False, why))
    return sorted(orphans, key=lambda o: (o.tenant or "", o.subscription.id))


def _unwanted(report: ReconcileReport) -> list[Unwanted]:
    """Orphans, then each double-billed tenant's live subscriptions besides the chosen one."""
    found = list(report.orphans)
    for result in report.tenants:
        for sub in result.extra_live:
            why = f"extra live subscription of {result.tenant}; keeps {result.subscription}"
            found.append(Unwanted(sub, "double_billing", result.tenant, True, why))
    return found


def _cancel(
    db: Database,
    gateway: Gateway,
    state: StripeState,
    report: ReconcileReport,
    invocation: Invocation,
    confirm: Callable[[list[Unwanted]], bool] | None,
    price_map: dict[str, str],
    max_failed_attempts: int,
) -> None:
    unwanted = _unwanted(report)
    if not unwanted:
        return
    if not invocation.dry_run and (confirm is None or not confirm(unwanted)):
        raise ConfirmationDeclined("cancelled; nothing was changed in Stripe or locally")
    for item in unwanted:
        before = item.subscription
        target = (
            f"subscription:{item.tenant}"
            if item.known_tenant
            else f"stripe_subscription:{before.id}"
        )
        after = cancel_unwanted(
            db,
            gateway,
            invocation=invocation,
            subscription_id=before.id,
            target=target,
            tenant=item.tenant if item.known_tenant else None,
            outcome=f"canceled {item.kind.replace('_', ' ')} {before.id} in Stripe "
            f"(was {before.status})",
        )
        state.subscriptions[after.id] = after
        report.canceled.append({**item.to_dict(), "status_after": after.status})
    for result in report.tenants:  # what is left once the extra subscriptions ended
        if result.extra_live:
            found = state.for_tenant(
                result.tenant,
                stored_customer_id=result.local.customer_id,
                recorded_subscription_id=result.local.subscription_id,
            )
            result.remaining = compare(
                result.local,
                found,
                plan_for_price=price_map,
                max_failed_attempts=max_failed_attempts,
            )


def _fix(
    db: Database,
    state: StripeState,
    report: ReconcileReport,
    invocation: Invocation,
    price_map: dict[str, str],
    max_failed_attempts: int,
    progress: ReconcileProgress | None,
) -> None:
    todo = [r for r in report.tenants if any(d.kind in LOCALLY_FIXABLE for d in r.remaining)]
    _start(progress, "fixing tenants", len(todo))
    for result in todo:
        with db.transaction(dry_run=invocation.dry_run) as session:
            tenant = tenants_repo.get_by_slug(session=session, slug=result.tenant, for_update=True)
            if tenant is None:  # removed since the read
                continue
            applied = apply_from_stripe(
                session,
                tenant,
                state,
                invocation=invocation,
                max_failed_attempts=max_failed_attempts,
                plan_for_price=price_map,
            )
        result.fixed = applied.change.changed
        result.remaining = applied.remaining
        if progress is not None:
            progress.advance()


def health(db: Database, scope: Sequence[str] | None, *, now: datetime) -> dict[str, Any]:
    """The local state at a glance: subscription statuses, who needs attention, the ledger."""
    with db.read() as session:
        rows = overview_repo.tenants_with_rows(session=session, slugs=scope)
        ledger = overview_repo.event_counts(session=session, statuses=LEDGER_STATUSES)
        open_intents = intents_repo.count_open(session=session)
        by_status: dict[str, int] = {}
        attention: dict[str, list[str]] = {"past_due": [], "incomplete": []}
        trials: list[dict[str, Any]] = []
        suspended = {"billing": 0, "manual": 0}
        for tenant, row in rows:
            status = (row.status if row else None) or "none"
            by_status[status] = by_status.get(status, 0) + 1
            if status in attention:
                attention[status].append(tenant.slug)
            trial_end = row.trial_end if row else None
            if status == "trialing" and trial_end is not None and trial_end <= now + TRIAL_WINDOW:
                trials.append({"tenant": tenant.slug, "trial_end": iso(trial_end)})
            if tenant.status == "suspended" and tenant.suspended_by in suspended:
                suspended[tenant.suspended_by] += 1
    return {
        "tenants": len(rows),
        "by_status": dict(sorted(by_status.items())),
        **attention,
        "trials_ending_7d": sorted(trials, key=lambda t: str(t["trial_end"])),
        "suspended": suspended,
        "ledger": ledger,
        "open_intents": open_intents,
    }
