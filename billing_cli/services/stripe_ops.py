"""What every service that writes to Stripe shares: idempotency keys that survive a crash, the
list of writes a dry run would make, and the tenant's local Stripe row.

An idempotency key must be the same when an operator re-runs a command after a crash or a
timeout (so Stripe hands back the first result) and different for the next deliberate change of
the same kind (so a second, intended charge is not swallowed by Stripe's 24-hour replay). Keys
therefore combine the operation, its target, its parameters, and the tenant's *generation*: the
number of committed audit entries for the tenant. A crash before the local commit leaves the
generation unchanged (same key on re-run); a completed change moves it on (new key next time).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from billing_cli.gateway import DryRunGateway, Gateway, idempotency_key
from billing_cli.models import Tenant, TenantSubscription, utcnow
from billing_cli.repository import audit as audit_repo
from billing_cli.repository import subscriptions as subscriptions_repo


def tenant_key(session: Session, tenant: Tenant, operation: str, *parts: str | int) -> str:
    """An idempotency key for ``operation`` on ``tenant`` at its current generation."""
    generation = audit_repo.count_for_tenant(session=session, tenant_slug=tenant.slug)
    return idempotency_key(operation, tenant.slug, generation, *parts)


def planned_writes(gateway: Gateway) -> tuple[dict[str, Any], ...]:
    """The Stripe writes a dry run would have sent (empty for a real gateway)."""
    if not isinstance(gateway, DryRunGateway):
        return ()
    return tuple(
        {"operation": write.operation, "target": write.target, "params": write.params}
        for write in gateway.planned
    )


def stripe_row(session: Session, tenant: Tenant, *, create: bool = True) -> TenantSubscription:
    """The tenant's TenantSubscription row (created empty on first need), locked for update."""
    assert tenant.id is not None
    row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id, for_update=True)
    if row is None:
        row = TenantSubscription(tenant_id=tenant.id, updated_at=utcnow())
        if create:
            subscriptions_repo.save(session=session, subscription=row)
    return row
