"""Asking the operator before a write that cannot be undone.

Prompts go to stderr (stdout stays for data and ``--json``). With no answer to read (a script,
a closed stdin) the command is refused with a hint to pass ``--yes``, never run by default.
A dry run asks nothing: it changes nothing.
"""

from __future__ import annotations

import sys

import typer

from billing_cli.errors import ConfirmationDeclined


def confirm(question: str, *, yes: bool, dry_run: bool) -> None:
    """A yes/no question; anything but yes refuses."""
    if yes or dry_run:
        return
    try:
        answer = typer.confirm(f"{question}?", default=False, err=True)
    except (typer.Abort, EOFError):
        end_prompt_line()
        raise ConfirmationDeclined(f"not confirmed; pass --yes to {question}") from None
    end_piped_answer()
    if not answer:
        raise ConfirmationDeclined("cancelled; nothing was changed")


def confirm_typed(word: str, *, what: str, yes: bool, dry_run: bool) -> bool:
    """The operator types ``word`` (e.g. the tenant's slug) to go ahead; True once confirmed."""
    if yes or dry_run:
        return yes
    try:
        typed = typer.prompt(
            f"This will {what}. Type {word} to confirm", default="", show_default=False, err=True
        )
    except (typer.Abort, EOFError):
        end_prompt_line()
        raise ConfirmationDeclined(f"not confirmed; pass --yes to {what}") from None
    end_piped_answer()
    if typed.strip() != word:
        raise ConfirmationDeclined(
            f"you typed {typed.strip()!r}, not {word!r}; nothing was changed"
        )
    return True


def end_piped_answer() -> None:
    """An answer read from a pipe is not echoed, so the question's line was never ended: end it
    (a person at a terminal ended it with Enter), so what follows starts a line of its own."""
    if not sys.stdin.isatty():
        end_prompt_line()


def end_prompt_line() -> None:
    """With nothing to read, the question is left without its line break; end it, so the
    error starts a line of its own (not ``Type acme to confirm:Error: ...``)."""
    typer.echo("", err=True)
