"""The README's main job: ``billing demo`` runs the whole tour, offline, and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
        "$ billing plans sync",
        "made 0 Stripe writes",  # the second sync
        "subscribed acme to starter",
        "Proration preview (from Stripe)",
        "charged globex 12.50 USD",
        "resumed acme's subscription",
        "extended acme's trial to",  # the adjustments chapter
        "discount: -3.80 USD (SPRING20); amount due: 15.20 USD",
        "paused collection of acme's subscription",
        "resumed collection of acme's subscription",
        "billing: 3 failed payment attempts",  # suspended by the third failed attempt
        "webhook invoice.paid",  # ... and reactivated by the payment, via the endpoint
        "would be skipped (already processed)",  # replay from the Events API
        "older than the payment state already applied",
    ):
        assert expected in out, expected
    assert "Error: card declined: generic_decline" in demo.stderr
    assert list(tmp_path.iterdir()) == []  # the throwaway database lives elsewhere, and is gone
