"""Writing and reading the audit trail.

Every real mutation records one entry in the same transaction as its change, so the trail and the
data can never disagree. Arguments are stored with anything that looks like a secret removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import NotFound, UsageError
from billing_cli.models import AuditEntry, Invocation, utcnow
from billing_cli.repository import Database
from billing_cli.repository import audit as audit_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services.views import audit_view

_SECRET_HINTS = ("key", "secret", "password", "token")


def scrub_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """Drop values whose name suggests a secret; keep the rest JSON-friendly."""
    clean: dict[str, Any] = {}
    for name, value in arguments.items():
        if any(hint in name.lower() for hint in _SECRET_HINTS):
            clean[name] = "***"
        elif isinstance(value, str | int | float | bool) or value is None:
            clean[name] = value
        elif isinstance(value, list | tuple):
            clean[name] = [str(item) for item in value]
        else:
            clean[name] = str(value)
    return clean


def record(
    session: Session,
    *,
    invocation: Invocation,
    target: str,
    outcome: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    tenant_slug: str | None = None,
) -> AuditEntry:
    """Add one audit entry to the caller's transaction."""
    entry = AuditEntry(
        at=utcnow(),
        operator=invocation.operator,
        command=invocation.command,
        arguments=scrub_arguments(invocation.arguments),
        target=target,
        tenant_slug=tenant_slug,
        dry_run=invocation.dry_run,
        outcome=outcome,
        before=before,
        after=after,
    )
    return audit_repo.add(session=session, entry=entry)


def list_entries(
    db: Database,
    *,
    tenant_slug: str | None,
    since: datetime | None,
    limit: int,
    operator: str | None = None,
    action: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first. A tenant that does not exist and left no entries (a removed tenant's
    entries stay) is a NotFound, not an empty list: a mistyped slug should not look like a
    tenant nobody touched. ``operator`` and ``action`` narrow further ("what did alice
    refund?"); see :func:`.repository.audit.list_recent`."""
    for name, value in (("--operator", operator), ("--action", action)):
        if value is not None and not value.strip():
            raise UsageError(f"{name} must not be empty")
    with db.read() as session:
        entries = audit_repo.list_recent(
            session=session,
            tenant_slug=tenant_slug,
            since=since,
            limit=limit,
            operator=operator,
            action=action.strip() if action else None,
        )
        if not entries and tenant_slug is not None:
            known = tenants_repo.get_by_slug(session=session, slug=tenant_slug) is not None
            ever = known or bool(
                audit_repo.list_recent(session=session, tenant_slug=tenant_slug, limit=1)
            )
            if not ever:
                raise NotFound(
                    f"no tenant {tenant_slug!r} and no audit entries for it; "
                    "`billing tenants list` shows the tenants"
                )
        return [audit_view(entry) for entry in entries]
