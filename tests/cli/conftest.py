"""CLI test helper: run ``billing`` in-process with Typer's runner, stdout and stderr apart."""

from __future__ import annotations

import json
from typing import Any, Protocol

import pytest
from typer.testing import CliRunner

from billing_cli.cli.main import app


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
