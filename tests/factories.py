"""Test data builders, so tests say only what matters to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billing_cli.models import Invocation
from billing_cli.repository import Database
from billing_cli.services.tenants import rules as tenants

if TYPE_CHECKING:
    from billing_cli.gateway import Gateway


def invocation(*, dry_run: bool = False, operator: str = "tester", **arguments: Any) -> Invocation:
    return Invocation(operator=operator, command="test", arguments=dict(arguments), dry_run=dry_run)


def add_tenant(db: Database, slug: str = "acme", **overrides: str) -> None:
    tenants.add_tenant(
        db,
        invocation=invocation(),
        slug=slug,
        name=overrides.get("name", slug.title()),
        email=overrides.get("email", f"billing@{slug}.test"),
    )


def suspend(db: Database, slug: str = "acme", *, by: str) -> None:
    """Suspend a tenant as billing (a billing suspension) or a person (a manual hold) would."""
    with db.transaction() as session:
        tenant = tenants.require_tenant(session, slug, for_update=True)
        tenants.suspend(session, tenant, reason=f"{by}: test", by=by, invocation=invocation())


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table: what a dry run must leave unchanged."""
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    with db.connect() as connection:
        return {
            name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in SQLModel.metadata.tables.items()
        }


def table_snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a dry run or a failed command changed nothing."""
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    with db.connect() as connection:
        return {
            name: sorted(
                (tuple(map(repr, row)) for row in connection.execute(sa.select(table))),
            )
            for name, table in SQLModel.metadata.tables.items()
        }


def add_synced_plan(
    db: Database,
    gateway: Gateway,
    slug: str,
    *,
    amount: int = 1000,
    currency: str = "usd",
    interval: str = "month",
    trial_days: int = 0,
) -> str:
    """A plan row whose Product and Price exist in the (sandbox) Stripe; returns the price id.

    Built through the gateway directly, so subscription tests do not depend on plans sync.
    """
    from billing_cli.models import SubscriptionPlan, utcnow
    from billing_cli.repository import plans as plans_repo

    product = gateway.create_product(
        name=slug.title(), metadata={"billing_plan": slug}, idempotency_key=f"test:product:{slug}"
    )
    price = gateway.create_price(
        product_id=product.id,
        unit_amount=amount,
        currency=currency,
        interval="year" if interval == "year" else "month",
        interval_count=1,
        lookup_key=f"test-{slug}",
        metadata={"billing_plan": slug},
        transfer_lookup_key=False,
        idempotency_key=f"test:price:{slug}:{amount}",
    )
    with db.transaction() as session:
        plans_repo.add(
            session=session,
            plan=SubscriptionPlan(
                slug=slug,
                name=slug.title(),
                amount=amount,
                currency=currency,
                interval=interval,
                trial_days=trial_days,
                stripe_product_id=product.id,
                stripe_price_id=price.id,
                created_at=utcnow(),
            ),
        )
    return price.id
