"""Idempotency keys are deterministic, distinct per target, and safe to send."""

from __future__ import annotations

import re

import pytest

from billing_cli.gateway import idempotency_key


def test_same_inputs_same_key() -> None:
    assert idempotency_key("customer.create", "acme") == idempotency_key("customer.create", "acme")


def test_format_and_length() -> None:
    key = idempotency_key("subscription.change_price", "sub_123", "price_456")
    assert re.fullmatch(r"billing:subscription\.change_price:[0-9a-f]{32}", key)
    assert len(key) <= 255


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("customer.create", "acme"), ("customer.create", "globex")),
        (("customer.create", "acme"), ("customer.delete", "acme")),
        (("payment.create", "cus_1", 500), ("payment.create", "cus_1", 501)),
        (("x", "a:b"), ("x", "a", "b")),
        (("x", 1), ("x", "1")),
    ],
)
def test_different_target_different_key(a: tuple[str, str | int], b: tuple[str, str | int]) -> None:
    assert idempotency_key(a[0], *a[1:]) != idempotency_key(b[0], *b[1:])


def test_longest_operation_fits_stripe_limit() -> None:
    assert len(idempotency_key("o" * 100, "t" * 10_000)) <= 255


@pytest.mark.parametrize("operation", ["", "Has Space", "o" * 101, "a:b"])
def test_bad_operation_rejected(operation: str) -> None:
    with pytest.raises(ValueError):
        idempotency_key(operation, "target")


def test_needs_a_target() -> None:
    with pytest.raises(ValueError):
        idempotency_key("customer.create")
    with pytest.raises(TypeError):
        idempotency_key("customer.create", True)
