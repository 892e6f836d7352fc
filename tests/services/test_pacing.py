"""The token bucket that keeps a bulk command under Stripe's request rate."""

from __future__ import annotations

import pytest

from billing_cli.services.pacing import Pacer


def test_the_pacer_spaces_requests_at_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(10, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.spend()
    assert now[0] == pytest.approx(0.4)  # the first is free, then one every 0.1 s
    pacer.spend(3)  # a list that read three pages
    pacer.spend()
    assert now[0] == pytest.approx(0.4 + 0.1 + 0.3)
    assert pacer.spent == 9
