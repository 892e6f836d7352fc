"""The demo's price-migration chapter, run step by step through the CLI against the sandbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from billing_cli.cli.demo_migrate import run_price_migration
from billing_cli.repository import Database
from stripe_sandbox import Sandbox

from .conftest import Billing

pytestmark = pytest.mark.sandbox


@dataclass(frozen=True)
class Step:
    args: tuple[str, ...]
    note: str = ""
    expect: int = 0


def test_the_chapter_moves_its_tenants_after_a_dry_run(
    billing: Billing, db_env: Database, sandbox: Sandbox
) -> None:
    printed: list[str] = []

    def run_steps(steps: Sequence[Step]) -> None:
        for step in steps:
            result = billing(*step.args)
            assert result.exit_code == step.expect, (step.args, result.stderr)
            printed.append(result.stdout)

    run_price_migration(run_steps, Step)
    text = "\n".join(printed)
    assert "scale (older price)" in text
    assert "would move 2, skipped 0, failed 0" in text
    assert "60.00 USD -> 72.00 USD" in text
    assert "moved 2, skipped 0, failed 0" in text
    assert "moved 0, skipped 0, failed 0" in text
    assert billing.json("subs", "show", "stark")["stripe"]["billed"] == "36.00 USD"
