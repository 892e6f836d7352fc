"""Observability: processing time per ledger row, counters of rejected deliveries and of Stripe
API errors, and the delivery state of the notification outbox (issue 10).

``rejected_delivery`` and ``stripe_api_error`` hold one row per minute and reason (or operation
and error class), upserted, so their size is bounded by time, not by traffic.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("processing_ms", sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_webhook_event_received_stats",
            ["received_at", "status", "processing_ms"],
            unique=False,
        )
        batch_op.create_index(
            "ix_webhook_event_type_received", ["type", "received_at"], unique=False
        )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "rejected_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("minute", "reason", name="uq_rejected_delivery_minute"),
    )
    with op.batch_alter_table("rejected_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejected_delivery_minute"), ["minute"], unique=False)
    op.create_table(
        "stripe_api_error",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.Column("error_class", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "minute", "operation", "error_class", name="uq_stripe_api_error_minute"
        ),
    )
    with op.batch_alter_table("stripe_api_error", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stripe_api_error_minute"), ["minute"], unique=False)


def downgrade() -> None:
    op.drop_table("stripe_api_error")
    op.drop_table("rejected_delivery")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        for name in ("failed_at", "next_attempt_at", "last_error", "attempts"):
            batch_op.drop_column(name)
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_event_type_received")
        batch_op.drop_index("ix_webhook_event_received_stats")
        batch_op.drop_column("processing_ms")
