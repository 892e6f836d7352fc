"""The ``billing`` root command: global options, the command groups, and the one error boundary.

Every ``BillingError`` raised anywhere below is caught in :meth:`BillingGroup.invoke` and becomes
one line on stderr with the error's exit code. Anything unexpected becomes one line too, unless
``--verbose`` asks for the traceback.
"""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import Command as ClickCommand
from typer._click import Context as ClickContext  # the type TyperGroup.invoke declares
from typer._click import HelpFormatter
from typer._click.exceptions import (
    BadParameter,
    MissingParameter,
    NoArgsIsHelpError,
    UsageError,
)
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

from billing_cli.cli.runtime import Runtime, runtime_of


class BillingGroup(TyperGroup):
    """The root group; turns errors into one line and an exit code, and builds commands lazily.

    Typer turning every group's commands into Click commands cost ~18 ms, and importing every
    command module ~15 ms more, paid by every ``billing --help``. A group or top-level command is
    imported and built only when it is invoked, completed or asked for its help; ``billing
    --help`` lists them from the summaries in :data:`COMMAND_GROUPS` and :data:`COMMANDS`.
    """

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return [*COMMAND_GROUPS, *COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: ClickContext, cmd_name: str) -> ClickCommand | None:
        if cmd_name in COMMAND_GROUPS:
            return _build_group(cmd_name)
        if cmd_name in COMMANDS:
            return _build_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        """The commands and one line of help each, without importing or building them."""
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        limit = 400  # the first sentence whole (Click wraps it), never cut to one line
        for name in names:
            lazy = COMMAND_GROUPS.get(name) or COMMANDS.get(name)
            if lazy is not None:
                rows.append((name, make_default_short_help(lazy.summary, limit)))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        _plain_root_options(self.get_params(ctx))
        try:
            return super().parse_args(ctx, args)
        except UsageError as error:
            raise typer.Exit(_usage_line(error)) from None

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:  # a subcommand's bad option, missing argument, bad choice
            raise typer.Exit(_usage_line(error)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            from billing_cli.errors import BillingError  # not imported for --help

            if isinstance(error, BillingError):
                _print_error(str(error))
                raise typer.Exit(error.exit_code) from None
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
    _print_error(f"{_plain_message(error)} (see `{where} --help`)")
    return error.exit_code


def _plain_message(error: UsageError) -> str:
    """Click's message in plain words: the choices of a bad choice, a near miss for a mistyped
    command, and none of pydantic's validation wording ("Value error, ...", "Input should be")."""
    import difflib
    import re

    message = error.format_message()
    unknown = re.fullmatch(r"No such command '(.+)'\.", message)
    if unknown and error.ctx is not None and isinstance(error.ctx.command, TyperGroup):
        names = error.ctx.command.list_commands(error.ctx)
        typed = unknown.group(1)
        near = [n for n in names if n.startswith(typed) or typed.startswith(n)]
        near = near or difflib.get_close_matches(typed, names, n=1, cutoff=0.6)
        if near:
            return f"no command {typed!r}; did you mean {near[0]!r}?"
        return f"no command {typed!r}; the commands are {', '.join(names)}"
    if isinstance(error, BadParameter) and not isinstance(error, MissingParameter):
        hint = error.param.get_error_hint() if error.param is not None else "the value"
        hint = hint.replace("'", "")
        choices = getattr(getattr(error.param, "type_descriptor", None), "choices", None)
        if choices:
            given = re.match(r"(?:Value error, )?('.*?') is not one of", error.message)
            shown = ", ".join(str(getattr(c, "value", c)) for c in choices)
            return f"{hint} must be one of {shown}" + (f", not {given.group(1)}" if given else "")
        reason = error.message.removeprefix("Value error, ")
        for pydantic_words, plain in _PLAIN_REASONS:
            reason = reason.replace(pydantic_words, plain)
        return f"{hint}: {reason}"
    return message


_TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
_PLAIN_REASONS = (
    ("Input should be a valid integer, unable to parse string as an integer", "not a whole number"),
    ("Input should be a valid integer", "not a whole number"),
    ("Input should be greater than or equal to", "must be at least"),
    ("Input should be less than or equal to", "must be at most"),
)


def _plain_root_options(params: list[Any]) -> None:
    """Coerce the root's text, path and flag options without Typer's pydantic adapters.

    Typer builds a pydantic TypeAdapter to coerce each option it processes, and importing
    pydantic costs more than the rest of ``billing GROUP --help`` together. The root's options
    are processed before every group's help; they are plain text and paths, so they get a plain
    coercion. (With another Typer, where this hook does not exist, nothing changes.)
    """
    try:
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - a Typer without runtime coercion
        return

    class PlainRuntimeParam(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.annotation is bool:
                return value if isinstance(value, bool) else str(value).lower() in _TRUE_WORDS
            text = value.decode() if isinstance(value, bytes) else str(value)
            return Path(text) if self.annotation is Path else text

    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", 0) is not None:
            continue
        if descriptor.annotation in (str, Path, bool):
            param._runtime_param = PlainRuntimeParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )


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
    # Written here, not in help_text: `billing --help` imports nothing it does not print.
    epilog="Examples:\n\n\b\n  billing demo\n  billing tenants list\n"
    "  billing subs show acme\n  billing tenants --help",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed_version

        try:
            number = installed_version("billing-cli")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        sys.stdout.write(f"billing {number}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file", metavar="PATH", help="Read settings from this file instead of ./.env."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log Stripe calls; show tracebacks.")
    ] = False,
    operator: Annotated[
        str | None,
        typer.Option(
            "--operator",
            metavar="NAME",
            help="Who is acting, for the audit trail (default: BILLING_OPERATOR, else OS user).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            expose_value=False,
            callback=_print_version,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Billing administration for multi-tenant SaaS products on Stripe."""
    ctx.obj = Runtime(env_file=env_file, verbose=verbose, operator=operator)


class Lazy:
    """A command group or top-level command, named by where it lives, with the line ``billing
    --help`` shows for it (its help's first paragraph; a test holds the two equal)."""

    __slots__ = ("attribute", "module", "summary")

    def __init__(self, module: str, attribute: str, summary: str) -> None:
        self.module = module  # under billing_cli.cli
        self.attribute = attribute  # a typer.Typer for a group, the function for a command
        self.summary = summary

    def load(self) -> Any:
        return getattr(importlib.import_module(f"billing_cli.cli.{self.module}"), self.attribute)


COMMAND_GROUPS: dict[str, Lazy] = {
    "tenants": Lazy("tenants_cmd", "app", "Tenants and their access."),
    "plans": Lazy("plans_cmd", "app", "Subscription plans and their Stripe Products and Prices."),
    "subs": Lazy("subs_cmd", "app", "Tenants' Stripe subscriptions."),
    "payments": Lazy("payments_cmd", "app", "One-off charges and payment methods."),
    "invoices": Lazy(
        "invoices_cmd", "app", "Invoices: list, show, retry now, void, mark uncollectible."
    ),
    "coupons": Lazy("coupons_cmd", "app", "Stripe coupons for discounts."),
    "webhooks": Lazy(
        "webhooks_cmd", "app", "Stripe webhook events: the ledger, replay, and the live endpoint."
    ),
    "notifications": Lazy("notifications_cmd", "app", "The notification outbox."),
    "intents": Lazy(
        "intents_cmd", "app", "The Stripe write journal: see and finish interrupted writes."
    ),
    "audit": Lazy("audit_cmd", "app", "The audit trail."),
    "db": Lazy("db_cmd", "app", "The tenant database's schema."),
}

COMMANDS: dict[str, Lazy] = {
    "config": Lazy(
        "config_cmd",
        "show_config",
        "Show the effective configuration (every secret masked) and whether it is safe to use.",
    ),
    "demo": Lazy(
        "demo_cmd",
        "demo",
        "Run a scripted tour on a throwaway database and a local Stripe sandbox.",
    ),
    "doctor": Lazy(
        "doctor_cmd",
        "doctor",
        "Check configuration, database, Stripe, the webhook endpoint and deliveries; say the fix.",
    ),
    "reconcile": Lazy(
        "reconcile_cmd",
        "reconcile",
        "Compare every tenant with Stripe (bulk reads); exit 1 when drift is found.",
    ),
    "sandbox": Lazy(
        "sandbox_cmd",
        "sandbox",
        "Run a local Stripe sandbox in the foreground (Ctrl-C or SIGTERM stops it).",
    ),
    "stats": Lazy(
        "stats_cmd",
        "stats",
        "Billing metrics over a window, per day or week, with a chart of each over time.",
    ),
    "check": Lazy(
        "stats_cmd",
        "check",
        "Evaluate the alert rules; exit 3 when any fires (0: all clear, 1: could not check).",
    ),
}


@functools.cache
def _build_group(name: str) -> ClickCommand:
    from billing_cli.cli.help_text import polish
    from billing_cli.cli.lazy import build_group

    group = build_group(COMMAND_GROUPS[name].load(), name)
    group.name = name
    polish(group, name)
    return group


@functools.cache
def _build_command(name: str) -> ClickCommand:
    from billing_cli.cli.help_text import polish
    from billing_cli.cli.lazy import build_command

    command = build_command(COMMANDS[name].load(), name, app)
    polish(command, name)
    return command


def main() -> None:
    """Console-script entry point."""
    app(prog_name="billing")


__all__ = ["COMMANDS", "COMMAND_GROUPS", "Lazy", "app", "main", "runtime_of"]
