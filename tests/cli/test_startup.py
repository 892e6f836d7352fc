"""``billing --help``, every group's ``--help`` and completion must not pay for stripe,
SQLAlchemy or pydantic (Typer coerces options through pydantic; the root's options, processed
before every group's help, must not)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from billing_cli.cli.main import COMMAND_GROUPS

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
"""


GROUPS = list(COMMAND_GROUPS)


def test_every_group_is_probed() -> None:
    assert {"tenants", "audit", "db"} <= set(GROUPS)


@pytest.mark.parametrize(
    "args", [["--help"], *([name, "--help"] for name in GROUPS)], ids=lambda a: " ".join(a)
)
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Usage: billing" in probe.stdout
    assert "HEAVY=\n" in probe.stderr, probe.stderr


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
