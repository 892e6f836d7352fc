"""``billing demo``: the scripted tour (in :mod:`billing_cli.cli.demo_tour`, imported when run)."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the demo database and print where it is.")
    ] = False,
) -> None:
    """Run a scripted tour on a throwaway database and a local Stripe sandbox."""
    from billing_cli.cli.demo_extra import require_sandbox

    require_sandbox("billing demo")
    from billing_cli.cli.demo_tour import run_tour

    # The tour runs its steps through the root command it was started from, rather than
    # importing billing_cli.cli.main (which imports this module).
    run_tour(keep=keep, app=ctx.find_root().command)
