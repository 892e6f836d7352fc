"""``billing stats --since 30d`` and ``billing check`` over 1,000,000 ledger rows and 100,000
audit entries, on SQLite and PostgreSQL.

Fills a fresh, migrated database (SQLite in a temp file; PostgreSQL in a throwaway schema) with
ledger rows spread over the last 30 days, so every row is inside the window (the worst case):
a realistic mix of event types and outcomes, a processing time per row, and a small payload
(about 200 bytes; real payloads are a few KB, which PostgreSQL keeps out of line and SQLite in
overflow pages that these queries do not read). Audit entries are 10% ``subs create``, 10%
``payments charge``, 5% suspensions, the rest other commands; plus tenants, subscriptions,
outbox rows and refusal counters. Then ``ANALYZE``, as autovacuum would have.

It times the real commands as subprocesses (what an operator waits for, Python start-up
included), and ``SELECT count(*)`` over the ledger in-process, each the median of ``--runs``.
Target: under 2 s for each command. Usage: ``python bench/stats.py [--rows 1000000]
[--audit 100000] [--runs 5] [--postgres-url URL | --no-postgres] [--no-sqlite]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1/billing_dev"
SCRIPT = "from billing_cli.cli.main import app; app(prog_name='billing')"
TYPES = (
    ("customer.subscription.updated", 50),
    ("invoice.payment_succeeded", 20),
    ("invoice.paid", 15),
    ("charge.succeeded", 10),
    ("invoice.payment_failed", 5),
)
STATUSES = (("processed", 899), ("ignored", 100), ("failed", 1))
COLUMNS = (
    "stripe_event_id",
    "type",
    "created",
    "api_version",
    "livemode",
    "source",
    "status",
    "attempts",
    "received_at",
    "processed_at",
    "payload",
    "processing_ms",
)


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="billing-bench-stats-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...], n: int) -> list[str]:
    names, weights = zip(*choices, strict=True)
    return rng.choices(names, weights=weights, k=n)


def ledger_rows(n: int, now: datetime, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    types = _weighted(rng, TYPES, n)
    statuses = _weighted(rng, STATUSES, n)
    window = 30 * 86_400 - 60
    for i in range(n):
        at = now - timedelta(seconds=window * (n - i) / n)
        payload = {
            "id": f"evt_bench_{i:08d}",
            "type": types[i],
            "data": {"object": {"id": f"obj_{i:08d}", "customer": f"cus_{i % 5000:05d}"}},
        }
        yield (
            f"evt_bench_{i:08d}",
            types[i],
            int(at.timestamp()),
            "2026-10-28.endive",
            False,
            "endpoint",
            statuses[i],
            1,
            at,
            at,
            json.dumps(payload),
            round(rng.lognormvariate(0.7, 0.6), 3),
        )


def audit_rows(n: int, now: datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(n):
        at = now - timedelta(seconds=(30 * 86_400 - 60) * (n - i) / n)
        kind = rng.random()
        after: dict[str, str] | None
        if kind < 0.10:
            status = rng.choice(("active", "active", "trialing", "incomplete"))
            command, outcome, after = "subs create", f"subscribed ({status})", {"status": status}
        elif kind < 0.20:
            ok = rng.random() < 0.9
            command = "payments charge"
            outcome = "charged 5.00 USD" if ok else "charge of 5.00 USD failed: declined"
            after = {"status": "succeeded"} if ok else None
        elif kind < 0.25:
            cause = rng.choice(("billing", "manual"))
            command, outcome, after = "tenants suspend", f"suspended ({cause})", None
        else:
            command, outcome, after = "tenants add", "added", None
        yield {
            "at": at,
            "operator": "bench",
            "command": command,
            "arguments": {},
            "target": f"tenant:t{i % 5000}",
            "tenant_slug": f"t{i % 5000}",
            "dry_run": False,
            "outcome": outcome,
            "after": after,
        }


def fill(url: str, *, rows: int, audit: int) -> None:
    from billing_cli.models import AuditEntry, Notification, Tenant, TenantSubscription, utcnow
    from billing_cli.repository import Database, migrations
    from billing_cli.services.observe import counters as observe

    now = utcnow()
    rng = random.Random(10)
    db = Database(url)
    migrations.upgrade(db)
    with db.transaction() as session:
        connection = session.connection()
        tenants = Tenant.metadata.tables["tenant"]
        connection.execute(
            tenants.insert(),
            [
                {"slug": f"t{i}", "name": f"T{i}", "email": f"t{i}@bench.test", "status": "active"}
                for i in range(5000)
            ],
        )
        connection.execute(
            TenantSubscription.metadata.tables["tenant_subscription"].insert(),
            [
                {"tenant_id": i + 1, "status": "active", "cancel_at_period_end": False}
                for i in range(5000)
            ],
        )
        connection.execute(
            Notification.metadata.tables["notification"].insert(),
            [
                {"tenant_id": 1 + i % 5000, "kind": "payment_failed", "created_at": now}
                for i in range(20_000)
            ],
        )
        table = AuditEntry.metadata.tables["audit_entry"]
        batch: list[dict[str, Any]] = []
        for row in audit_rows(audit, now, rng):
            batch.append(row)
            if len(batch) == 10_000:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
    counter = observe.RejectionCounter()
    for minute in range(0, 30 * 1440, 7):
        counter.note("bad_signature", at=now - timedelta(minutes=minute))
    counter.flush(db)
    if db.dialect == "postgresql":
        _copy_ledger(db, rows, now, rng)
    else:
        _insert_ledger(db, rows, now, rng)
    with db.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        connection.commit()
    db.dispose()


def _insert_ledger(db: Any, rows: int, now: datetime, rng: random.Random) -> None:
    from billing_cli.models import UTCDateTime

    marks = ", ".join("?" for _ in COLUMNS)
    statement = f"INSERT INTO webhook_event ({', '.join(COLUMNS)}) VALUES ({marks})"
    to_db = UTCDateTime().process_bind_param
    dialect = db.engine.dialect
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        batch = []
        for row in ledger_rows(rows, now, rng):
            values = list(row)
            values[8] = str(to_db(values[8], dialect))
            values[9] = values[8]
            batch.append(values)
            if len(batch) == 20_000:
                cursor.executemany(statement, batch)
                batch = []
        if batch:
            cursor.executemany(statement, batch)
        raw.commit()
    finally:
        raw.close()


def _copy_ledger(db: Any, rows: int, now: datetime, rng: random.Random) -> None:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY webhook_event ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in ledger_rows(rows, now, rng):
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def run_command(url: str, *args: str) -> tuple[float, int, float]:
    """Wall time, exit code and CPU time (user + system) of one run of the real command."""
    env = {**os.environ, "BILLING_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 3):
        raise SystemExit(f"billing {' '.join(args)} exited {done.returncode}: {done.stderr!r}")
    return elapsed, done.returncode, cpu


def count_rows(url: str) -> float:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            started = time.perf_counter()
            connection.execute(sa.text("SELECT count(*) FROM webhook_event")).scalar_one()
            return time.perf_counter() - started
    finally:
        engine.dispose()


def run_backend(name: str, url: str, args: argparse.Namespace) -> None:
    print(f"== {name}")
    started = time.perf_counter()
    fill(url, rows=args.rows, audit=args.audit)
    print(f"  filled {args.rows} ledger rows, {args.audit} audit entries in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    run_command(url, "stats", "--since", "30d", "--json")  # warm caches, as a second run would
    commands = {
        "billing stats --since 30d": ("stats", "--since", "30d"),
        "billing stats --since 30d --json": ("stats", "--since", "30d", "--json"),
        "billing check": ("check",),
        "billing --help (start-up only)": ("--help",),
    }
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    counts: list[float] = []
    codes = set()
    for _ in range(args.runs):
        for name, command in commands.items():
            elapsed, code, used = run_command(url, *command)
            wall[name].append(elapsed)
            cpu[name].append(used)
            if command == ("check",):
                codes.add(code)
        counts.append(count_rows(url))
    print(f"  {'median of ' + str(args.runs) + ' runs':<36} {'wall':>8} {'cpu':>8}")
    for name in commands:
        target = "  (target < 2 s)" if "--help" not in name and "json" not in name else ""
        print(
            f"  {name:<36} {statistics.median(wall[name]):7.2f}s "
            f"{statistics.median(cpu[name]):7.2f}s{target}"
        )
    print(f"  billing check exit codes: {sorted(codes)} (3: a rule fired on the bench data)")
    count = statistics.median(counts)
    print(f"  SELECT count(*) over the ledger    {count:7.3f}s (in-process)")
    stats_wall = statistics.median(wall["billing stats --since 30d --json"])
    startup = statistics.median(wall["billing --help (start-up only)"])
    print(
        f"  ratio stats --json / count(*)      {stats_wall / count:.1f} "
        f"({(stats_wall - startup) / count:.1f} without the start-up)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not args.no_sqlite:
        with sqlite_database() as url:
            run_backend("SQLite (file)", url, args)
    if not args.no_postgres:
        with postgres_database(args.postgres_url) as url:
            run_backend("PostgreSQL (throwaway schema)", url, args)


if __name__ == "__main__":
    main()
