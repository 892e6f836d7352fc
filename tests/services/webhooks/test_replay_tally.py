"""The replay summary keeps details in bounded memory, counting the parked outcomes a link
carries."""

from __future__ import annotations

import pytest

from billing_cli.services.webhooks import replay
from billing_cli.services.webhooks.engine import EventOutcome


def _link(n: int, parked: int) -> EventOutcome:
    inner = tuple(EventOutcome(f"evt_p{n}_{k}", "invoice.paid", "processed") for k in range(parked))
    return EventOutcome(f"evt_link{n}", "customer.subscription.created", "processed", "", (), inner)


def test_parked_outcomes_count_against_the_details_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "DETAILS_KEPT", 25)
    tally = replay._Tally(None, None)
    tally.add([_link(n, parked=10) for n in range(5)])
    summary = tally.summary(dry_run=False, source="file", apply_seconds=1.0)
    # 11 + 11 = 22 < 25 kept, the third brings 33; the last two are counted, not kept
    assert [o.event_id for o in summary.outcomes] == ["evt_link0", "evt_link1", "evt_link2"]
    assert (summary.omitted, summary.counts["processed"]) == (2, 5)
