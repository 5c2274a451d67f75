"""payments inbox: one row per payment event received, keyed by the sender's webhook-id

Revision ID: 0006_payments_inbox
Revises: 0004_event_consumers
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_payments_inbox"
down_revision: str | Sequence[str] | None = "0005_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_inbox",
        sa.Column("webhook_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_payment_inbox")),
    )
    with op.batch_alter_table("payment_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_inbox_order_id"), ["order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_inbox_order_id"))
    op.drop_table("payment_inbox")
