"""Webhook ordering: per-field-group order keys and Stripe's own status on tenant_subscription.

The webhook engine applies an event to a field group (the subscription snapshot, the payment
state, the customer link) only when its order key is newer than the stored one, so deliveries
in any order and duplicates converge on the same row. ``stripe_status`` keeps the status as
Stripe last reported it (``status`` is the effective one); ``stripe_price_id`` lets the engine
skip the plan lookup when the price did not change.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("stripe_price_id", 255),
    ("stripe_status", 24),
    ("subscription_event_key", 300),
    ("payment_event_key", 300),
    ("customer_event_key", 300),
)


def upgrade() -> None:
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        for name, length in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenant_subscription", schema=None) as batch_op:
        for name, _length in reversed(_COLUMNS):
            batch_op.drop_column(name)
