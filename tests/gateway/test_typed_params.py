"""The gateway builds Stripe parameters as stripe-python's TypedDicts, so mypy (which CI runs in
strict mode over the gateway) refuses a misspelled parameter. stripe-python types enum values as
``Literal[...] | str`` (so new values never break old clients), which lets any string through;
the gateway's own signatures narrow them (``ProrationBehavior`` is a plain ``Literal``), so a
wrong value is refused where services call the gateway. This test proves both checks bite: the
same code, once right and once wrong, through mypy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
from stripe.params import SubscriptionCreateParams

params: SubscriptionCreateParams = {
    "customer": "cus_1",
    "items": [{"price": "price_1"}],
    "trial_period_days": 14,
    "proration_behavior": "create_prorations",
}
"""

MISSPELLED = GOOD.replace('"trial_period_days"', '"trial_period_dayz"')

GATEWAY_CALL = """
from billing_cli.gateway import Gateway


def move(gateway: Gateway) -> None:
    gateway.change_subscription_price(
        "sub_1", item_id="si_1", price_id="price_2",
        proration_behavior="create_prorations", idempotency_key="k",
    )
"""
BAD_ENUM = GATEWAY_CALL.replace('"create_prorations"', '"create_proration"')


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "params_check.py"
    module.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(module)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},  # the editable install's hook is not mypy's
    )


@pytest.mark.parametrize(
    ("source", "complaint"),
    [(MISSPELLED, "trial_period_dayz"), (BAD_ENUM, "create_proration")],
    ids=["misspelled-parameter", "wrong-enum-value"],
)
def test_mypy_refuses_wrong_parameters(tmp_path: Path, source: str, complaint: str) -> None:
    good = GATEWAY_CALL if "Gateway" in source else GOOD
    assert mypy(tmp_path, good).returncode == 0
    checked = mypy(tmp_path, source)
    assert checked.returncode == 1
    assert complaint in checked.stdout
