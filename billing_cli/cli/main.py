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
from typer._click.exceptions import (
    BadParameter,
    MissingParameter,
    NoArgsIsHelpError,
    UsageError,
)
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

from billing_cli.cli import (
    audit_cmd,
    config_cmd,
    coupons_cmd,
    db_cmd,
    demo_cmd,
    doctor_cmd,
    intents_cmd,
    invoices_cmd,
    notifications_cmd,
    payments_cmd,
    plans_cmd,
    reconcile_cmd,
    sandbox_cmd,
    stats_cmd,
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
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            from billing_cli.cli.help_text import polish

            polish(command, cmd_name)
        return command

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
    from billing_cli.cli.help_text import polish

    group = typer.main.get_group(COMMAND_GROUPS[name])
    group.name = name
    polish(group, name)
    return group


def _group_help(name: str) -> str:
    help_text = COMMAND_GROUPS[name].info.help
    return help_text if isinstance(help_text, str) else ""


app.command("config")(config_cmd.show_config)
app.command("demo")(demo_cmd.demo)
app.command("doctor")(doctor_cmd.doctor)
app.command("reconcile")(reconcile_cmd.reconcile)
app.command("sandbox")(sandbox_cmd.sandbox)
app.command("stats")(stats_cmd.stats)
app.command("check")(stats_cmd.check)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="billing")


__all__ = ["COMMAND_GROUPS", "app", "main", "runtime_of"]
