"""``billing reconcile`` at scale: 5,000 tenants with subscriptions in the sandbox, 5% drifted.

Builds the tenants in the local sandbox (a customer and a trialing subscription each, tagged
``metadata.tenant``) and their local rows from Stripe's answers, plants drift in 5% of them (half
behind the tool's back in Stripe, half in the local rows), then runs a report and ``--fix``,
counting HTTP requests at the ``requests`` layer: list calls, per-object retrieves (the target is
none), and writes (``--fix`` must send none). Target: at most 3 list requests per 100 tenants.
Usage: ``python bench/reconcile.py [--tenants 5000] [--drift 0.05] [--database-url URL]``.
Prints figures only.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from billing_cli.config import Settings
from billing_cli.gateway import DryRunGateway, Gateway, SubscriptionInfo, make_gateway
from billing_cli.models import Invocation, SubscriptionPlan, Tenant, TenantSubscription, utcnow
from billing_cli.repository import Database, migrations
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services.reconcile.compare import ReconcileReport, reconcile
from billing_cli.services.subscriptions.updates import apply_subscription
from stripe_sandbox import Sandbox

_OBJECT_PATH = re.compile(r"^/v1/[a-z_]+/[a-z]+_[A-Za-z0-9]+$")
DRIFTS = ("stripe: cancel flag", "stripe: price", "local: status", "local: period", "local: hold")


class CountingSession(requests.Session):
    """Counts requests as list (GET of a collection), retrieve (GET of one object) or write."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: Counter[str] = Counter()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        name = (method.decode() if isinstance(method, bytes) else method).upper()
        path = urlsplit(url.decode() if isinstance(url, bytes) else url).path
        if name != "GET":
            self.kinds["write"] += 1
        else:
            self.kinds["retrieve" if _OBJECT_PATH.match(path) else "list"] += 1
        return super().request(method, url, *args, **kwargs)


def _subscribe(settings: Settings, price_id: str, slugs: list[str]) -> list[SubscriptionInfo]:
    gateway = make_gateway(settings)
    made = []
    for slug in slugs:
        customer = gateway.create_customer(
            email=f"billing@{slug}.test",
            name=slug,
            metadata={"tenant": slug},
            idempotency_key=f"bench:customer:{slug}",
        )
        made.append(
            gateway.create_subscription(
                customer_id=customer.id,
                price_id=price_id,
                trial_days=14,
                default_payment_method=None,
                metadata={"tenant": slug},
                idempotency_key=f"bench:subscription:{slug}",
            )
        )
    return made


def _plan(db: Database, gateway: Gateway, slug: str, amount: int) -> str:
    product = gateway.create_product(
        name=slug.title(), metadata={"billing_plan": slug}, idempotency_key=f"bench:p:{slug}"
    )
    price = gateway.create_price(
        product_id=product.id,
        unit_amount=amount,
        currency="usd",
        interval="month",
        interval_count=1,
        lookup_key=f"billing_plan:{slug}",
        metadata={"billing_plan": slug},
        transfer_lookup_key=False,
        idempotency_key=f"bench:price:{slug}",
    )
    with db.transaction() as session:
        session.add(
            SubscriptionPlan(
                slug=slug,
                name=slug.title(),
                amount=amount,
                currency="usd",
                interval="month",
                stripe_product_id=product.id,
                stripe_price_id=price.id,
                created_at=utcnow(),
            )
        )
    return price.id


def _build(db: Database, settings: Settings, count: int) -> tuple[list[SubscriptionInfo], str]:
    gateway = make_gateway(settings)
    starter = _plan(db, gateway, "starter", 1900)
    pro = _plan(db, gateway, "pro", 4900)
    slugs = [f"tenant-{n:05d}" for n in range(count)]
    chunks = [slugs[i : i + 250] for i in range(0, count, 250)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        subs = [
            s
            for batch in pool.map(lambda c: _subscribe(settings, starter, c), chunks)
            for s in batch
        ]
    with db.transaction() as session:
        for slug, sub in zip(slugs, subs, strict=True):
            tenant = tenants_repo.add(
                session=session,
                tenant=Tenant(
                    slug=slug, name=slug, email=f"billing@{slug}.test", created_at=utcnow()
                ),
            )
            assert tenant.id is not None
            apply_subscription(session, TenantSubscription(tenant_id=tenant.id), sub)
    return subs, pro


def _plant(
    db: Database, settings: Settings, subs: list[SubscriptionInfo], pro: str, share: float
) -> Counter[str]:
    """Drift in every ``1/share``-th tenant, one kind after another (Stripe first, no
    transaction open meanwhile; then the local edits in one transaction)."""
    gateway = make_gateway(settings)
    planted: Counter[str] = Counter()
    local: list[tuple[str, str]] = []
    for n, sub in enumerate(subs[:: round(1 / share)]):
        kind = DRIFTS[n % len(DRIFTS)]
        planted[kind] += 1
        if kind == "stripe: cancel flag":
            gateway.set_cancel_at_period_end(sub.id, True, idempotency_key=f"bench:c:{sub.id}")
        elif kind == "stripe: price":
            gateway.change_subscription_price(
                sub.id,
                item_id=sub.item_id or "",
                price_id=pro,
                proration_behavior="none",
                idempotency_key=f"bench:p:{sub.id}",
            )
        else:
            local.append((sub.metadata["tenant"], kind))
    with db.transaction() as session:
        for slug, kind in local:
            tenant = tenants_repo.get_by_slug(session=session, slug=slug)
            assert tenant is not None and tenant.id is not None
            row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
            assert row is not None
            if kind == "local: status":
                row.status = row.stripe_status = "past_due"
            elif kind == "local: period":
                row.trial_end = row.current_period_end = utcnow()
            else:
                tenant.status, tenant.suspended_by = "suspended", "billing"
            session.add(row)
            session.add(tenant)
    return planted


def _run(
    db: Database, settings: Settings, label: str, tenants: int, *, fix: bool
) -> ReconcileReport:
    session = CountingSession()
    gateway = DryRunGateway(make_gateway(settings, session=session))
    started = time.perf_counter()
    report = reconcile(
        db, gateway, invocation=Invocation(operator="bench", command=f"bench {label}"), fix=fix
    )
    elapsed = time.perf_counter() - started
    kinds = session.kinds
    total = sum(kinds.values())
    healed = sum(1 for r in report.tenants if r.fixed)
    print(
        f"{label:<7} requests {total:4d} (list {kinds['list']}, retrieve {kinds['retrieve']}, "
        f"writes {kinds['write']})  list requests per 100 tenants "
        f"{100 * kinds['list'] / tenants:.2f}  "
        f"wall {elapsed:6.2f} s  [drifted tenants {len(report.tenants)}"
        + (f", healed {healed}]" if fix else "]")
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=5000)
    parser.add_argument("--drift", type=float, default=0.05)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Sandbox() as sandbox:
        db = Database(options.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrations.upgrade(db)
        settings = Settings(
            stripe_secret_key=sandbox.secret_key,
            stripe_api_base=sandbox.api_base,
            stripe_max_network_retries=0,
        )
        started = time.perf_counter()
        subs, pro = _build(db, settings, options.tenants)
        planted = _plant(db, settings, subs, pro, options.drift)
        print(
            f"tenants {options.tenants} on {db.dialect}, built in "
            f"{time.perf_counter() - started:.0f} s; drift planted in {sum(planted.values())}: "
            + ", ".join(f"{kind} {n}" for kind, n in planted.items())
        )
        _run(db, settings, "report", options.tenants, fix=False)
        _run(db, settings, "--fix", options.tenants, fix=True)
        after = _run(db, settings, "after", options.tenants, fix=False)
        print(f"drift left after --fix: {len(after.tenants)} tenants (must be 0)")
        db.dispose()


if __name__ == "__main__":
    main()
