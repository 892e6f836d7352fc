"""The README's main job: ``billing demo`` runs the whole tour, offline, and exits 0."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.extra import run_billing_without

pytestmark = pytest.mark.sandbox


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "BILLING_"))}
    env.update({"COLUMNS": "120", "NO_COLOR": "1"})
    demo = subprocess.run(
        [sys.executable, "-m", "billing_cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "demo finished" in demo.stderr
    out = demo.stdout
    for expected in (
        "$ billing webhooks setup http://127.0.0.1:",  # the endpoint, through /v1/...
        "ok   webhook events: subscribed to every handled event type",  # billing doctor
        "ok   tenant suspension: active: the policy does not suspend it",  # doctor --tenant
        "$ billing plans sync",
        "made 0 Stripe writes",  # the second sync
        "  add team: name Team; price 12.00 USD;",  # plans as code: the dry run's before -> after
        "1 added, 0 updated, 0 deactivated, 2 unchanged",
        "0 added, 0 updated, 0 deactivated, 3 unchanged",  # the same file applied again
        "subscribed acme to starter",
        "Proration preview (from Stripe)",
        "charged globex 12.50 USD",
        "resumed acme's subscription",
        "extended acme's trial to",  # the adjustments chapter
        "discount: -3.80 USD (SPRING20); amount due: 15.20 USD",
        "paused collection of acme's subscription",
        "resumed collection of acme's subscription",
        "billing: 3 failed payment",  # suspended by the third failed attempt
        "webhook invoice.paid",  # ... and reactivated by the payment, via the endpoint
        "would be skipped (already processed)",  # replay from the Events API
        "older than the payment state already applied",
        "paid: collected 49.00 USD for invoice",  # the support desk: retry after a card fix
        "refunded 10.00 USD of pi_",
        "the local SMTP server received ",  # the outbox, sent by e-mail
        "Subject: Payment failed: 19.00 USD (attempt 3 of 3)",
        "Message-ID: <notification-",
        "FIRING payment_failure_rate:",  # billing check after the dunning
        "$ billing reconcile",
        "tenant(s) match Stripe",  # the closing screen: local state equals Stripe's
    ):
        assert expected in out, expected
    assert re.search(r"^no drift: \d+ tenant\(s\) match Stripe$", out, re.MULTILINE)
    assert "Error: card declined: generic_decline" in demo.stderr
    assert "STRIPE_WEBHOOK_SECRET and BILLING_WEBHOOK_URL written to" in demo.stderr
    assert not re.search(r"whsec_[0-9a-f]", out + demo.stderr)  # the secret: env file only
    assert list(tmp_path.iterdir()) == []  # the throwaway database lives elsewhere, and is gone


def test_no_command_module_imports_the_app_that_imports_it() -> None:
    """``cli/main.py`` imports every command module; none may import it back (the demo tour
    gets the root command handed down instead)."""
    import billing_cli

    package = Path(billing_cli.__file__).parent
    importers = []
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if "billing_cli.cli.main" in names:
                importers.append(module.relative_to(package).as_posix())
    assert importers == ["__main__.py"]


@pytest.mark.parametrize("blocked", ["stripe_sandbox", "localstripe", "aiohttp"])
def test_demo_without_the_sandbox_extra_says_how_to_install_it(
    blocked: str, tmp_path: Path
) -> None:
    demo = run_billing_without(blocked, ["demo"], tmp_path)
    assert demo.returncode == 1
    assert demo.stderr == (
        "Error: billing demo needs the sandbox extra: pip install 'billing-cli[sandbox]'\n"
    )
    assert demo.stdout == ""
    assert list(tmp_path.iterdir()) == []  # stopped before the scratch database or anything


def _imports_of(tree: ast.AST, package: str) -> list[tuple[ast.stmt, bool]]:
    """Each import naming ``package`` in ``tree``, and whether it runs only inside a function
    (or under ``if TYPE_CHECKING:``), not when the module is imported."""
    found: list[tuple[ast.stmt, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                inner = True
            if isinstance(child, ast.ImportFrom):
                modules = [child.module or ""]
            elif isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            else:
                modules = []
            if any(module.split(".")[0] == package for module in modules):
                found.append((child, lazy))
            visit(child, inner)

    visit(tree, False)
    return found


def test_billing_cli_imports_the_sandbox_only_lazily_from_demo_and_sandbox() -> None:
    """A production install has no sandbox extra: only ``billing demo`` and ``billing
    sandbox`` (and their helpers) may import stripe_sandbox, and only when they run."""
    import billing_cli

    package = Path(billing_cli.__file__).parent
    where: dict[str, list[bool]] = {}
    for module in package.rglob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for _node, lazy in _imports_of(tree, "stripe_sandbox"):
            where.setdefault(module.relative_to(package).as_posix(), []).append(lazy)
    assert where, "the check found no import at all: it no longer looks at the right thing"
    allowed = {
        "cli/sandbox_cmd.py",
        "cli/demo_extra.py",
        "cli/demo_tour.py",
        "cli/demo_webhooks.py",
    }
    assert set(where) <= allowed
    assert all(all(lazies) for lazies in where.values()), where


def test_the_sandbox_does_not_import_billing_cli() -> None:
    import stripe_sandbox

    package = Path(stripe_sandbox.__file__).parent
    importers = [
        module.name
        for module in package.glob("*.py")
        if _imports_of(ast.parse(module.read_text(encoding="utf-8")), "billing_cli")
    ]
    assert importers == []


def test_the_tour_prints_each_command_whole_when_piped_at_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.main import get_command

    from billing_cli.cli import render
    from billing_cli.cli.demo_tour import Step, run_steps
    from billing_cli.cli.main import app

    monkeypatch.setenv("COLUMNS", "80")
    render.reset_consoles()
    args = (
        "tenants",
        "add",
        "initech",
        "--name",
        "Initech Corporation International",
        "--email",
        "accounts-payable@initech.example",
        "--dry-run",
    )
    run_steps(get_command(app), [Step(args, expect=1)])  # no database: the step fails as told
    printed = capsys.readouterr().out
    line = "$ billing " + " ".join(f"'{a}'" if " " in a else a for a in args)
    assert len(line) > 80
    assert line in printed.splitlines()
