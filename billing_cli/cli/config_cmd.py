"""``billing config``: the effective configuration, secrets masked."""

from __future__ import annotations

import typer

from billing_cli.cli.options import JsonOption
from billing_cli.cli.runtime import runtime_of


def show_config(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show the effective configuration (every secret masked) and whether it is safe to use."""
    from billing_cli.cli import render
    from billing_cli.errors import ConfigError

    settings = runtime_of(ctx).settings()
    view = settings.public_view()
    try:
        if settings.stripe_secret_key:
            settings.require_stripe()
        problem = None if settings.stripe_secret_key else "no STRIPE_SECRET_KEY set"
    except ConfigError as error:
        problem = str(error)
    view["stripe_mode"] = "live" if settings.stripe_live_mode else "test"
    view["stripe_check"] = problem or "ok"
    if json_output:
        render.emit_json(view)
        return
    render.key_values("Configuration", view)
