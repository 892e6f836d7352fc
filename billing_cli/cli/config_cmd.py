"""``billing config``: the effective configuration, secrets masked."""

from __future__ import annotations

import typer

from billing_cli.cli.options import JsonOption
from billing_cli.cli.runtime import runtime_of


def show_config(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show the effective configuration (every secret masked) and whether it is safe to use.

    Every key is masked to its kind and last four characters (the publishable key too).

    It shows what commands will use: the operator the audit trail records, the .env file that
    was read, the database's absolute path. It exits 1 when the key would be refused (a live
    key outside live mode, a test key in live mode), as every command that calls Stripe would.
    """
    from billing_cli.cli import render
    from billing_cli.config import display_url, mask, resolve_operator
    from billing_cli.errors import ConfigError

    runtime = runtime_of(ctx)
    settings = runtime.settings()
    view = settings.public_view()
    view["operator"] = resolve_operator(runtime.operator, settings)
    view["operator_from"] = (
        "--operator"
        if runtime.operator
        else ("BILLING_OPERATOR" if settings.operator else "the OS user")
    )
    view["database_url"] = display_url(settings.database_url)
    # Not a secret, but no key is printed whole: its kind and last four tell which it is.
    view["stripe_publishable_key"] = mask(settings.stripe_publishable_key)
    view["env_file"] = settings.env_file or "none (no .env file was read)"
    try:
        if settings.stripe_secret_key:
            settings.require_stripe()
        refused = None
    except ConfigError as error:
        refused = str(error)
    mode = "live" if settings.stripe_live_mode else "test"
    key = settings.stripe_secret_key
    key_mode = "live" if key.startswith(("sk_live_", "rk_live_")) else "test"
    view["stripe_mode"] = (
        mode if not key or key_mode == mode else f"{mode}, but the key is a {key_mode} key"
    )
    view["stripe_check"] = refused or (
        "ok" if settings.stripe_secret_key else "no STRIPE_SECRET_KEY set"
    )
    if json_output:
        render.emit_json(view)
    else:
        render.key_values("Configuration", view)
    if refused:
        raise ConfigError(refused)
