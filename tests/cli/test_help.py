"""Every command's ``--help``: an example to copy, plain metavars; and slug completion."""

from __future__ import annotations

import json
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


def _groups() -> set[str]:
    return {" ".join(path[:n]) for path in COMMANDS for n in range(1, len(path))}


def test_every_command_has_examples_and_every_example_is_a_command() -> None:
    paths = {" ".join(path) for path in COMMANDS}
    assert paths | _groups() == set(EXAMPLES)
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
    from billing_cli.services.catalog import plans
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


def _help_ends_with_examples(text: str) -> bool:
    tail = text.rstrip().rsplit("Examples:\n\n", 1)[-1]
    return "Examples:" in text and all(line.startswith("    billing") for line in tail.splitlines())


@pytest.mark.parametrize("group", ["", *sorted(_groups())])
def test_root_and_group_help_end_with_examples_and_never_cut_a_summary(
    billing: Billing, group: str
) -> None:
    result = billing(*group.split(), "--help")
    assert result.exit_code == 0
    assert _help_ends_with_examples(result.stdout), result.stdout
    listing = result.stdout.split("Commands:\n", 1)[1].split("Examples:", 1)[0]
    assert not re.search(r"\w\.\.\.$", listing, re.MULTILINE), listing  # Click's cut mark


def _options(path: tuple[str, ...]) -> list[object]:
    command: object = get_command(app)
    for name in path:
        command = command.get_command(None, name)  # type: ignore[attr-defined]
    return [p for p in command.params if getattr(p, "param_type_name", "") == "option"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_has_help_and_names_what_it_takes(
    billing: Billing, path: tuple[str, ...]
) -> None:
    result = billing(*path, "--help")
    unexplained = [p.opts for p in _options(path) if not p.help]  # type: ignore[attr-defined]
    assert not unexplained, unexplained
    assert not re.search(r"--[a-z-]+ TEXT\b", result.stdout), result.stdout


@pytest.mark.parametrize("path", [("tenants", "remove"), ("invoices", "void")], ids=" ".join)
def test_yes_says_the_question_is_asked_in_every_mode(
    billing: Billing, path: tuple[str, ...]
) -> None:
    text = " ".join(billing(*path, "--help").stdout.split())
    assert "--yes Skip" in text and "asked in every mode, live or test" in text


def test_check_help_lists_every_rule(billing: Billing, db_env: Database) -> None:
    result = billing("check", "--json")  # exits 3 when a rule fires, so not billing.json
    rules = [rule["rule"] for rule in json.loads(result.stdout)["rules"]]
    assert "unfinished_intents" in rules
    shown = billing("check", "--help").stdout
    assert all(rule in shown for rule in rules), (rules, shown)


def test_no_internal_wording_in_help(billing: Billing) -> None:
    for args in ((), ("stats",)):
        assert "seed" not in billing(*args, "--help").stdout.lower()
