"""Deferred webhook events: the customer a parked event names, and a deleted customer's link.

``webhook_event.customer_id`` holds the Stripe customer of an event parked with status
``deferred`` (no tenant had that customer yet); it is applied once a tenant is linked to the
customer, found through this index. ``tenant_subscription.deleted_customer_id`` keeps the
customer ``customer.deleted`` removed from a row, so a late, older event about that customer
still finds its tenant.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.String(length=255), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_webhook_event_customer_id"), ["customer_id"], unique=False
        )
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_customer_id", sa.String(length=255), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_tenant_subscription_deleted_customer_id"),
            ["deleted_customer_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenant_subscription_deleted_customer_id"))
        batch_op.drop_column("deleted_customer_id")
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_event_customer_id"))
        batch_op.drop_column("customer_id")
