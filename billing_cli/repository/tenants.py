"""Queries on the tenant table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from billing_cli.models import Tenant


def get_by_slug(*, session: Session, slug: str, for_update: bool = False) -> Tenant | None:
    statement = select(Tenant).where(Tenant.slug == slug)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def get(*, session: Session, tenant_id: int, for_update: bool = False) -> Tenant | None:
    statement = select(Tenant).where(Tenant.id == tenant_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def list_all(*, session: Session, status: str | None = None) -> Sequence[Tenant]:
    statement = select(Tenant).order_by(col(Tenant.slug))
    if status is not None:
        statement = statement.where(Tenant.status == status)
    return session.exec(statement).all()


def add(*, session: Session, tenant: Tenant) -> Tenant:
    session.add(tenant)
    session.flush()
    return tenant


def delete(*, session: Session, tenant: Tenant) -> None:
    session.delete(tenant)
    session.flush()
