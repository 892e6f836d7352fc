"""``billing demo``: a scripted tour that runs real ``billing`` commands on a throwaway database.

Each step is printed as the command line a person would type, then run in-process through the
same app, so the demo shows exactly the tool's real output. The tour needs nothing installed by
hand: a temporary SQLite file and (for the Stripe steps) a local sandbox the demo starts itself.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

TENANT_STEPS: tuple[tuple[str, ...], ...] = (
    ("db", "upgrade"),
    ("tenants", "add", "acme", "--name", "Acme Inc", "--email", "billing@acme.test"),
    ("tenants", "add", "globex", "--name", "Globex", "--email", "ap@globex.test"),
    ("tenants", "suspend", "globex", "--reason", "chargeback under review", "--dry-run"),
    ("tenants", "suspend", "globex", "--reason", "chargeback under review"),
    ("tenants", "list"),
    ("tenants", "reactivate", "globex"),
    ("audit", "list", "--limit", "5"),
)


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the demo database and print where it is.")
    ] = False,
) -> None:
    """Run a scripted tour on a throwaway database (and a local Stripe sandbox)."""
    from billing_cli.cli import render

    with _scratch_environment(keep=keep) as workdir:
        render.note(f"[bold]billing demo[/bold]: working in {workdir} (a throwaway database)")
        run_steps(TENANT_STEPS)
        render.note("[bold green]demo finished[/bold green]")


def run_steps(steps: Sequence[Sequence[str]]) -> None:
    """Run each step as ``billing ARGS``, stopping at the first unexpected failure."""
    from billing_cli.cli import render
    from billing_cli.cli.main import app

    for args in steps:
        render.out().print(f"\n[bold cyan]$ billing {shlex.join(args)}[/bold cyan]")
        sys.stdout.flush()
        try:
            app(list(args), prog_name="billing", standalone_mode=False)
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise typer.Exit(int(stop.code) if isinstance(stop.code, int) else 1) from None


@contextmanager
def _scratch_environment(*, keep: bool) -> Iterator[Path]:
    """A temp working directory and database URL, with the caller's settings put back after."""
    workdir = Path(tempfile.mkdtemp(prefix="billing-demo-"))
    saved = {name: os.environ.get(name) for name in ("BILLING_DATABASE_URL", "BILLING_OPERATOR")}
    os.environ["BILLING_DATABASE_URL"] = f"sqlite:///{workdir / 'demo.db'}"
    os.environ["BILLING_OPERATOR"] = "demo"
    try:
        yield workdir
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if not keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
