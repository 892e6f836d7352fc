"""``billing webhooks setup`` and ``billing webhooks endpoints``: the Stripe side of webhooks.

``setup`` creates or updates the account's webhook endpoint for a URL (see
:mod:`billing_cli.services.webhooks.setup`). The signing secret Stripe returns on creation is
written to ``--write-env FILE`` or printed once, with a warning; it is never logged, audited
or shown again. ``endpoints`` lists the account's endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of

if TYPE_CHECKING:
    from billing_cli.services.webhooks.setup import SetupResult


def setup(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The public URL Stripe posts events to.")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events",
            help="default (every handled type), all, or an event type (repeatable).",
        ),
    ] = None,
    write_env: Annotated[
        Path | None,
        typer.Option(
            "--write-env",
            help="Write STRIPE_WEBHOOK_SECRET and BILLING_WEBHOOK_URL to this env file.",
        ),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create or update the Stripe webhook endpoint for URL (no dashboard needed)."""
    from billing_cli.services.webhooks.setup import resolve_event_types, setup_endpoint

    runtime = runtime_of(ctx)
    event_types = resolve_event_types(events or ())
    _confirm_dropped(event_types, yes=yes, dry_run=dry_run)
    db, gateway, invocation = runtime.begin_stripe_change(
        ctx, what=f"set up the webhook endpoint for {url}", dry_run=dry_run, yes=yes
    )
    result = setup_endpoint(
        db,
        gateway,
        invocation=invocation,
        url=url,
        event_types=event_types,
        live_mode=runtime.settings().stripe_live_mode,
    )
    _report(result, url=url, write_env=write_env, json_output=json_output)


def _confirm_dropped(event_types: tuple[str, ...], *, yes: bool, dry_run: bool) -> None:
    """A list without some handled types says which, and asks before it replaces the endpoint's:
    events of those types would stop reaching the tool."""
    from billing_cli.cli import render
    from billing_cli.cli.confirm import confirm
    from billing_cli.services.webhooks.setup import dropped_handled_types
    from billing_cli.text import plural

    dropped = dropped_handled_types(event_types)
    if not dropped:
        return
    render.note(
        f"warning: --events leaves out {plural(len(dropped), 'handled type')}: "
        f"{', '.join(dropped)}; Stripe will not send them to this endpoint"
    )
    confirm(
        f"subscribe the endpoint without {plural(len(dropped), 'handled type')}",
        yes=yes,
        dry_run=dry_run,
    )


def _report(result: SetupResult, *, url: str, write_env: Path | None, json_output: bool) -> None:
    from billing_cli.cli import render
    from billing_cli.cli.env_file import set_env_values

    data = result.to_dict()
    secret_note = ""
    if write_env is not None and not result.change.dry_run:
        values = {"BILLING_WEBHOOK_URL": url}
        if result.secret:
            values["STRIPE_WEBHOOK_SECRET"] = result.secret
        set_env_values(write_env, values)
        written = "STRIPE_WEBHOOK_SECRET and " if result.secret else ""
        secret_note = f"{written}BILLING_WEBHOOK_URL written to {write_env}"
        data["env_file"] = str(write_env)
    elif result.secret:
        data["secret"] = result.secret  # the one deliberate print, on stdout only
    if json_output:
        render.emit_json(data)
    else:
        render.change(result.change, json_output=False)
        rows = [("+", t) for t in result.added] + [("-", t) for t in result.removed]
        if rows and result.change.action == "update":
            render.table("Event types", ("", "type"), rows)
        if "secret" in data:
            render.out().print(f"signing secret: {result.secret}")
    for warning in result.warnings:
        render.note(f"warning: {warning}")
    if secret_note:
        render.note(secret_note)
    elif "secret" in data:
        render.note(
            "warning: Stripe shows this signing secret only once and the tool keeps no copy: "
            "put it in STRIPE_WEBHOOK_SECRET now (or run setup with --write-env .env next time)"
        )
    elif result.change.action == "update" and write_env is None:
        render.note("the endpoint keeps its signing secret (STRIPE_WEBHOOK_SECRET is unchanged)")


def endpoints(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the account's webhook endpoints: URL, status, API version and events."""
    from billing_cli.cli import render
    from billing_cli.services.webhooks.setup import list_endpoints

    rows = list_endpoints(runtime_of(ctx).gateway(dry_run=False))
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Webhook endpoints",
        ("id", "url", "status", "api version", "events", "missing handled types"),
        (
            (
                e["id"],
                e["url"],
                e["status"],
                e["api_version"] if e["api_version_matches"] else f"{e['api_version']} (differs)",
                _events_summary(e["enabled_events"]),
                ", ".join(e["missing_handled_events"]),
            )
            for e in rows
        ),
        empty="no webhook endpoints; `billing webhooks setup URL` creates one",
    )


def _events_summary(events: list[str]) -> str:
    """``*`` or a count: the list itself is in ``--json``."""
    return "* (every type)" if "*" in events else f"{len(events)} types"
