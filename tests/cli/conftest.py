"""CLI test helper: run ``billing`` in-process with Typer's runner, stdout and stderr apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pytest
from typer.testing import CliRunner

from billing_cli.cli.main import app
from tests.faults import FaultProxy, cli_behind_proxy

if TYPE_CHECKING:
    from stripe_sandbox import Sandbox


class Outcome(Protocol):
    exit_code: int
    stdout: str
    stderr: str


class Billing:
    """Calls the real CLI app; what a person at a terminal would type, minus the shell."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Outcome:
        return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def billing() -> Billing:
    return Billing()


@pytest.fixture
def proxy(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The CLI's Stripe traffic through a fault-injecting proxy (tests/faults.py), with short
    time limits so that an injected hang or error becomes an ambiguous outcome quickly."""
    with cli_behind_proxy(sandbox.api_base, monkeypatch) as running:
        yield running
