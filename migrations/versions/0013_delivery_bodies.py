"""webhook deliveries: ``body`` only where a delivery has no event to build it from

A delivery of a feed event kept the CloudEvent it sends, about 1 KB, in its row, and a delivery's
row is written three times (fanned out, leased, recorded): on SQLite three copies of its pages
in the WAL, which a subscribed worker's placements then waited behind (scripts/bench: placement
with a subscription). Now a delivery refers to its event (``event_row``) and the sender builds
the CloudEvent when it sends; ``body`` holds one only for a ping (no event), and for a pending
delivery whose event retention purges (``services/retention.py`` writes it there first, finding
them by the partial index ``ix_webhook_deliveries_pending_event``).

Revision ID: 0013_delivery_bodies
Revises: 0012_item_name_pairs
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_delivery_bodies"
down_revision: str | Sequence[str] | None = "0012_item_name_pairs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# ``body IS NULL`` also keeps a claim from reading pending deliveries through this index
# (store/models.py)
WAITING_FOR_EVENT = {
    f"{d}_where": sa.text("status = 'pending' AND body IS NULL") for d in ("postgresql", "sqlite")
}


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)
    op.create_index(
        "ix_webhook_deliveries_pending_event",
        "webhook_deliveries",
        ["event_row"],
        **WAITING_FOR_EVENT,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending_event", table_name="webhook_deliveries")
    # a body-less delivery cannot be kept as it was: it gets its event's data (no envelope)
    op.execute(
        "UPDATE webhook_deliveries SET body = COALESCE("
        "(SELECT data FROM events WHERE events.id = webhook_deliveries.event_row), '{}') "
        "WHERE body IS NULL"
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
