"""Test data builders, so tests say only what matters to them."""

from __future__ import annotations

from typing import Any

from billing_cli.models import Invocation
from billing_cli.repository import Database
from billing_cli.services import tenants


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
