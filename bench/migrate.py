"""``billing subs migrate`` at scale: 2,000 subscriptions moved, killed halfway, re-run.

Builds N tenants in the local sandbox, each with a trialing subscription on plan ``pro``'s price,
then gives the plan a new price (a new Stripe Price on the same product, as ``plans sync`` does).
Runs the real CLI (``python -m billing_cli subs migrate --plan pro``) in its own process behind
a counting proxy (:mod:`tests.faults`, no faults armed), SIGKILLs it once half the tenants are
recorded as moved, and runs it again. Prints, per run: requests by kind (list pages, retrieves,
writes), wall time and the achieved request rate; then the check: every tenant's subscription on
the new price in Stripe, exactly one Stripe write and one audit entry per tenant, no intent
left open. Usage: ``python bench/migrate.py [--tenants 2000] [--rate 20] [--database-url URL]``.
Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.faults: the counting proxy in front of the sandbox
    sys.path.insert(0, str(ROOT))

# the same tenants as the reconcile bench: a customer and a trialing subscription each
from reconcile import _subscribe  # noqa: E402  (bench/ is on sys.path when run)

from billing_cli.config import Settings  # noqa: E402
from billing_cli.gateway import Gateway, SubscriptionInfo, make_gateway  # noqa: E402
from billing_cli.models import SubscriptionPlan, Tenant, TenantSubscription, utcnow  # noqa: E402
from billing_cli.repository import Database, migrations  # noqa: E402
from billing_cli.repository import tenants as tenants_repo  # noqa: E402
from billing_cli.services.subscriptions.updates import apply_subscription  # noqa: E402
from stripe_sandbox import Sandbox  # noqa: E402
from tests.faults import FaultProxy, fault_proxy  # noqa: E402

OLD, NEW = 2900, 3900
MIGRATE = (sys.executable, "-m", "billing_cli", "subs", "migrate", "--plan", "pro")


def _price(gateway: Gateway, product_id: str, amount: int) -> str:
    return gateway.create_price(
        product_id=product_id,
        unit_amount=amount,
        currency="usd",
        interval="month",
        interval_count=1,
        lookup_key=None,
        metadata={"billing_plan": "pro"},
        transfer_lookup_key=False,
        idempotency_key=f"bench:price:{amount}",
    ).id


def _build(db: Database, settings: Settings, count: int) -> list[SubscriptionInfo]:
    """N tenants on the old price, then the plan moved to a new one (the old kept active)."""
    gateway = make_gateway(settings)
    product = gateway.create_product(
        name="Pro", metadata={"billing_plan": "pro"}, idempotency_key="bench:product"
    )
    old = _price(gateway, product.id, OLD)
    slugs = [f"tenant-{n:05d}" for n in range(count)]
    chunks = [slugs[i : i + 250] for i in range(0, count, 250)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        subs = [
            s for batch in pool.map(lambda c: _subscribe(settings, old, c), chunks) for s in batch
        ]
    new = _price(gateway, product.id, NEW)
    with db.transaction() as session:
        session.add(
            SubscriptionPlan(
                slug="pro",
                name="Pro",
                amount=NEW,
                currency="usd",
                interval="month",
                stripe_product_id=product.id,
                stripe_price_id=new,
                created_at=utcnow(),
            )
        )
        for slug, sub in zip(slugs, subs, strict=True):
            tenant = tenants_repo.add(
                session=session,
                tenant=Tenant(
                    slug=slug, name=slug, email=f"billing@{slug}.test", created_at=utcnow()
                ),
            )
            assert tenant.id is not None
            apply_subscription(session, TenantSubscription(tenant_id=tenant.id), sub)
    return subs


def _moved(db: Database) -> int:
    with db.connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "select count(*) from stripe_intent where status = 'succeeded' "
                    "and operation = 'subscription.migrate_price'"
                )
            ).scalar_one()
        )


def _start(env: dict[str, str], rate: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*MIGRATE, "--rate", str(rate), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kinds(forwarded: list[tuple[str, str]]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for method, path in forwarded:
        if method != "GET":
            kinds["write" if path.startswith("/v1/subscriptions/") else "other post"] += 1
        elif path in ("/v1/subscriptions", "/v1/prices"):
            kinds["list page"] += 1
        else:
            kinds["retrieve"] += 1
    return kinds


def _report(label: str, proxy: FaultProxy, elapsed: float, moved: int) -> list[tuple[str, str]]:
    seen = list(proxy.forwarded)
    proxy.forwarded.clear()
    kinds = _kinds(seen)
    total = sum(kinds.values())
    print(
        f"{label:<14} requests {total:5d} ("
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        + f")  wall {elapsed:6.1f} s  {total / elapsed:5.1f} req/s  "
        f"[tenants recorded moved so far {moved}]"
    )
    return seen


def _check(db: Database, settings: Settings, writes: list[tuple[str, str]], count: int) -> None:
    gateway = make_gateway(settings)
    live = [s for s in gateway.list_all_subscriptions() if s.status not in ("canceled",)]
    on_new = sum(1 for s in live if s.price_amount == NEW)
    per_sub = Counter(path for method, path in writes if method == "POST")
    with db.connect() as connection:
        audited = Counter(
            str(target)
            for (target,) in connection.execute(
                sa.text("select target from audit_entry where outcome like 'price %'")
            )
        )
        still_open = connection.execute(
            sa.text("select count(*) from stripe_intent where status not in ('succeeded','failed')")
        ).scalar_one()
    most_writes = max(per_sub.values(), default=0)
    print(
        f"check: subscriptions on the new price {on_new}/{count}; "
        f"Stripe writes {sum(per_sub.values())} over {len(per_sub)} subscriptions "
        f"(max per subscription {most_writes}); "
        f"audit entries {sum(audited.values())} over {len(audited)} tenants "
        f"(max per tenant {max(audited.values(), default=0)}); intents left open {still_open}"
    )
    ok = on_new == len(per_sub) == len(audited) == count
    ok = ok and most_writes == 1 and max(audited.values()) == 1 and not still_open
    print("every tenant moved exactly once: " + ("yes" if ok else "NO"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as sandbox:
        url = options.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        migrations.upgrade(db)
        settings = Settings(
            stripe_secret_key=sandbox.secret_key,
            stripe_api_base=sandbox.api_base,
            stripe_max_network_retries=0,
        )
        started = time.perf_counter()
        _build(db, settings, options.tenants)
        print(
            f"tenants {options.tenants} on {db.dialect}, built in "
            f"{time.perf_counter() - started:.0f} s; --rate {options.rate:g}"
        )
        with fault_proxy(sandbox.api_base) as proxy:
            env = {
                **os.environ,
                "BILLING_DATABASE_URL": url,
                "STRIPE_SECRET_KEY": sandbox.secret_key,
                "STRIPE_API_BASE": proxy.url,
                "BILLING_OPERATOR": "bench",
            }
            started = time.perf_counter()
            process = _start(env, options.rate)
            while _moved(db) < options.tenants // 2 and process.poll() is None:
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            first = _report("killed run", proxy, time.perf_counter() - started, _moved(db))
            started = time.perf_counter()
            rerun = subprocess.run(
                [*MIGRATE, "--rate", str(options.rate), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            second = _report("re-run", proxy, time.perf_counter() - started, _moved(db))
            summary = json.loads(rerun.stdout)
            print(
                f"re-run exit {rerun.returncode}: moved {summary['moved']}, skipped "
                f"{summary['skipped']}, failed {summary['failed']}; monthly revenue "
                f"{summary['monthly_revenue_before']} -> {summary['monthly_revenue_after']}"
            )
            for line in summary["tenants"]:
                if line["outcome"] == "failed":
                    print(f"  failed {line['tenant']}: {line['message']}")
        _check(db, settings, first + second, options.tenants)
        db.dispose()


if __name__ == "__main__":
    main()
