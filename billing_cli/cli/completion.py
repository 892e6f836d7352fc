"""Shell completion of tenant and plan slugs, read from the tenant database.

Called by the shell on every Tab press, so a failure (no database yet, not migrated, a bad
setting) completes nothing rather than printing an error into the command line being typed.
"""

from __future__ import annotations

import typer

from billing_cli.cli.runtime import runtime_of


def tenant_slugs(ctx: typer.Context, incomplete: str) -> list[str]:
    """Tenant slugs starting with what was typed."""
    try:
        from billing_cli.services.tenants import rules as tenants

        rows = tenants.list_tenants(runtime_of(ctx).database())
    except Exception:  # completion must never break the shell line
        return []
    return [row["slug"] for row in rows if row["slug"].startswith(incomplete)]


def plan_slugs(ctx: typer.Context, incomplete: str) -> list[str]:
    """Plan slugs starting with what was typed (from the local plans table, not Stripe)."""
    try:
        from billing_cli.services.catalog import plans

        rows = plans.list_plans(runtime_of(ctx).database(), None)
    except Exception:  # completion must never break the shell line
        return []
    return [row["slug"] for row in rows if str(row["slug"]).startswith(incomplete)]
