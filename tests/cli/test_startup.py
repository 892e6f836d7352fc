"""``billing --help``, every group's and command's ``--help`` and completion must not pay for
stripe, SQLAlchemy or pydantic (Typer coerces options through pydantic; the root's options,
processed before every group's help, must not), nor for the settings, nor for any command module
but the one asked for (``billing --help`` imports none: it lists them from summaries)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.main import get_command

from billing_cli.cli.main import COMMAND_GROUPS, COMMANDS, app

PROBE = """
import sys
from billing_cli.cli.main import app
try:
    app(args={args!r}, prog_name="billing")
except SystemExit:
    pass
heavy = sorted(m for m in ("stripe", "sqlalchemy", "sqlmodel", "alembic", "psycopg", "pydantic")
               if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
print("BILLING=" + ",".join(sorted(m for m in sys.modules if m.startswith("billing_cli"))),
      file=sys.stderr)
"""

# Imported by every --help: the root, the per-run state it creates, and for a command's help,
# the shared options, the examples and the builder of groups.
ALWAYS = {"billing_cli", "billing_cli.cli", "billing_cli.cli.main", "billing_cli.cli.runtime"}
FOR_A_COMMAND = {"billing_cli.cli.options", "billing_cli.cli.help_text", "billing_cli.cli.lazy"}
# What a command's own module may import for its help text: `stats` lists the metrics.
# The metric definitions that stats' and check's help lists, with the packages they sit in.
HELP_TEXT_SOURCES = {
    "billing_cli.services",
    "billing_cli.services.observe",
    "billing_cli.services.observe.metric_definitions",
}

GROUPS = list(COMMAND_GROUPS)
NAMES = [*COMMAND_GROUPS, *COMMANDS]


def _probe(args: list[str]) -> tuple[str, list[str], set[str]]:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = dict(line.split("=", 1) for line in probe.stderr.splitlines() if "=" in line)
    heavy = [m for m in lines.get("HEAVY", "?").split(",") if m]
    return probe.stdout, heavy, set(filter(None, lines.get("BILLING", "").split(",")))


def test_every_group_is_probed() -> None:
    assert {"tenants", "audit", "db"} <= set(GROUPS)
    assert {"config", "demo", "sandbox", "stats", "check"} <= set(COMMANDS)


def test_root_help_imports_no_command_module() -> None:
    stdout, heavy, billing = _probe(["--help"])
    assert "Usage: billing" in stdout
    assert heavy == []
    assert billing == ALWAYS


@pytest.mark.parametrize("name", NAMES)
def test_help_imports_only_its_own_command_module(name: str) -> None:
    stdout, heavy, billing = _probe([name, "--help"])
    assert f"Usage: billing {name}" in stdout
    assert heavy == []
    lazy = COMMAND_GROUPS.get(name) or COMMANDS[name]
    family = (
        f"billing_cli.cli.{lazy.module.removesuffix('_cmd')}_"  # tenants_cmd, tenants_credit_cmd
    )
    extra = billing - ALWAYS - FOR_A_COMMAND - HELP_TEXT_SOURCES
    assert f"billing_cli.cli.{lazy.module}" in extra
    assert {m for m in extra if not m.startswith(family)} == set(), extra
    assert "billing_cli.config" not in billing and "billing_cli.errors" not in billing


def test_a_subcommand_help_builds_only_that_command() -> None:
    code = (
        "from billing_cli.cli.main import app, _build_group\n"
        "try:\n    app(args=['subs', 'show', '--help'], prog_name='billing')\n"
        "except SystemExit:\n    pass\n"
        "print('BUILT=' + ','.join(sorted(_build_group('subs').commands)))\n"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Usage: billing subs show" in probe.stdout
    assert "BUILT=show\n" in probe.stdout


@pytest.mark.parametrize("name", NAMES)
def test_root_help_summary_is_the_commands_own(name: str) -> None:
    """``billing --help`` shows the summary without importing the command; it must be the first
    paragraph of the help the command itself shows."""
    group = get_command(app)
    command = group.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.help
    first_paragraph = command.help.split("\n\n")[0]
    lazy = COMMAND_GROUPS.get(name) or COMMANDS[name]
    assert lazy.summary == " ".join(first_paragraph.split())


def test_completion_imports_no_heavy_module() -> None:
    code = (
        "import os, sys\n"
        "os.environ['_BILLING_COMPLETE'] = 'complete_bash'\n"
        "os.environ['COMP_WORDS'] = 'billing ten'\n"
        "os.environ['COMP_CWORD'] = '1'\n"
        "from billing_cli.cli.main import app\n"
        "try:\n    app(prog_name='billing')\nexcept SystemExit:\n    pass\n"
        "print('HEAVY=' + ','.join(m for m in ('stripe','sqlalchemy') if m in sys.modules),"
        " file=sys.stderr)\n"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "tenants" in probe.stdout
    assert "HEAVY=\n" in probe.stderr, probe.stderr
