"""Tenants: adding them, and the suspension rules their access follows.

A suspension records who made it. ``manual`` suspensions (made by a person with this CLI) are only
ever lifted by a person; ``billing`` suspensions (made by payment events) are lifted by a
successful payment too. A person who suspends a tenant billing already suspended turns it into
a manual hold (``suspended_by=manual``, their reason, an audit entry): otherwise the next paid
invoice would let back in a tenant support meant to keep out. :func:`suspend` and
:func:`reactivate` are shared with the webhook engine so both paths obey the same rule and write
the same audit entry and notification.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.ids import check_slug
from billing_cli.models import Change, Invocation, Notification, Tenant, utcnow
from billing_cli.repository import Database
from billing_cli.repository import audit as audit_repo
from billing_cli.repository import notifications as notifications_repo
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services import audit
from billing_cli.services.views import audit_view, subscription_view, tenant_view
from billing_cli.text import (
    EMAIL_MAX,
    REASON_MAX,
    TENANT_NAME_MAX,
    check_length,
    check_plain,
    shown,
    stripe_text,
)

EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class TenantDetail:
    """One tenant with its subscription row and latest audit entries."""

    tenant: dict[str, Any]
    subscription: dict[str, Any] | None
    audit: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "subscription": self.subscription, "audit": self.audit}


def require_tenant(session: Session, slug: str, *, for_update: bool = False) -> Tenant:
    """The tenant named by an operator; a malformed slug is a usage error before the lookup
    (for the commands whose slug argument the CLI does not check itself)."""
    check_slug(slug)
    tenant = tenants_repo.get_by_slug(session=session, slug=slug, for_update=for_update)
    if tenant is None:
        raise NotFound(f"no tenant {shown(slug)}; {_did_you_mean(session, slug)}")
    return tenant


def _did_you_mean(session: Session, slug: str) -> str:
    """The nearest slugs to a mistyped one (a typo costs a second look-up, not a listing)."""
    nearest = difflib.get_close_matches(
        slug.lower(), tenants_repo.all_slugs(session=session), n=3, cutoff=0.6
    )
    if not nearest:
        return "`billing tenants list` shows the tenants"
    if len(nearest) == 1:
        return f"did you mean {nearest[0]}?"
    return f"did you mean {', '.join(nearest[:-1])} or {nearest[-1]}?"


def is_email(value: str) -> bool:
    """An address shape (something@domain.tld) that fits the column."""
    return len(value) <= EMAIL_MAX and EMAIL_PATTERN.fullmatch(value) is not None


def check_name(name: str) -> str:
    """A tenant's ``--name``, stripped: not empty, fits its column, no control characters.
    ``tenants add`` and ``tenants update`` share it, so neither stores what the other refuses."""
    return stripe_text(name, option="--name", limit=TENANT_NAME_MAX)


def check_email(email: str) -> str:
    """A tenant's ``--email``: fits its column and has an address's shape (no line breaks)."""
    check_length(email, limit=EMAIL_MAX, option="--email")
    if not is_email(email):
        raise UsageError(f"invalid email address {shown(email)}")
    return check_plain(email, option="--email")  # a bidi override is no line break, but reorders


def add_tenant(db: Database, *, invocation: Invocation, slug: str, name: str, email: str) -> Change:
    check_slug(slug)
    name = check_name(name)
    check_email(email)
    with db.transaction(dry_run=invocation.dry_run) as session:
        if tenants_repo.get_by_slug(session=session, slug=slug) is not None:
            raise Conflict(f"tenant {slug!r} already exists")
        tenant = tenants_repo.add(
            session=session,
            tenant=Tenant(slug=slug, name=name, email=email, created_at=utcnow()),
        )
        after = tenant_view(tenant)
        audit.record(
            session,
            invocation=invocation,
            target=f"tenant:{slug}",
            tenant_slug=slug,
            outcome="created",
            before=None,
            after=after,
        )
    return Change(
        target=f"tenant:{slug}",
        action="add",
        before=None,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{'would add' if invocation.dry_run else 'added'} tenant {slug}",
    )


def list_tenants(db: Database, *, status: str | None = None) -> list[dict[str, Any]]:
    with db.read() as session:
        return [tenant_view(t) for t in tenants_repo.list_all(session=session, status=status)]


def show_tenant(db: Database, *, slug: str, audit_limit: int = 10) -> TenantDetail:
    with db.read() as session:
        tenant = require_tenant(session, slug)
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        plan = plans_repo.get(session=session, plan_id=row.plan_id) if row and row.plan_id else None
        entries = audit_repo.list_recent(session=session, tenant_slug=slug, limit=audit_limit)
        return TenantDetail(
            tenant=tenant_view(tenant),
            subscription=subscription_view(row, plan) if row else None,
            audit=[audit_view(entry) for entry in entries],
        )


def suspend_tenant(
    db: Database,
    *,
    invocation: Invocation,
    slug: str,
    reason: str,
    customer_message: str | None = None,
) -> Change:
    """A person suspends a tenant (``suspended_by=manual``): a billing suspension becomes a
    manual hold; a no-op when a person already suspended it.

    ``reason`` is internal (audit trail, `tenants show`); the customer's e-mail says only what
    ``customer_message`` says, or a neutral line when there is none."""
    if not reason.strip():
        raise UsageError("--reason must not be empty")
    check_plain(
        check_length(reason.strip(), limit=REASON_MAX, option="--reason"), option="--reason"
    )
    message = _customer_message(customer_message)
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = require_tenant(session, slug, for_update=True)
        return suspend(
            session,
            tenant,
            reason=reason.strip(),
            by="manual",
            invocation=invocation,
            customer_message=message,
        )


def _customer_message(text: str | None) -> str | None:
    """The text a customer is sent: one plain line (no control characters or bidirectional
    overrides, which could reorder what the e-mail appears to say), at most 500 characters."""
    if text is None:
        return None
    option = "--customer-message"
    if not text.strip():
        raise UsageError(f"{option} must not be empty")
    return check_plain(check_length(text.strip(), limit=REASON_MAX, option=option), option=option)


def reactivate_tenant(db: Database, *, invocation: Invocation, slug: str) -> Change:
    """A person lifts a suspension of either kind; a no-op when the tenant is active."""
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = require_tenant(session, slug, for_update=True)
        return reactivate(session, tenant, invocation=invocation)


def suspend(
    session: Session,
    tenant: Tenant,
    *,
    reason: str,
    by: str,
    invocation: Invocation,
    customer_message: str | None = None,
) -> Change:
    """Suspend ``tenant`` inside the caller's transaction; audit it and notify the tenant."""
    target = f"tenant:{tenant.slug}"
    before = tenant_view(tenant)
    if tenant.status == "suspended" and by == "manual" and tenant.suspended_by == "billing":
        return _hold(session, tenant, reason=reason, invocation=invocation)
    if tenant.status == "suspended":
        return Change(
            target=target,
            action="suspend",
            before=before,
            after=before,
            dry_run=invocation.dry_run,
            changed=False,
            message=f"tenant {tenant.slug} is already suspended "
            f"(by {tenant.suspended_by}: {tenant.suspension_reason})",
        )
    tenant.status = "suspended"
    tenant.suspended_at = utcnow()
    tenant.suspension_reason = reason
    tenant.suspended_by = by
    session.add(tenant)
    after = tenant_view(tenant)
    payload = {"reason": reason, "by": by}
    if customer_message:
        payload["customer_message"] = customer_message
    _notify(session, tenant, kind="suspended", payload=payload)
    audit.record(
        session,
        invocation=invocation,
        target=target,
        tenant_slug=tenant.slug,
        outcome=f"suspended ({by})",
        before=before,
        after=after,
    )
    verb = "would suspend" if invocation.dry_run else "suspended"
    return Change(
        target=target,
        action="suspend",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} tenant {tenant.slug}: {reason}",
    )


def _hold(session: Session, tenant: Tenant, *, reason: str, invocation: Invocation) -> Change:
    """Turn a billing suspension into a manual hold that billing events never lift."""
    target = f"tenant:{tenant.slug}"
    before = tenant_view(tenant)
    tenant.suspension_reason = reason
    tenant.suspended_by = "manual"
    session.add(tenant)
    after = tenant_view(tenant)
    audit.record(
        session,
        invocation=invocation,
        target=target,
        tenant_slug=tenant.slug,
        outcome="manual hold over a billing suspension",
        before=before,
        after=after,
    )
    verb = "would hold" if invocation.dry_run else "held"
    return Change(
        target=target,
        action="suspend",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} tenant {tenant.slug} by hand: {reason} (it was suspended by billing: "
        f"{before['suspension_reason']}); billing events no longer lift it, only "
        "`billing tenants reactivate` does",
    )


def reactivate(session: Session, tenant: Tenant, *, invocation: Invocation) -> Change:
    """Lift ``tenant``'s suspension inside the caller's transaction; audit and notify."""
    target = f"tenant:{tenant.slug}"
    before = tenant_view(tenant)
    if tenant.status == "active":
        return Change(
            target=target,
            action="reactivate",
            before=before,
            after=before,
            dry_run=invocation.dry_run,
            changed=False,
            message=f"tenant {tenant.slug} is already active",
        )
    tenant.status = "active"
    tenant.suspended_at = None
    tenant.suspension_reason = None
    tenant.suspended_by = None
    session.add(tenant)
    after = tenant_view(tenant)
    _notify(session, tenant, kind="reactivated", payload={"previously": before["suspended_by"]})
    audit.record(
        session,
        invocation=invocation,
        target=target,
        tenant_slug=tenant.slug,
        outcome="reactivated",
        before=before,
        after=after,
    )
    verb = "would reactivate" if invocation.dry_run else "reactivated"
    lifted = ""
    if before["suspended_by"] == "manual":
        lifted = f" (lifted the manual hold: {before['suspension_reason']})"
    return Change(
        target=target,
        action="reactivate",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} tenant {tenant.slug}{lifted}",
    )


def follow_billing(
    session: Session,
    *,
    reason: str | None,
    status: str,
    suspended_by: str | None,
    load: Callable[[], Tenant],
    invocation: Invocation,
) -> Change | None:
    """Make the tenant's access follow billing: suspend (``by="billing"``) when ``reason`` says
    billing wants it suspended, lift a *billing* suspension when it does not, and never lift a
    manual one (only a person does, with ``billing tenants reactivate``).

    ``status``/``suspended_by`` are the tenant's current values; ``load`` yields the ORM tenant,
    called only when something changes (the webhook engine reads plain records on its hot path).
    """
    if reason is not None and status == "active":
        return suspend(session, load(), reason=reason, by="billing", invocation=invocation)
    if reason is None and status == "suspended" and suspended_by == "billing":
        return reactivate(session, load(), invocation=invocation)
    return None


def _notify(session: Session, tenant: Tenant, *, kind: str, payload: dict[str, Any]) -> None:
    assert tenant.id is not None
    notifications_repo.add(
        session=session,
        notification=Notification(
            tenant_id=tenant.id, kind=kind, payload=payload, created_at=utcnow()
        ),
    )
