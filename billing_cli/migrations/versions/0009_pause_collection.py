"""Paused collection on tenant_subscription (for BILLING_PAUSED_ACCESS).

Revision ID: 0009
Revises: 0003
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_collection", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        batch_op.drop_column("pause_collection")
