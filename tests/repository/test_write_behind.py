"""A replay batch's multi-row ledger claim (write_behind.claim_many) on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from billing_cli.models import utcnow
from billing_cli.repository import Database, write_behind
from billing_cli.repository import events as events_repo
from billing_cli.services.webhooks.applier import ledger_values
from billing_cli.services.webhooks.payloads import parse_event
from tests import events as ev


def _claim(event_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The ledger row a replay batch claims for an event carrying ``payload``'s fields."""
    event = {**ev.event("invoice.paid", {"id": "in_1", "object": "invoice"}), **payload}
    now = utcnow()
    parsed = parse_event({**event, "id": event_id})
    return {
        **ledger_values(parsed, source="file", status="processed", now=now),
        "processed_at": now,
    }


def test_claims_are_inserted_once_with_their_payloads_and_times(db: Database) -> None:
    claims = [_claim("evt_one", {"id": "evt_one", "n": 1}), _claim("evt_two", {"id": "evt_two"})]
    with db.transaction() as session:
        first = write_behind.claim_many(session=session, claims=claims)
    with db.transaction() as session:
        again = write_behind.claim_many(session=session, claims=claims)
    assert sorted(first) == ["evt_one", "evt_two"] and again == {}
    with db.read() as session:
        row = events_repo.get(session=session, event_id="evt_one")
        assert row is not None and row.processed_at is not None
        assert row.payload is not None and row.payload["n"] == 1
        assert abs((row.received_at - claims[0]["received_at"]).total_seconds()) < 1e-3


def test_a_payload_integer_beyond_64_bits_is_claimed_too(db: Database) -> None:
    """orjson encodes the PostgreSQL claim document but refuses such integers."""
    huge = 2**70
    with db.transaction() as session:
        found = write_behind.claim_many(session=session, claims=[_claim("evt_big", {"n": huge})])
    assert list(found) == ["evt_big"]
    with db.read() as session:
        row = events_repo.get(session=session, event_id="evt_big")
        assert row is not None and row.payload is not None and row.payload["n"] == huge
