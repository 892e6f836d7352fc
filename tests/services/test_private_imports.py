"""A cheap guard: no service module imports another module's private (``_name``) helpers.

A helper two modules share is part of a contract; it gets a public name and a docstring in a
module of its own (as :mod:`billing_cli.services.subscriptions.updates` did for the subscription
update machinery) instead of being reached for across modules under a leading underscore.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "billing_cli" / "services"
PACKAGE = "billing_cli.services"


def private_imports(source: str, *, module: str) -> list[str]:
    """``module.name`` for each private name ``source`` (the text of ``module``) imports from a
    service module, relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = module.split(".")[: -node.level]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        if target != PACKAGE and not target.startswith(PACKAGE + "."):
            continue
        found += [
            f"{target}.{alias.name}"
            for alias in node.names
            if alias.name.startswith("_") and not alias.name.startswith("__")
        ]
    return found


def test_no_service_module_imports_a_private_name_from_another() -> None:
    modules = sorted(SERVICES.rglob("*.py"))
    assert len(modules) > 10, f"found too few service modules under {SERVICES}"
    offenders = {
        str(path.relative_to(SERVICES)): names
        for path in modules
        if (names := private_imports(path.read_text(), module=_module_name(path)))
    }
    assert offenders == {}, "give these helpers public names in a shared module"


def _module_name(path: Path) -> str:
    """``.../services/payments/charges.py`` -> ``billing_cli.services.payments.charges``; a
    package's ``__init__.py`` is the package itself."""
    parts = path.relative_to(SERVICES).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def test_the_guard_sees_absolute_and_relative_private_imports() -> None:
    source = (
        "from billing_cli.services.subscriptions.lifecycle import _live, apply_subscription\n"
        "from .journal import _reuse\n"
        "from . import _private_module\n"
        "from billing_cli.services.webhooks.policy import __doc__\n"
        "from billing_cli.gateway import _not_a_service\n"
    )
    assert private_imports(source, module="billing_cli.services.intents") == [
        "billing_cli.services.subscriptions.lifecycle._live",
        "billing_cli.services.journal._reuse",
        "billing_cli.services._private_module",
    ]
    nested = private_imports(source, module="billing_cli.services.subscriptions.upcoming")
    assert nested[1:] == [
        "billing_cli.services.subscriptions.journal._reuse",
        "billing_cli.services.subscriptions._private_module",
    ]
