"""Commands imported and built only when asked for, so that ``--help`` pays for one command.

Typer turns a function into a Click command by reading its signature and evaluating every
annotation (~0.5 ms a command), and a command group is turned into Click all at once: ``billing
subs --help`` built all thirteen ``subs`` commands (~6 ms) only to print one line of each. Here a
group is built as an empty shell whose commands Typer builds one at a time, on first use; its help
lists them from their docstrings. The root does the same one level up, from the summaries in
:mod:`billing_cli.cli.main`, so ``billing --help`` imports neither this module nor any command
module.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import typer
from typer._click import Command as ClickCommand
from typer._click import Context as ClickContext
from typer._click import HelpFormatter
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo, TyperInfo

# A command's line in its group's help: its first sentence whole, wrapped by Click if long
# (cutting it to the line, as Click does by default, left "Retry an open invoice now, e.g.").
SUMMARY_LIMIT = 400


class LazyGroup(TyperGroup):
    """A Typer group whose commands are built (and given their examples) on first use."""

    path = ""  # the command path without "billing", for the examples in help_text
    pretty_exceptions_short = True
    _order: list[str]
    _pending: dict[str, CommandInfo]

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return list(self._order)

    def get_command(self, ctx: ClickContext, cmd_name: str) -> ClickCommand | None:
        info = self._pending.pop(cmd_name, None)
        if info is not None:
            from billing_cli.cli.help_text import polish

            command = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=self.pretty_exceptions_short,
                rich_markup_mode=self.rich_markup_mode,
            )
            polish(command, f"{self.path} {cmd_name}")
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        """Click's list of commands, one line of help each, from what they would be built with."""
        rows: list[tuple[str, ClickCommand]] = []
        for name in self.list_commands(ctx):
            info = self._pending.get(name)
            command = _help_only(name, info) if info is not None else self.commands.get(name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(
                    [(name, cmd.get_short_help_str(SUMMARY_LIMIT)) for name, cmd in rows]
                )


def _help_only(name: str, info: CommandInfo) -> ClickCommand:
    """A command with the help, short help and flags Typer would give it, and no parameters:
    all its line in the group's help needs."""
    callback_help = inspect.getdoc(info.callback) if info.help is None else None
    return TyperCommand(
        name=name,
        help=inspect.cleandoc(info.help) if info.help is not None else callback_help,
        short_help=info.short_help,
        hidden=info.hidden,
        deprecated=info.deprecated,
    )


def build_command(function: Any, name: str, parent: typer.Typer) -> ClickCommand:
    """The Click command Typer would build for ``parent.command(name)(function)``."""
    return typer.main.get_command_from_info(
        CommandInfo(name=name, cls=TyperCommand, callback=function),
        pretty_exceptions_short=parent.pretty_exceptions_short,
        rich_markup_mode=parent.rich_markup_mode,
    )


def build_group(app: typer.Typer, path: str, info: TyperInfo | None = None) -> LazyGroup:
    """The Click group Typer would build for ``app`` (added to its parent with ``info``), with
    its commands left to be built on first use."""
    shell = copy.copy(app)
    shell.registered_commands = []
    shell.registered_groups = []
    shell_info = copy.copy(info) if info is not None else TyperInfo(shell)
    shell_info.typer_instance = shell
    shell_info.cls = LazyGroup
    group = typer.main.get_group_from_info(
        shell_info,
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )
    assert isinstance(group, LazyGroup)
    group.path = path
    group.pretty_exceptions_short = app.pretty_exceptions_short
    group._pending = {}
    for command_info in app.registered_commands:
        assert command_info.callback is not None
        name = command_info.name or typer.main.get_command_name(command_info.callback.__name__)
        group._pending[name] = command_info
    for sub_info in app.registered_groups:
        assert sub_info.typer_instance is not None and isinstance(sub_info.name, str)
        sub = build_group(sub_info.typer_instance, f"{path} {sub_info.name}", sub_info)
        group.commands[sub_info.name] = sub
    group._order = [*group._pending, *group.commands]
    return group
