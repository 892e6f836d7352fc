"""The Stripe write journal (stripe_intent): one row per intended Stripe write.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_intent",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("tenant_slug", sa.String(length=64), nullable=True),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("open_scope", sa.String(length=300), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=True),
        sa.Column("stripe_object_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("command", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("runner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_scope"),
    )
    with op.batch_alter_table("stripe_intent", schema=None) as batch_op:
        batch_op.create_index("ix_stripe_intent_operation", ["operation"], unique=False)
        batch_op.create_index("ix_stripe_intent_tenant_slug", ["tenant_slug"], unique=False)
        batch_op.create_index("ix_stripe_intent_status", ["status"], unique=False)
        batch_op.create_index("ix_stripe_intent_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("stripe_intent")
