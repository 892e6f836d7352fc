"""``billing config`` prints no key whole, as the README says."""

from __future__ import annotations

import pytest

from .conftest import Billing


def test_config_masks_the_publishable_key_too(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "pk_test_51AbCdEfGhIjKlMnOp9z8y")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_51ZyXwVuTsRqPoNm1a2b")
    shown = billing("config")
    assert shown.exit_code == 0, shown.stderr
    assert "AbCdEfGhIjKlMnOp" not in shown.stdout and "pk_test_" in shown.stdout
    assert billing.json("config")["stripe_publishable_key"].endswith("9z8y")
