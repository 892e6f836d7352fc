"""Plans sync: make Stripe's Products and Prices follow the subscription_plan table.

This module owns the write side: deciding and sending Stripe writes, one database transaction
and one audit entry per plan, and the report. What Stripe holds, which objects belong to a plan
and what counts as drift live in :mod:`.plan_catalog`, which ``plans list`` shares.

Why it is shaped this way:

- Stripe is read once per run (:func:`.plan_catalog.read_catalog`) into a
  :class:`~.plan_catalog.Catalog`; every decision is taken against that snapshot, so a sync costs
  a handful of reads whatever the number of plans, and a second run finds nothing to do and
  writes nothing.
- Objects are *adopted* before anything is created: a plan whose ids are not stored (the DB was
  restored, or a run crashed after creating in Stripe) is matched
  (:func:`.plan_catalog.match_plan`) to the Price holding its lookup key, or to the Product /
  Price tagged ``billing_plan=<slug>`` in metadata.
- Prices are immutable: a changed amount, currency or interval makes a new Price that takes
  the plan's lookup key over (``transfer_lookup_key``), and the old one is archived. Existing
  subscriptions keep the old price; this module never touches subscriptions.
- Every write carries an idempotency key built from the operation, the slug and the values that
  define the object (for a new price: product, amount, currency, interval and the price it
  replaces; for a product update: the plan's revision, the observed and the wanted values), so a
  re-run after a crash gets Stripe's first object back instead of a duplicate.
- One transaction per plan: the ids and the audit entry of a plan commit together, right after
  its Stripe writes. A failure on plan 7 leaves plans 1-6 synced and recorded; plan 7's Stripe
  objects (if any were made) are adopted by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from billing_cli.errors import BillingError
from billing_cli.gateway import (
    DryRunGateway,
    Gateway,
    Interval,
    PriceInfo,
    ProductInfo,
    idempotency_key,
)
from billing_cli.models import Invocation
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.services import audit, journal
from billing_cli.services.catalog.plan_catalog import (
    METADATA_KEY,
    Catalog,
    Match,
    PlanSpec,
    describe_product_changes,
    lookup_key_for,
    match_plan,
    price_differences,
    price_text,
    product_changes,
    read_catalog,
)

ACTIONS = ("created", "adopted", "updated", "archived", "unchanged", "stale")


class SyncProgress(Protocol):
    """What the CLI's progress bar listens to; the service knows nothing about terminals."""

    def start(self, description: str, total: int | None) -> None: ...

    def advance(self, description: str | None = None) -> None: ...


@dataclass(frozen=True)
class PlanSyncResult:
    """What sync did (or, under ``--dry-run``, would do) for one plan."""

    slug: str
    action: str
    before: dict[str, str | None]
    after: dict[str, str | None]
    steps: tuple[str, ...] = ()
    stripe_writes: tuple[dict[str, Any], ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.stripe_writes) or self.before != self.after

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "action": self.action,
            "before": self.before,
            "after": self.after,
            "steps": list(self.steps),
            "stripe_writes": list(self.stripe_writes),
        }


@dataclass(frozen=True)
class SyncReport:
    """Every plan's result, in slug order, and the totals the summary shows."""

    dry_run: bool
    plans: tuple[PlanSyncResult, ...]

    def counts(self) -> dict[str, int]:
        totals = dict.fromkeys(ACTIONS, 0)
        for result in self.plans:
            totals[result.action] += 1
        return totals

    @property
    def stripe_writes(self) -> int:
        return sum(len(result.stripe_writes) for result in self.plans)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "summary": self.counts(),
            "stripe_writes": self.stripe_writes,
            "plans": [result.to_dict() for result in self.plans],
        }


def sync_plans(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    archive_stale: bool = False,
    progress: SyncProgress | None = None,
) -> SyncReport:
    """Bring Stripe in line with every plan; one transaction and one audit entry per plan.

    Under ``invocation.dry_run`` the caller hands in a ``DryRunGateway``: the same code runs,
    writes are planned instead of sent, and every plan's transaction is rolled back.
    """
    with db.read() as session:
        slugs = [plan.slug for plan in plans_repo.list_all(session=session)]
    catalog = read_catalog(gateway)
    if progress is not None:
        progress.start("syncing plans", len(slugs))
    results: list[PlanSyncResult] = []
    for slug in slugs:
        try:
            results.append(_sync_one(db, gateway, catalog, slug, invocation, archive_stale))
        except BillingError as error:
            raise type(error)(
                f"plans sync stopped at plan {slug!r} ({len(results)} of {len(slugs)} plans "
                f"done and kept): {error.message}"
            ) from error
        if progress is not None:
            progress.advance(f"synced {slug}")
    return SyncReport(dry_run=invocation.dry_run, plans=tuple(results))


def _sync_one(
    db: Database,
    gateway: Gateway,
    catalog: Catalog,
    slug: str,
    invocation: Invocation,
    archive_stale: bool,
) -> PlanSyncResult:
    """One plan in the journal's three phases; a plan that needs no Stripe write gets no intent.

    The decision is taken first against the catalogue snapshot with a recording gateway (no
    request is sent). When Stripe must change, the intent is recorded and committed, the writes
    are sent with no transaction open, and the ids, the audit entry and the intent's close are
    committed together. The writes' keys come from the plan's slug and the values that define
    each object, which are exactly the intent's parameters, so they too are the same on every
    re-run of the same sync.
    """
    with db.read() as session:
        plan = plans_repo.get_by_slug(session=session, slug=slug)
        if plan is None:  # removed by someone else since the list was read
            ids: dict[str, str | None] = {"stripe_product_id": None, "stripe_price_id": None}
            return PlanSyncResult(slug, "unchanged", ids, ids, ("plan no longer exists",))
        spec = PlanSpec.of(plan)
    planner = gateway if isinstance(gateway, DryRunGateway) else DryRunGateway(gateway)
    planned = _PlanSync(planner, catalog, spec).run(archive_stale=archive_stale)
    interrupted = journal.has_open(db, operation="plan.sync", target=f"plan:{slug}")
    if invocation.dry_run or not (planned.stripe_writes or interrupted):
        result = planned
        intent = None
    else:
        intent = journal.begin(
            db,
            operation="plan.sync",
            target=f"plan:{slug}",
            tenant_slug=None,
            params={**_defining(spec), "archive_stale": archive_stale},
            invocation=invocation,
            supersede=True,  # a re-run adopts what an interrupted run created
        )
        result = journal.call(
            db,
            intent,
            "sync",
            lambda _key: _PlanSync(gateway, catalog, spec).run(archive_stale=archive_stale),
            what=f"syncing plan {slug}",
        )
    if result.changed or intent is not None:  # an interrupted run's intent is closed here
        _record(db, invocation, slug, result, intent)
    return result


def _defining(spec: PlanSpec) -> dict[str, Any]:
    return {
        "slug": spec.slug,
        "name": spec.name,
        "amount": spec.amount,
        "currency": spec.currency,
        "interval": spec.interval,
        "interval_count": spec.interval_count,
        "active": spec.active,
    }


def _record(
    db: Database,
    invocation: Invocation,
    slug: str,
    result: PlanSyncResult,
    intent: journal.Intent | None,
) -> None:
    """Phase 3: the plan's Stripe ids, its audit entry and the intent's close, together."""
    with db.transaction(dry_run=invocation.dry_run) as session:
        plan = plans_repo.get_by_slug(session=session, slug=slug)
        if plan is not None:
            plan.stripe_product_id = result.after["stripe_product_id"]
            plan.stripe_price_id = result.after["stripe_price_id"]
            plans_repo.add(session=session, plan=plan)
        audit.record(
            session,
            invocation=invocation,
            target=f"plan:{slug}",
            outcome=f"plans sync: {result.action}",
            before=result.before,
            after={**result.after, "steps": list(result.steps)},
        )
        if intent is not None:
            journal.close(
                session, intent, succeeded=True, object_id=result.after["stripe_price_id"]
            )


@dataclass
class _PlanSync:
    """The Stripe side of one plan's sync: decides, writes, and remembers what it did."""

    gateway: Gateway
    catalog: Catalog
    spec: PlanSpec
    steps: list[str] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    def run(self, *, archive_stale: bool) -> PlanSyncResult:
        before: dict[str, str | None] = {
            "stripe_product_id": self.spec.product_id,
            "stripe_price_id": self.spec.price_id,
        }
        after: dict[str, str | None]
        match = match_plan(self.spec, self.catalog)
        if self.spec.active:
            product = self._ensure_product(match)
            price = self._ensure_price(match, product)
            after = {"stripe_product_id": product.id, "stripe_price_id": price.id}
        else:
            after = self._retire(match, archive_stale=archive_stale)
        if match.adopts:
            self.flags.add("adopted")
        return PlanSyncResult(
            self.spec.slug, self._action(), before, after, tuple(self.steps), tuple(self.writes)
        )

    def _action(self) -> str:
        for action in ("created", "archived", "adopted"):
            if action in self.flags:
                return action
        if self.writes:
            return "updated"
        return "stale" if "stale" in self.flags else "unchanged"

    def _record(self, operation: str, target: str, params: dict[str, Any]) -> None:
        """Every write is listed in the result, real or planned, without its idempotency key."""
        self.writes.append({"operation": operation, "target": target, "params": params})

    def _ensure_product(self, match: Match) -> ProductInfo:
        product = match.product
        if product is None:
            return self._create_product()
        if match.product_found_by != "stored":
            self.steps.append(f"adopted product {product.id} (by {match.product_found_by})")
        changes = product_changes(self.spec, product)
        return self._update_product(product, changes) if changes else product

    def _create_product(self) -> ProductInfo:
        slug, name = self.spec.slug, self.spec.name
        params: dict[str, Any] = {"name": name, "metadata": {METADATA_KEY: slug}}
        self._record("create_product", "(new product)", params)
        key = idempotency_key("plan.create_product", slug, name)
        product = self.gateway.create_product(**params, idempotency_key=key)
        self.flags.add("created")
        self.steps.append(f"created product {product.id}")
        return product

    def _update_product(self, product: ProductInfo, changes: dict[str, Any]) -> ProductInfo:
        # The key holds the plan's revision and what was seen and wanted: a re-run after a crash
        # replays the first answer, while a later, different change gets a key of its own.
        observed = f"{product.name}|{product.active}|{product.metadata.get(METADATA_KEY, '')}"
        wanted = "|".join(f"{k}={v}" for k, v in sorted(changes.items()))
        key = idempotency_key(
            "plan.update_product", self.spec.slug, product.id, self.spec.revision, observed, wanted
        )
        self._record("update_product", product.id, dict(changes))
        updated = self.gateway.update_product(product.id, **changes, idempotency_key=key)
        lines = describe_product_changes(product, changes)
        self.steps.extend(f"updated product: {line}" for line in lines)
        return updated

    def _ensure_price(self, match: Match, product: ProductInfo) -> PriceInfo:
        old = match.price
        usable = old is not None and old.product_id == product.id
        if old is not None and usable and not price_differences(self.spec, old):
            if match.price_found_by != "stored":
                self.steps.append(f"adopted price {old.id} (by {match.price_found_by})")
            return old
        new = self._create_price(product, replaces=old)
        if old is not None and old.active:
            self._archive_price(old)
        return new

    def _create_price(self, product: ProductInfo, *, replaces: PriceInfo | None) -> PriceInfo:
        spec = self.spec
        lookup_key = lookup_key_for(spec.slug)
        interval: Interval = "year" if spec.interval == "year" else "month"
        params: dict[str, Any] = {
            "product_id": product.id,
            "unit_amount": spec.amount,
            "currency": spec.currency,
            "interval": interval,
            "interval_count": spec.interval_count,
            "lookup_key": lookup_key,
            "transfer_lookup_key": lookup_key in self.catalog.by_lookup_key,
            "metadata": {METADATA_KEY: spec.slug},
        }
        # What defines this price, including the price it replaces: reverting 29 -> 39 -> 29
        # makes a third price rather than replaying the (now archived) first one.
        defining = (spec.amount, spec.currency, spec.interval, spec.interval_count)
        replaced = replaces.id if replaces else ""
        key = idempotency_key("plan.create_price", spec.slug, product.id, *defining, replaced)
        self._record("create_price", "(new price)", params)
        price = self.gateway.create_price(**params, idempotency_key=key)
        text = f"created price {price.id} ({price_text(spec)})"
        if replaces is not None:
            reasons = price_differences(spec, replaces) or [
                f"it belongs to product {replaces.product_id}"
            ]
            text += f" replacing {replaces.id}: {'; '.join(reasons)}"
        self.steps.append(text)
        return price

    def _archive_price(self, price: PriceInfo) -> None:
        key = idempotency_key("plan.archive_price", self.spec.slug, price.id)
        self._record("archive_price", price.id, {"active": False})
        self.gateway.archive_price(price.id, idempotency_key=key)
        self.steps.append(f"archived price {price.id}")

    def _retire(self, match: Match, *, archive_stale: bool) -> dict[str, str | None]:
        product, price = match.product, match.price
        live = [obj.id for obj in (price, product) if obj is not None and obj.active]
        if live and not archive_stale:
            self.flags.add("stale")
            self.steps.append(f"inactive plan, but {', '.join(live)} active; see --archive-stale")
        if live and archive_stale:
            if price is not None and price.active:
                self._archive_price(price)
            if product is not None and product.active:
                self._archive_product(product)
            self.flags.add("archived")
        return {
            "stripe_product_id": product.id if product else self.spec.product_id,
            "stripe_price_id": price.id if price else self.spec.price_id,
        }

    def _archive_product(self, product: ProductInfo) -> None:
        key = idempotency_key(
            "plan.archive_product", self.spec.slug, product.id, self.spec.revision
        )
        self._record("update_product", product.id, {"active": False})
        self.gateway.update_product(product.id, active=False, idempotency_key=key)
        self.steps.append(f"archived product {product.id}")
