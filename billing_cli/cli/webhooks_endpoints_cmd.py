"""``billing webhooks endpoints [disable|enable|delete ID]``: the account's Stripe endpoints.

Without a subcommand it lists them (:func:`.webhooks_setup_cmd.endpoints`, as before). The
three subcommands change where Stripe delivers events, so each asks first (a typed yes on
stderr) unless ``--yes``, and a script with no terminal is refused rather than answered for;
``--dry-run`` reads the endpoint and shows the write it would send. The rules, the journal and
the audit are in :mod:`billing_cli.services.webhooks.endpoints`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption
from billing_cli.cli.runtime import runtime_of
from billing_cli.cli.webhooks_setup_cmd import endpoints as list_endpoints

if TYPE_CHECKING:
    from billing_cli.services.webhooks.endpoints import Action

app = typer.Typer(
    help="List the account's webhook endpoints, or disable, enable or delete one.",
    rich_markup_mode=None,
    invoke_without_command=True,
)

EndpointId = Annotated[str, typer.Argument(help="The endpoint's id (we_...), as listed.")]
AskOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
_QUESTIONS = {
    "disable": "disable webhook endpoint {id} (Stripe stops delivering to it until enabled)",
    "enable": "enable webhook endpoint {id} (Stripe delivers to it again)",
    "delete": "delete webhook endpoint {id} (final: its signing secret goes with it)",
}


@app.callback()
def endpoints(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the account's webhook endpoints: URL, status, API version and events."""
    if ctx.invoked_subcommand is None:
        list_endpoints(ctx, json_output=json_output)


def _change(
    ctx: typer.Context, action: Action, endpoint_id: str, *, dry_run: bool, yes: bool, json: bool
) -> None:
    """Ask (always, not only in live mode: this decides where money events go), then change."""
    from billing_cli.cli import render
    from billing_cli.cli.confirm import confirm
    from billing_cli.services.webhooks.endpoints import change_endpoint

    runtime = runtime_of(ctx)
    question = _QUESTIONS[action].format(id=endpoint_id)
    live = "LIVE MODE: " if runtime.settings().stripe_live_mode else ""
    confirm(live + question, yes=yes, dry_run=dry_run)
    db, gateway, invocation = runtime.begin_stripe_change(
        ctx,
        what=question,
        dry_run=dry_run,
        yes=True,  # asked just above
    )
    result = change_endpoint(
        db, gateway, invocation=invocation, endpoint_id=endpoint_id, action=action
    )
    render.change(result, json_output=json)


def _command(action: Action, summary: str) -> None:
    """Register ``endpoints ACTION ID``: the three differ only in their action and help."""

    def command(
        ctx: typer.Context,
        endpoint_id: EndpointId,
        dry_run: DryRunOption = False,
        yes: AskOption = False,
        json_output: JsonOption = False,
    ) -> None:
        _change(ctx, action, endpoint_id, dry_run=dry_run, yes=yes, json=json_output)

    command.__doc__ = summary
    app.command(action)(command)


_command(
    "disable", "Stop Stripe delivering to an endpoint (it keeps its secret; `enable` undoes it)."
)
_command("enable", "Let Stripe deliver to a disabled endpoint again.")
_command("delete", "Delete an endpoint for good; a new one gets a new signing secret.")
