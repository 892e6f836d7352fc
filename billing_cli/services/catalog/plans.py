"""Plans: the local rows ops add, change and retire, and their state beside Stripe.

These functions only touch the database; Stripe follows with ``billing plans sync``
(:mod:`.plan_sync`), so an operator can edit several plans, review ``plans list``, and then
push everything in one reviewed step. ``plans list`` reads Stripe with two paged list calls and
reports each plan's state using the same matching and drift rules sync uses (both take them from
:mod:`.plan_catalog`), so "in sync" there means a sync would write nothing for that plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway
from billing_cli.ids import check_slug
from billing_cli.models import Change, Invocation, SubscriptionPlan, utcnow
from billing_cli.money import check_currency, format_money, to_minor_units
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.services import audit, journal
from billing_cli.services.catalog.plan_catalog import (
    Match,
    PlanSpec,
    every,
    match_plan,
    price_differences,
    price_text,
    product_changes,
    read_catalog,
)
from billing_cli.services.catalog.plan_catalog import describe_product_changes as describe_product
from billing_cli.services.views import plan_view
from billing_cli.text import PLAN_NAME_MAX, stripe_text

INTERVALS = ("month", "year")
# Stripe allows at most three years between two invoices, and trials of at most 730 days.
MAX_INTERVAL_COUNT = {"month": 36, "year": 3}
MAX_TRIAL_DAYS = 730


def require_plan(session: Session, slug: str) -> SubscriptionPlan:
    plan = plans_repo.get_by_slug(session=session, slug=slug)
    if plan is None:
        raise NotFound(f"no plan {slug!r}; `billing plans list` shows the plans")
    return plan


def cli_option(field: str) -> str:
    """``interval_count`` -> ``--interval-count``: how the command line names a plan field."""
    return "--" + field.replace("_", "-")


def check_name(name: str, *, option: Callable[[str], str] = cli_option) -> str:
    """The plan's name becomes its Stripe product's name on sync: no control characters, line
    breaks or bidi overrides; ``option`` names the field in the refusal (the command line's
    ``--name``, or a plan file's ``name``)."""
    return stripe_text(name, option=option("name"), limit=PLAN_NAME_MAX)


def check_schedule(
    interval: str,
    interval_count: int,
    trial_days: int,
    *,
    option: Callable[[str], str] = cli_option,
) -> None:
    """Stripe's limits on a plan's interval and trial, named as the operator wrote them."""
    if interval not in INTERVALS:
        raise UsageError(f"{option('interval')} must be month or year, not {interval!r}")
    limit = MAX_INTERVAL_COUNT[interval]
    if not 1 <= interval_count <= limit:
        raise UsageError(f"{option('interval_count')} must be 1-{limit} for {interval}ly plans")
    if not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise UsageError(f"{option('trial_days')} must be 0-{MAX_TRIAL_DAYS}")


def add_plan(
    db: Database,
    *,
    invocation: Invocation,
    slug: str,
    name: str,
    amount: str,
    currency: str,
    interval: str,
    interval_count: int = 1,
    trial_days: int = 0,
    per_seat: bool = False,
) -> Change:
    """Add a local plan; nothing goes to Stripe until ``plans sync``."""
    check_slug(slug)
    minor = to_minor_units(amount, currency)
    check_schedule(interval, interval_count, trial_days)
    plan = SubscriptionPlan(
        slug=slug,
        name=check_name(name),
        amount=minor,
        currency=check_currency(currency),
        interval=interval,
        interval_count=interval_count,
        trial_days=trial_days,
        active=True,
        per_seat=per_seat,
        created_at=utcnow(),
    )
    with db.transaction(dry_run=invocation.dry_run) as session:
        if plans_repo.get_by_slug(session=session, slug=slug) is not None:
            raise Conflict(f"plan {slug!r} already exists; change it with `billing plans update`")
        plans_repo.add(session=session, plan=plan)
        after = plan_view(plan)
        described = price_text(PlanSpec.of(plan))
        _audit(session, invocation, slug, "created", None, after)
    tail = f"({described}); `billing plans sync` creates it in Stripe"
    return _changed(invocation, slug, ("add", "added"), None, after, tail)


def update_plan(
    db: Database,
    *,
    invocation: Invocation,
    slug: str,
    name: str | None = None,
    amount: str | None = None,
    currency: str | None = None,
    interval: str | None = None,
    interval_count: int | None = None,
    trial_days: int | None = None,
    per_seat: bool | None = None,
) -> Change:
    """Change a plan's local definition; a new amount/currency/interval means a new Price on sync.

    ``--currency`` alone is refused: amounts are stored in the currency's minor units, so a
    currency change without an amount would silently reinterpret the number.
    """
    given = (name, amount, currency, interval, interval_count, trial_days, per_seat)
    if all(value is None for value in given):
        raise UsageError(
            "nothing to change: give --name, --amount, --currency, --interval, "
            "--interval-count, --trial-days or --per-seat"
        )
    with db.transaction(dry_run=invocation.dry_run) as session:
        plan = require_plan(session, slug)
        before = plan_view(plan)
        _apply_update(plan, name, amount, currency, interval, interval_count, trial_days)
        plan.per_seat = plan.per_seat if per_seat is None else per_seat
        after = plan_view(plan)
        if after == before:
            return _unchanged(slug, before, invocation, f"plan {slug} already has these values")
        plan.updated_at = utcnow()
        plans_repo.add(session=session, plan=plan)
        _audit(session, invocation, slug, "updated", before, after)
    tail = "; `billing plans sync` brings Stripe in line"
    return _changed(invocation, slug, ("update", "updated"), before, after, tail)


def _apply_update(
    plan: SubscriptionPlan,
    name: str | None,
    amount: str | None,
    currency: str | None,
    interval: str | None,
    interval_count: int | None,
    trial_days: int | None,
) -> None:
    new_currency = check_currency(currency) if currency is not None else plan.currency
    if new_currency != plan.currency and amount is None:
        raise UsageError("--currency needs --amount too (amounts are in the currency's units)")
    if amount is not None:
        plan.amount = to_minor_units(amount, new_currency)
    plan.currency = new_currency
    if name is not None:
        plan.name = check_name(name)
    plan.interval = interval if interval is not None else plan.interval
    plan.interval_count = interval_count if interval_count is not None else plan.interval_count
    plan.trial_days = trial_days if trial_days is not None else plan.trial_days
    check_schedule(plan.interval, plan.interval_count, plan.trial_days)


def set_plan_active(db: Database, *, invocation: Invocation, slug: str, active: bool) -> Change:
    """Retire a plan (``active=False``) or bring it back; sync archives or revives its objects.

    Existing subscriptions on a retired plan are left alone: only new sign-ups stop.
    """
    action = "activate" if active else "deactivate"
    with db.transaction(dry_run=invocation.dry_run) as session:
        plan = require_plan(session, slug)
        before = plan_view(plan)
        if plan.active == active:
            state = "active" if active else "inactive"
            return _unchanged(slug, before, invocation, f"plan {slug} is already {state}")
        plan.active = active
        plan.updated_at = utcnow()
        plans_repo.add(session=session, plan=plan)
        after = plan_view(plan)
        _audit(session, invocation, slug, f"{action}d", before, after)
    follow = "`billing plans sync`" if active else "`billing plans sync --archive-stale`"
    tail = f"; {follow} brings Stripe in line"
    return _changed(invocation, slug, (action, f"{action}d"), before, after, tail)


def remove_plan(db: Database, *, invocation: Invocation, slug: str) -> Change:
    """Delete a plan added by mistake: only one Stripe never saw and no subscription names.

    A synced plan has a Product and Price that subscriptions, invoices and other tools may
    point at, so it is retired (``plans deactivate``), never deleted; a plan whose sync was
    interrupted may already have objects in Stripe that its row does not name yet.
    """
    if journal.has_open(db, operation="plan.sync", target=f"plan:{slug}"):
        raise Conflict(
            f"plan {slug} has an interrupted sync (Stripe may hold its objects); "
            "finish it with `billing plans sync` and deactivate the plan instead"
        )
    with db.transaction(dry_run=invocation.dry_run) as session:
        plan = require_plan(session, slug)
        synced = [i for i in (plan.stripe_product_id, plan.stripe_price_id) if i]
        if synced:
            raise Conflict(
                f"plan {slug} was synced to Stripe ({', '.join(synced)}); "
                f"retire it with `billing plans deactivate {slug}` instead"
            )
        assert plan.id is not None
        used = plans_repo.subscription_count(session=session, plan_id=plan.id)
        if used:
            raise Conflict(
                f"plan {slug} is named by {used} subscription(s); "
                f"retire it with `billing plans deactivate {slug}` instead"
            )
        before = plan_view(plan)
        plans_repo.delete(session=session, plan=plan)
        _audit(session, invocation, slug, "removed", before, None)
    tail = "(it was never synced to Stripe)"
    return _changed(invocation, slug, ("remove", "removed"), before, None, tail)


def list_plans(db: Database, gateway: Gateway | None) -> list[dict[str, Any]]:
    """Every plan beside its Stripe Product and Price, with a state and what differs.

    With ``gateway=None`` Stripe is not read and the state is ``not checked``.
    """
    with db.read() as session:
        rows = [
            (PlanSpec.of(plan), plan_view(plan)) for plan in plans_repo.list_all(session=session)
        ]
    if gateway is None:
        return [
            {**view, "state": "not checked", "differences": [], "stripe": None} for _, view in rows
        ]
    catalog = read_catalog(gateway)
    listed: list[dict[str, Any]] = []
    for spec, view in rows:
        match = match_plan(spec, catalog)
        state, differences = plan_state(spec, match)
        listed.append(
            {**view, "state": state, "differences": differences, "stripe": _stripe_view(match)}
        )
    return listed


def plan_state(spec: PlanSpec, match: Match) -> tuple[str, list[str]]:
    """``in sync``, ``missing``, ``not synced``, ``drifted`` for active plans; ``stale``,
    ``archived`` or ``inactive`` for retired ones. The list says what differs."""
    if not spec.active:
        return _retired_state(match)
    product, price = match.product, match.price
    if product is None and price is None:
        stored = [i for i in (spec.product_id, spec.price_id) if i]
        why = f"{', '.join(stored)} not found in Stripe" if stored else "no Product or Price"
        return "missing", [why]
    differences: list[str] = []
    if product is None:
        differences.append("no Product in Stripe")
    else:
        differences += describe_product(product, product_changes(spec, product))
    if price is None:
        differences.append("no Price in Stripe")
    else:
        differences += price_differences(spec, price)
        if product is not None and price.product_id != product.id:
            differences.append(f"price {price.id} belongs to product {price.product_id}")
    if match.adopts:
        return "not synced", ["Stripe objects found but their ids are not stored", *differences]
    return ("drifted", differences) if differences else ("in sync", [])


def _retired_state(match: Match) -> tuple[str, list[str]]:
    live = [obj.id for obj in (match.product, match.price) if obj is not None and obj.active]
    if live:
        return "stale", [f"plan is inactive but {', '.join(live)} still active in Stripe"]
    if match.product is not None or match.price is not None:
        return "archived", []
    return "inactive", []


def _stripe_view(match: Match) -> dict[str, Any]:
    product, price = match.product, match.price
    return {
        "product_id": product.id if product else None,
        "product_name": product.name if product else None,
        "product_active": product.active if product else None,
        "price_id": price.id if price else None,
        "price": format_money(price.unit_amount, price.currency) if price else None,
        "interval": every(price.interval, price.interval_count) if price else None,
        "price_active": price.active if price else None,
        "lookup_key": price.lookup_key if price else None,
    }


def _changed(
    invocation: Invocation,
    slug: str,
    verbs: tuple[str, str],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    tail: str,
) -> Change:
    """A plan changed: ``verbs`` is (action, past tense); "would <action>" under --dry-run.
    ``tail`` follows "plan <slug>" (a leading ``;`` joins it, anything else after a space)."""
    action, done = verbs
    verb = f"would {action}" if invocation.dry_run else done
    joined = tail if tail.startswith(";") else f" {tail}"
    return Change(
        target=f"plan:{slug}",
        action=action,
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} plan {slug}{joined}",
    )


def _unchanged(slug: str, view: dict[str, Any], invocation: Invocation, message: str) -> Change:
    return Change(
        target=f"plan:{slug}",
        action="none",
        before=view,
        after=view,
        dry_run=invocation.dry_run,
        changed=False,
        message=message,
    )


def _audit(
    session: Session,
    invocation: Invocation,
    slug: str,
    outcome: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit.record(
        session,
        invocation=invocation,
        target=f"plan:{slug}",
        outcome=outcome,
        before=before,
        after=after,
    )
