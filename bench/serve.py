"""Signed webhook deliveries to ``billing webhooks serve`` on loopback, from a concurrent client.

For each backend (SQLite in a temp file; PostgreSQL in a throwaway schema unless ``--no-postgres``)
it migrates a fresh database, adds the tenants and the plan the events name, starts the real
command as a subprocess on 127.0.0.1, and sends distinct, realistic, signed events (each tenant's
lifecycle: subscription created, invoice paid, subscription updated, two failed payments, paid
again, upcoming invoice, an unhandled type) from a thread pool, one ``requests.Session`` per
thread, in two phases:

- flat out (closed loop): each thread sends its next delivery when the last is answered; this
  is the most the server takes, and its latency is mostly queueing (Little's law: 16 in flight
  at 300/s is 53 ms each);
- paced (open loop) at ``--rate``: delivery *i* is due at ``i / rate`` seconds, as Stripe's
  deliveries arrive whatever our answers; latency counts from when it was due.

It prints deliveries/s, p50/p99 latency, the answers, and ledger rows vs deliveries sent.
Targets (issue 4): >= 300 deliveries/s and p99 <= 50 ms on PostgreSQL, nothing lost.

``--observability`` measures instead what the Prometheus metrics and the delivery log cost
(issue 10: at most 10% of throughput at 300 deliveries/s). It runs the same two phases against
the real command twice per round: as shipped (the delivery log written, and ``/metrics``
scraped once a second, more often than Prometheus would), and with both stubbed out by this
script (a logger that drops records, metrics that count nothing). It compares the flat-out
throughput, and at 300/s the latency and the server's CPU time per delivery (from
``/proc/<pid>/stat``), over ``--rounds`` interleaved rounds.

``--metrics-cost`` measures only what the endpoint's metrics cost one delivery (the in-flight
gauge up and down, a counter, the histogram) and one scrape, in this process: with one process's
in-memory values, and in the multiprocess mode of ``webhooks serve --workers N`` (values in
memory-mapped files, a scrape reading every worker's file).

Usage: ``python bench/serve.py [--deliveries 3000] [--concurrency 16] [--workers 1]
[--rate 300] [--paced-seconds 5] [--postgres-url URL | --no-postgres] [--no-sqlite]
[--observability [--rounds 2]] [--metrics-cost]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.events / tests.signing build and sign the payloads
    sys.path.insert(0, str(ROOT))

SECRET = "whsec_bench_0123456789abcdefghijklmnop"
PRICE_ID = "price_bench_basic"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1/billing_dev"
SERVE_SCRIPT = """
from billing_cli.cli.main import app
app(prog_name="billing")
"""
# The baseline of --observability: the same command with the delivery log and the metrics
# stubbed out (bench only; the product has no switch for them).
BASELINE_SCRIPT = """
import logging
import billing_cli.web.app as web_app
import billing_cli.web.delivery_log as delivery_log

class _Nothing:
    def labels(self, **_labels): return self
    def inc(self, *_a): pass
    def dec(self, *_a): pass
    def observe(self, *_a): pass

class _NoMetrics:
    deliveries = rejections = processing = in_flight = _Nothing()
    def exposition(self): return b"", "text/plain"

web_app.EndpointMetrics = _NoMetrics
delivery_log.install = lambda *_a, **_k: None
logging.getLogger("billing.deliveries").disabled = True
from billing_cli.cli.main import app
app(prog_name="billing")
"""
EVENTS_PER_TENANT = 8


@dataclass
class Phase:
    """One sending run: what each delivery was answered and how long it took."""

    concurrency: int
    rate: float | None
    latencies: list[float] = field(default_factory=list)
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wall: float = 0.0


# -- databases -------------------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="billing-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A throwaway schema in ``base_url``'s database, dropped afterwards."""
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


def prepare(url: str, tenants: int) -> None:
    """Migrate, then add one plan and ``tenants`` tenants, as an operator would beforehand."""
    from billing_cli.models import Invocation, SubscriptionPlan, utcnow
    from billing_cli.repository import Database, migrations
    from billing_cli.repository import plans as plans_repo
    from billing_cli.services.tenants import rules as tenant_service

    db = Database(url)
    try:
        migrations.upgrade(db)
        with db.transaction() as session:
            plans_repo.add(
                session=session,
                plan=SubscriptionPlan(
                    slug="basic",
                    name="Basic",
                    amount=2000,
                    currency="usd",
                    interval="month",
                    stripe_product_id="prod_bench_basic",
                    stripe_price_id=PRICE_ID,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                ),
            )
        invocation = Invocation(operator="bench", command="bench serve")
        for n in range(tenants):
            slug = tenant_slug(n)
            tenant_service.add_tenant(
                db, invocation=invocation, slug=slug, name=slug, email=f"{slug}@bench.test"
            )
    finally:
        db.dispose()


def ledger_rows(url: str) -> tuple[dict[str, int], list[str]]:
    """Ledger rows by status, and the errors of failed ones."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT status, count(*) FROM webhook_event GROUP BY status")
            ).all()
            errors = connection.execute(
                sa.text("SELECT stripe_event_id, error FROM webhook_event WHERE status = 'failed'")
            ).all()
    finally:
        engine.dispose()
    return {str(s): int(n) for s, n in rows}, [f"{i}: {e}" for i, e in errors]


# -- events ----------------------------------------------------------------------------------


def tenant_slug(n: int) -> str:
    return f"bench-{n:05d}"


def lifecycle(n: int, run: str) -> list[dict[str, Any]]:
    """One tenant's events, in the order Stripe would create them."""
    from tests import events

    sub, cus = f"sub_{run}_{n:05d}", f"cus_{run}_{n:05d}"
    t0 = int(time.time()) - 3_600 + n
    common: dict[str, Any] = {"subscription_id": sub, "customer_id": cus, "price_id": PRICE_ID}
    tenant = tenant_slug(n)

    def sub_event(kind: str, at: int, status: str) -> dict[str, Any]:
        return events.subscription_event(
            f"customer.subscription.{kind}",
            created=at,
            status=status,
            period_start=t0,
            tenant=tenant,
            **common,
        )

    def invoice(kind: str, at: int, attempts: int, paid: bool) -> dict[str, Any]:
        return events.invoice_event(
            f"invoice.{kind}",
            created=at,
            subscription_id=sub,
            customer_id=cus,
            attempt_count=attempts,
            paid=paid,
        )

    return [
        sub_event("created", t0, "active"),
        invoice("payment_succeeded", t0 + 1, 1, True),
        sub_event("updated", t0 + 2, "active"),
        invoice("payment_failed", t0 + 3, 1, False),
        invoice("payment_failed", t0 + 4, 2, False),
        invoice("paid", t0 + 5, 3, True),
        invoice("upcoming", t0 + 6, 0, False),
        events.event("charge.succeeded", events.fixture("charge"), created=t0 + 7),
    ]


def build_bodies(count: int, *, first_tenant: int = 0) -> list[bytes]:
    """``count`` distinct events of tenants ``first_tenant``, ``first_tenant + 1``, ...: their
    lifecycles interleaved (step by step, tenant by tenant), serialised as Stripe sends them."""
    import json

    tenants = range(first_tenant, first_tenant + tenants_for(count))
    run = uuid.uuid4().hex[:6]
    per_tenant = [lifecycle(n, run) for n in tenants]
    ordered = [events[step] for step in range(EVENTS_PER_TENANT) for events in per_tenant]
    return [json.dumps(e, indent=2).encode() for e in ordered[:count]]


def tenants_for(count: int) -> int:
    return -(-count // EVENTS_PER_TENANT)


# -- the server and the client ---------------------------------------------------------------


@contextmanager
def serve(
    url: str, workers: int, script: str = SERVE_SCRIPT
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "BILLING_DATABASE_URL": url,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "PYTHONPATH": str(ROOT),
    }
    log: IO[bytes]
    with tempfile.NamedTemporaryFile(prefix="billing-bench-serve-", suffix=".log") as log:
        command = [sys.executable, "-c", script, "webhooks", "serve", "--port", "0"]
        proc = subprocess.Popen(
            [*command, "--workers", str(workers)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        try:
            yield _wait_for_address(proc, Path(log.name)), proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            tail = Path(log.name).read_text(errors="replace").strip().splitlines()[-5:]
            if proc.returncode != 0:
                print(f"  serve exited {proc.returncode}: {' | '.join(tail)}")


def _wait_for_address(proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("listening on "):
                return line.split()[2]
        if proc.poll() is not None:
            raise SystemExit(f"serve exited {proc.returncode}: {log.read_text(errors='replace')}")
        time.sleep(0.05)
    raise SystemExit("serve did not start within 30 s")


def send(
    endpoint: str,
    bodies: list[bytes],
    *,
    concurrency: int,
    max_seconds: float,
    rate: float | None = None,
) -> Phase:
    """Send ``bodies`` from ``concurrency`` threads, one ``requests.Session`` each.

    Without ``rate`` every thread sends as fast as answers come (closed loop: the most the
    server can take). With ``rate`` delivery *i* is due at ``start + i / rate`` whatever the
    answers (open loop, as Stripe's deliveries arrive), and its latency is counted from when it
    was due, so a server falling behind shows as latency instead of a slower client.
    """
    from tests.signing import sign

    phase = Phase(concurrency=concurrency, rate=rate)
    local = threading.local()
    start = time.perf_counter() + 0.05
    deadline = start + max_seconds

    def one(numbered: tuple[int, bytes]) -> None:
        n, body = numbered
        due = start + n / rate if rate else time.perf_counter()
        if due > deadline:
            return
        if rate and (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body, SECRET)}
        try:
            response = session.post(endpoint, data=body, headers=headers, timeout=30)
            answer = f"{response.status_code} {response.json().get('status', '?')}"
        except (requests.RequestException, ValueError) as error:
            answer = f"error {type(error).__name__}"
        elapsed = time.perf_counter() - due
        with phase.lock:
            phase.latencies.append(elapsed)
            phase.answers[answer] += 1

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in pool.map(one, enumerate(bodies)):
            pass
    phase.wall = time.perf_counter() - start
    return phase


def report(title: str, phase: Phase) -> None:
    sent = len(phase.latencies)
    latencies = sorted(phase.latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(sent - 1, int(sent * 0.99))] * 1000
    print(f"  {title}")
    print(f"    deliveries sent     {sent} in {phase.wall:.2f} s")
    print(f"    deliveries/s        {sent / phase.wall:.0f}  (target >= 300)")
    print(f"    latency p50 / p99   {p50:.1f} / {p99:.1f} ms  (target p99 <= 50 on PostgreSQL)")
    print(f"    answers             {dict(sorted(phase.answers.items()))}")


def run_backend(name: str, url: str, args: argparse.Namespace) -> None:
    print(
        f"== {name}: `webhooks serve --workers {args.workers}`, {args.concurrency} client threads"
    )
    paced = int(args.rate * args.paced_seconds)
    # Each phase gets its own tenants and the same mix of events.
    flat_bodies = build_bodies(args.deliveries)
    paced_bodies = build_bodies(paced, first_tenant=tenants_for(args.deliveries))
    prepare(url, tenants_for(args.deliveries) + tenants_for(paced))
    with serve(url, args.workers) as (endpoint, proc):
        requests.get(endpoint.split("/webhooks")[0] + "/healthz", timeout=10)
        flat_out = send(
            endpoint,
            flat_bodies,
            concurrency=args.concurrency,
            max_seconds=args.max_seconds,
        )
        steady = send(
            endpoint,
            paced_bodies,
            concurrency=args.concurrency,
            max_seconds=args.max_seconds,
            rate=args.rate,
        )
        proc.terminate()
        exit_code = proc.wait(timeout=15)
    report("flat out (closed loop: each thread sends when answered)", flat_out)
    report(f"paced at {args.rate:.0f}/s (open loop, latency from when due)", steady)
    sent = len(flat_out.latencies) + len(steady.latencies)
    ok = sum(
        n for p in (flat_out, steady) for answer, n in p.answers.items() if answer[:3] == "200"
    )
    ledger, errors = ledger_rows(url)
    rows = sum(ledger.values())
    verdict = "nothing lost" if rows == sent and ok == sent else "CHECK: lost or refused"
    print(f"  ledger rows           {rows} of {sent} sent {dict(sorted(ledger.items()))}")
    print(f"  lost                  {sent - rows}  ({verdict})")
    for error in errors:
        print(f"  failed event          {error}")
    print(f"  serve exit on TERM    {exit_code}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def scraping(base: str, every: float) -> Iterator[list[int]]:
    """GET /metrics every ``every`` seconds in a thread, as Prometheus would; yields the sizes."""
    sizes: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        with requests.Session() as session:
            while not stop.wait(every):
                sizes.append(len(session.get(base + "/metrics", timeout=10).content))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield sizes
    finally:
        stop.set()
        thread.join(timeout=15)


@dataclass
class Variant:
    name: str
    flat_rates: list[float] = field(default_factory=list)
    paced_p50: list[float] = field(default_factory=list)
    paced_p99: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def observability_backend(name: str, url: str, args: argparse.Namespace) -> None:
    print(f"== {name}: cost of /metrics and the delivery log, {args.rounds} round(s)")
    paced = int(args.rate * args.paced_seconds)
    per_run = tenants_for(args.deliveries) + tenants_for(paced)
    prepare(url, per_run * 2 * args.rounds)
    variants = {"as shipped": Variant("as shipped"), "stubbed out": Variant("stubbed out")}
    first = 0
    for _ in range(args.rounds):
        for variant in variants.values():
            shipped = variant.name == "as shipped"
            flat_bodies = build_bodies(args.deliveries, first_tenant=first)
            first += tenants_for(args.deliveries)
            paced_bodies = build_bodies(paced, first_tenant=first)
            first += tenants_for(paced)
            script = SERVE_SCRIPT if shipped else BASELINE_SCRIPT
            with serve(url, 1, script) as (endpoint, proc):
                base = endpoint.split("/webhooks")[0]
                requests.get(base + "/healthz", timeout=10)
                scrape: contextlib.AbstractContextManager[list[int]] = (
                    scraping(base, 1.0) if shipped else contextlib.nullcontext([])
                )
                with scrape:
                    flat = send(
                        endpoint,
                        flat_bodies,
                        concurrency=args.concurrency,
                        max_seconds=args.max_seconds,
                    )
                    cpu_before = cpu_seconds(proc.pid)
                    steady = send(
                        endpoint,
                        paced_bodies,
                        concurrency=args.concurrency,
                        max_seconds=args.max_seconds,
                        rate=args.rate,
                    )
                    cpu_used = cpu_seconds(proc.pid) - cpu_before
            variant.flat_rates.append(len(flat.latencies) / flat.wall)
            ordered = sorted(steady.latencies)
            variant.paced_p50.append(statistics.median(ordered) * 1000)
            variant.paced_p99.append(
                ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
            )
            variant.cpu_ms.append(cpu_used / len(steady.latencies) * 1000)
    for variant in variants.values():
        print(
            f"  {variant.name:<12} flat out {statistics.median(variant.flat_rates):5.0f}/s   "
            f"at {args.rate:.0f}/s: p50 {statistics.median(variant.paced_p50):5.1f} ms, "
            f"p99 {statistics.median(variant.paced_p99):5.1f} ms, "
            f"server CPU {statistics.median(variant.cpu_ms):.2f} ms/delivery"
        )
    full, bare = variants["as shipped"], variants["stubbed out"]
    cost = 1 - statistics.median(full.flat_rates) / statistics.median(bare.flat_rates)
    cpu_cost = statistics.median(full.cpu_ms) / statistics.median(bare.cpu_ms) - 1
    print(
        f"  cost         {cost:.1%} of flat-out throughput, {cpu_cost:.1%} more server CPU per "
        f"delivery at {args.rate:.0f}/s  (target <= 10%)"
    )


_METRICS_PROBE = """
import time
from billing_cli.web.metrics import EndpointMetrics
metrics, n = EndpointMetrics(), 50_000
started = time.perf_counter()
for _ in range(n):
    metrics.in_flight.inc()
    metrics.deliveries.labels(type="invoice.paid", outcome="processed").inc()
    metrics.processing.observe(0.003)
    metrics.in_flight.dec()
per_delivery = (time.perf_counter() - started) / n * 1e6
started = time.perf_counter()
for _ in range(50):
    metrics.exposition()
per_scrape = (time.perf_counter() - started) / 50 * 1e3
print(f"{per_delivery:.1f} us a delivery, {per_scrape:.2f} ms a scrape")
"""


def metrics_cost() -> None:
    """The metrics' own cost, one process and multiprocess mode, each in a fresh interpreter
    (prometheus_client picks its value store when it is first imported)."""
    for mode in ("one process", "multiprocess (--workers N)"):
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
            if mode.startswith("multi"):
                env["PROMETHEUS_MULTIPROC_DIR"] = directory
            env["PYTHONPATH"] = str(ROOT)
            probe = subprocess.run(
                [sys.executable, "-c", _METRICS_PROBE],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
        print(f"  metrics, {mode:27} {probe.stdout.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=1, help="`webhooks serve --workers`.")
    parser.add_argument("--rate", type=float, default=300.0, help="Paced phase: deliveries/s.")
    parser.add_argument("--paced-seconds", type=float, default=5.0, help="Paced phase length.")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only.")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only.")
    parser.add_argument(
        "--observability", action="store_true", help="Cost of /metrics and the delivery log."
    )
    parser.add_argument("--rounds", type=int, default=2, help="--observability rounds.")
    parser.add_argument(
        "--metrics-cost", action="store_true", help="Only the metrics' cost, both modes."
    )
    args = parser.parse_args()
    backend = observability_backend if args.observability else run_backend
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (client, server and database share them)")
    if args.metrics_cost:
        metrics_cost()
        return
    if not args.no_sqlite:
        with sqlite_database() as url:
            backend("SQLite", url, args)
    if not args.no_postgres:
        with postgres_database(args.postgres_url) as url:
            backend("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
