"""Benchmark: replay 10,000 realistic webhook events through the engine, on SQLite and PostgreSQL.

Generates a few hundred tenants' lifecycles (tests/services/webhooks/lifecycles.py: trials,
failed payments with rising attempt counts, recoveries, plan changes, cancellations, deletions,
both API shapes, and a new subscription after the previous one for the same tenant) into a
JSON-lines file, replays it oldest first through ``WebhookEngine`` as ``billing webhooks replay``
runs it (``engine.for_replay()``: outcomes carry their before/after changes; one transaction per
event, as the endpoint commits), then once more as the endpoint runs it (no changes collected),
and measures in the same run, with the same driver and the same commit policy (one transaction
per row, synchronous commits), bare inserts of the same 10,000 ledger rows through the engine's
own claim statement: the floor any at-most-once ledger pays. Prints events/s, inserts/s and
their ratio. Never asserts.

SQLite runs on a temporary file in WAL mode with ``synchronous=NORMAL`` (both runs): the
setting a SQLite deployment serving webhooks would use; with the default rollback journal every
commit waits for an fsync and both rates drop to the disk's fsync rate. PostgreSQL runs in a
throwaway schema that is dropped afterwards.

    .venv/bin/python bench/replay.py [--events 10000] [--tenants 300]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1/billing_dev] [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billing_cli.models import SubscriptionPlan, Tenant, TenantSubscription, utcnow  # noqa: E402
from billing_cli.repository import Database, migrations  # noqa: E402
from billing_cli.repository import ledger as ledger_repo  # noqa: E402
from billing_cli.services.webhooks import WebhookEngine  # noqa: E402
from billing_cli.services.webhooks.payloads import parse_event  # noqa: E402
from tests.services.webhooks.lifecycles import lifecycle, random_plan  # noqa: E402

PRICES = ("price_bench_basic", "price_bench_pro")
START = 1_767_225_600


def generate(count: int, tenants: int, seed: int) -> list[dict[str, Any]]:
    """``count`` events from lifecycles of ``tenants`` tenants, oldest first."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    number = 0
    while len(events) < count:
        slug = f"tenant-{number % tenants:04d}"
        generation = number // tenants
        events += lifecycle(
            random_plan(rng),
            slug=slug,
            customer_id=f"cus_bench{number % tenants:04d}",
            subscription_id=f"sub_bench{number:05d}",
            prices=PRICES,
            start=START + generation * 200 * 86_400 + rng.randrange(30 * 86_400),
            steps=[rng.randrange(600, 20 * 86_400) for _ in range(4)],
            shapes=[rng.choice(("current", "legacy")) for _ in range(3)],
            id_prefix=f"{number:05d}_",
        )
        number += 1
    events = events[:count]
    events.sort(key=lambda e: e["created"])
    return events


def seed(db: Database, tenants: int) -> None:
    """Plans, tenants, and for half of them the row the subscribe command would have written."""
    with db.transaction() as session:
        for slug, price in zip(("basic", "pro"), PRICES, strict=True):
            session.add(
                SubscriptionPlan(
                    slug=slug,
                    name=slug,
                    amount=1000,
                    currency="usd",
                    interval="month",
                    stripe_price_id=price,
                )
            )
        for n in range(tenants):
            tenant = Tenant(slug=f"tenant-{n:04d}", name=f"T{n}", email=f"t{n}@bench.test")
            session.add(tenant)
            session.flush()
            if n % 2 == 0:
                assert tenant.id is not None
                row = TenantSubscription(
                    tenant_id=tenant.id, stripe_customer_id=f"cus_bench{n:04d}"
                )
                session.add(row)


def _wal(db: Database) -> None:
    @sa.event.listens_for(db.engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@contextmanager
def sqlite_database(directory: Path, name: str) -> Iterator[Database]:
    db = Database(f"sqlite:///{directory / name}")
    _wal(db)
    migrations.upgrade(db)
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def postgres_database(base_url: str) -> Iterator[Database]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    db = Database(url.render_as_string(hide_password=False))
    try:
        migrations.upgrade(db)
        yield db
    finally:
        db.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_engine(
    db: Database, events: list[dict[str, Any]], tenants: int, *, replay: bool = True
) -> tuple[float, Counter[str]]:
    seed(db, tenants)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    if replay:
        engine = engine.for_replay()
    statuses: Counter[str] = Counter()
    started = time.perf_counter()
    for event in events:
        statuses[engine.process(event, source="file").status] += 1
    return time.perf_counter() - started, statuses


def run_bare(db: Database, events: list[dict[str, Any]]) -> float:
    """The same ledger rows, one transaction each, through the engine's own insert statement."""
    started = time.perf_counter()
    for event in events:
        parsed = parse_event(event)
        now = utcnow()
        values = {
            "stripe_event_id": parsed.id,
            "type": parsed.type,
            "created": parsed.created,
            "api_version": parsed.api_version,
            "livemode": parsed.livemode,
            "source": "file",
            "status": "processed",
            "attempts": 1,
            "error": None,
            "received_at": now,
            "processed_at": now,
            "payload": parsed.payload,
        }
        with db.transaction() as session:
            ledger_repo.claim(session=session, values=values)
    return time.perf_counter() - started


def report(
    label: str,
    count: int,
    replay_s: float,
    endpoint_s: float,
    bare_s: float,
    statuses: Counter[str],
) -> None:
    replay_rate, endpoint_rate, bare_rate = count / replay_s, count / endpoint_s, count / bare_s
    print(f"{label}:")
    print(f"  engine (replay)    {replay_rate:8.0f} events/s  ({replay_s:.2f} s for {count})")
    print(f"  engine (endpoint)  {endpoint_rate:8.0f} events/s  ({endpoint_s:.2f} s for {count})")
    print(f"  bare insert        {bare_rate:8.0f} rows/s    ({bare_s:.2f} s for {count})")
    print(
        f"  ratio              {replay_rate / bare_rate:8.2f} replay, "
        f"{endpoint_rate / bare_rate:.2f} endpoint   (target >= 0.5; engine target >= 1000/s)"
    )
    print(f"  outcomes           {dict(sorted(statuses.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1/billing_dev"
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="billing-bench-") as tmp:
        directory = Path(tmp)
        path = directory / "events.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for event in generate(args.events, args.tenants, args.seed):
                handle.write(json.dumps(event) + "\n")
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        size = path.stat().st_size / 1e6
        print(f"{len(events)} events of {args.tenants} tenants in {path.name} ({size:.1f} MB)")

        with sqlite_database(directory, "replay.db") as db:
            replay_s, statuses = run_engine(db, events, args.tenants)
        with sqlite_database(directory, "endpoint.db") as db:
            endpoint_s, _ = run_engine(db, events, args.tenants, replay=False)
        with sqlite_database(directory, "bare.db") as db:
            bare_s = run_bare(db, events)
        label = "SQLite (file, WAL, synchronous=NORMAL)"
        report(label, len(events), replay_s, endpoint_s, bare_s, statuses)

        if not args.no_postgres:
            with postgres_database(args.postgres_url) as db:
                replay_s, statuses = run_engine(db, events, args.tenants)
            with postgres_database(args.postgres_url) as db:
                endpoint_s, _ = run_engine(db, events, args.tenants, replay=False)
            with postgres_database(args.postgres_url) as db:
                bare_s = run_bare(db, events)
            label = "PostgreSQL (throwaway schema, synchronous_commit=on)"
            report(label, len(events), replay_s, endpoint_s, bare_s, statuses)


if __name__ == "__main__":
    main()
