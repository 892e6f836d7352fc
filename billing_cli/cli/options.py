"""Options shared by many commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Show every change this would make (Stripe and database); make none."
    ),
]
YesOption = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        help="Skip the question asked before a write in live mode (test mode asks none).",
    ),
]
# For the writes that ask in every mode, live or test: their --yes says so.
ConfirmYesOption = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        help="Skip the question asked before this write; it is asked in every mode, "
        "live or test (a script must pass --yes).",
    ),
]
TypedYesOption = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        help="Skip typing the tenant's slug to confirm; it is asked in every mode, "
        "live or test (a script must pass --yes).",
    ),
]


def _complete_tenant(ctx: typer.Context, incomplete: str) -> list[str]:
    from billing_cli.cli.completion import tenant_slugs

    return tenant_slugs(ctx, incomplete)


def _complete_plan(ctx: typer.Context, incomplete: str) -> list[str]:
    from billing_cli.cli.completion import plan_slugs

    return plan_slugs(ctx, incomplete)


def _slug_form(value: str | None) -> str | None:
    """A malformed slug is refused here, before any lookup (exit 2)."""
    from billing_cli.ids import check_slug

    return None if value is None else check_slug(value)


# An existing tenant or plan, named by its slug; Tab completes it from the database.
TenantArgument = Annotated[
    str,
    typer.Argument(
        metavar="TENANT",
        help="The tenant's slug.",
        autocompletion=_complete_tenant,
        callback=_slug_form,
    ),
]
PlanArgument = Annotated[
    str,
    typer.Argument(
        metavar="PLAN", help="The plan's slug, e.g. pro.", autocompletion=_complete_plan
    ),
]
PlanOption = Annotated[
    str,
    typer.Option("--plan", metavar="PLAN", help="The plan's slug.", autocompletion=_complete_plan),
]
TenantFilter = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        metavar="TENANT",
        help="Only this tenant's.",
        autocompletion=_complete_tenant,
        callback=_slug_form,
    ),
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Created since a date or an age (24h, 7d).")
]
