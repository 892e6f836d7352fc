"""Every command's ``--help``: an example to copy, plain metavars; and slug completion."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.core import TyperGroup as Group
from typer.main import get_command

from billing_cli.cli.help_text import EXAMPLES
from billing_cli.cli.main import app
from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.factories import add_tenant


def _command_paths() -> Iterator[tuple[str, ...]]:
    root = get_command(app)
    assert isinstance(root, Group)

    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if isinstance(command, Group):
            if command.invoke_without_command and path:  # also a command of its own
                yield path
            for name in command.list_commands(None):  # type: ignore[arg-type]
                sub = command.get_command(None, name)  # type: ignore[arg-type]
                assert sub is not None
                yield from walk(sub, (*path, name))
        else:
            yield path

    yield from walk(root, ())


COMMANDS = sorted(_command_paths())


def test_every_command_has_examples_and_every_example_is_a_command() -> None:
    paths = {" ".join(path) for path in COMMANDS}
    assert paths == set(EXAMPLES)
    for path, examples in EXAMPLES.items():
        for example in examples:
            assert example.startswith(f"billing {path}") or example.startswith("billing --"), path


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_shows_examples_and_plain_metavars(billing: Billing, path: tuple[str, ...]) -> None:
    result = billing(*path, "--help")
    assert result.exit_code == 0
    assert "Examples:\n\n" in result.stdout
    for example in EXAMPLES[" ".join(path)]:
        assert f"    {example}\n" in result.stdout  # one line each, never re-wrapped
    assert not re.search(r"\{[a-z_]+\}|<str>|<int|<list\[|<path>", result.stdout), result.stdout


def _complete(words: str, env: dict[str, str]) -> list[str]:
    completion = subprocess.run(
        [sys.executable, "-m", "billing_cli"],
        env={
            **env,
            "_BILLING_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completion.stdout.split()


def test_tenant_and_plan_slugs_complete_from_the_database(
    db_env: Database, tmp_path: object
) -> None:
    add_tenant(db_env, "acme")
    add_tenant(db_env, "acorn")
    add_tenant(db_env, "globex")
    from billing_cli.services import plans
    from tests.factories import invocation

    plans.add_plan(
        db_env,
        invocation=invocation(),
        slug="pro",
        name="Pro",
        amount="29.00",
        currency="usd",
        interval="month",
    )
    Path("acme-notes.txt").write_text("")  # a file name that must not be offered
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    assert _complete("billing tenants show ac", env) == ["acme", "acorn"]
    assert _complete("billing subs create globex --plan p", env) == ["pro"]
    assert _complete("billing audit list --tenant gl", env) == ["globex"]


def test_completion_without_a_database_completes_nothing(tmp_path: object) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    assert _complete("billing tenants show ac", env) == []
