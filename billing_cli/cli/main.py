"""The ``billing`` root command: global options, the command groups, and the one error boundary.

Every ``BillingError`` raised anywhere below is caught in :meth:`BillingGroup.invoke` and becomes
one line on stderr with the error's exit code. Anything unexpected becomes one line too, unless
``--verbose`` asks for the traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import Command as ClickCommand
from typer._click import Context as ClickContext  # the type TyperGroup.invoke declares
from typer._click import HelpFormatter
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

from billing_cli.cli import (
    audit_cmd,
    config_cmd,
    coupons_cmd,
    db_cmd,
    demo_cmd,
    intents_cmd,
    invoices_cmd,
    notifications_cmd,
    payments_cmd,
    plans_cmd,
    sandbox_cmd,
    subs_cmd,
    tenants_cmd,
    webhooks_cmd,
)
from billing_cli.cli.runtime import Runtime, runtime_of
from billing_cli.errors import BillingError


class BillingGroup(TyperGroup):
    """The root group; turns errors into one line and an exit code, and builds command groups
    lazily: Typer turning every group's commands into Click commands cost ~18 ms, paid by every
    ``billing --help``. A group is built when it is invoked, completed or asked for its help.
    """

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return [*COMMAND_GROUPS, *super().list_commands(ctx)]

    def get_command(self, ctx: ClickContext, cmd_name: str) -> ClickCommand | None:
        if cmd_name in COMMAND_GROUPS:
            return _build_group(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        """The commands and one line of help each, without building the groups."""
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        for name in names:
            if name in COMMAND_GROUPS:
                rows.append((name, make_default_short_help(_group_help(name), limit)))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as error:
            raise typer.Exit(_usage_line(error)) from None

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:  # a subcommand's bad option, missing argument, bad choice
            raise typer.Exit(_usage_line(error)) from None
        except BillingError as error:
            _print_error(str(error))
            raise typer.Exit(error.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if isinstance(ctx.obj, Runtime) and ctx.obj.verbose:
                raise
            if _is_usage_error(error):
                raise
            _print_error(f"unexpected {type(error).__name__}: {error} (run with --verbose)")
            raise typer.Exit(1) from None
        finally:
            if isinstance(ctx.obj, Runtime):
                ctx.obj.close()


def _usage_line(error: UsageError) -> int:
    """Click's usage error as one line naming the command's --help; returns the exit code.

    A group run without a command keeps Click's answer: its help text.
    """
    if isinstance(error, NoArgsIsHelpError):
        error.show()
        return error.exit_code
    where = error.ctx.command_path if error.ctx is not None else "billing"
    _print_error(f"{error.format_message()} (see `{where} --help`)")
    return error.exit_code


def _is_usage_error(error: Exception) -> bool:
    from typer._click.exceptions import ClickException

    return isinstance(error, ClickException)


def _print_error(message: str) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"Error: {first_line}\n")
    sys.stderr.flush()


app = typer.Typer(
    cls=BillingGroup,
    name="billing",
    help="Billing administration for multi-tenant SaaS products on Stripe.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None,
        typer.Option("--env-file", help="Read settings from this file instead of ./.env."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log Stripe calls; show tracebacks.")
    ] = False,
    operator: Annotated[
        str | None,
        typer.Option(
            "--operator", help="Who is acting, for the audit trail (default: BILLING_OPERATOR)."
        ),
    ] = None,
) -> None:
    """Billing administration for multi-tenant SaaS products on Stripe."""
    ctx.obj = Runtime(env_file=env_file, verbose=verbose, operator=operator)


COMMAND_GROUPS: dict[str, typer.Typer] = {
    "tenants": tenants_cmd.app,
    "plans": plans_cmd.app,
    "subs": subs_cmd.app,
    "payments": payments_cmd.app,
    "invoices": invoices_cmd.app,
    "coupons": coupons_cmd.app,
    "webhooks": webhooks_cmd.app,
    "notifications": notifications_cmd.app,
    "intents": intents_cmd.app,
    "audit": audit_cmd.app,
    "db": db_cmd.app,
}


@functools.cache
def _build_group(name: str) -> ClickCommand:
    group = typer.main.get_group(COMMAND_GROUPS[name])
    group.name = name
    return group


def _group_help(name: str) -> str:
    help_text = COMMAND_GROUPS[name].info.help
    return help_text if isinstance(help_text, str) else ""


app.command("config")(config_cmd.show_config)
app.command("demo")(demo_cmd.demo)
app.command("sandbox")(sandbox_cmd.sandbox)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="billing")


__all__ = ["COMMAND_GROUPS", "app", "main", "runtime_of"]
