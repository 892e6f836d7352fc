"""Paused collection on tenant_subscription (BILLING_PAUSED_ACCESS); per-seat plans.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_collection", sa.String(length=32), nullable=True))
    with op.batch_alter_table("subscription_plan", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("per_seat", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("subscription_plan", schema=None) as batch_op:
        batch_op.drop_column("per_seat")
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        batch_op.drop_column("pause_collection")
