"""``plans sync`` at scale: 200 plans against a local sandbox, synced twice.

Shows that the sync reads Stripe with paged list calls (not one retrieve per plan) and that a
second run makes no writes. HTTP requests are counted at the ``requests`` layer (a counting
``requests.Session`` handed to the gateway), split into reads (GET) and writes (POST/DELETE).
Usage: ``python bench/sync.py [--plans 200]``. Prints figures only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from billing_cli.config import Settings
from billing_cli.gateway import make_gateway
from billing_cli.models import Invocation
from billing_cli.repository import Database, migrations
from billing_cli.services.catalog import plans
from billing_cli.services.catalog.plan_sync import sync_plans
from stripe_sandbox import Sandbox


class CountingSession(requests.Session):
    """A ``requests.Session`` that counts requests by method before sending them on."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: Counter[str] = Counter()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        name = method.decode() if isinstance(method, bytes) else method
        self.methods[name.upper()] += 1
        return super().request(method, url, *args, **kwargs)


def _add_plans(db: Database, count: int) -> None:
    invocation = Invocation(operator="bench", command="bench plans add")
    for n in range(count):
        plans.add_plan(
            db,
            invocation=invocation,
            slug=f"plan-{n:03d}",
            name=f"Plan {n:03d}",
            amount=f"{10 + n}.00",
            currency="usd",
            interval="year" if n % 4 == 0 else "month",
        )


def _run(db: Database, settings: Settings, label: str) -> int:
    """One sync; prints its figures and returns the writes seen at the HTTP layer."""
    session = CountingSession()
    gateway = make_gateway(settings, session=session)
    invocation = Invocation(operator="bench", command="bench plans sync")
    started = time.perf_counter()
    report = sync_plans(db, gateway, invocation=invocation)
    elapsed = time.perf_counter() - started
    reads = session.methods["GET"]
    writes = session.methods["POST"] + session.methods["DELETE"]
    counts = ", ".join(f"{n} {action}" for action, n in report.counts().items() if n)
    print(
        f"{label:<11} requests {reads + writes:4d} (reads {reads:3d}, writes {writes:3d})  "
        f"wall {elapsed:6.2f} s  [{counts}]"
    )
    return writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=200)
    count = parser.parse_args().plans
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as sandbox:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrations.upgrade(db)
        settings = Settings(
            stripe_secret_key=sandbox.secret_key,
            stripe_api_base=sandbox.api_base,
            stripe_max_network_retries=0,
        )
        _add_plans(db, count)
        print(f"plans       {count}")
        _run(db, settings, "first sync")
        second_writes = _run(db, settings, "second sync")
        print(f"second sync writes: {second_writes} (must be 0)")
        db.dispose()


if __name__ == "__main__":
    main()
