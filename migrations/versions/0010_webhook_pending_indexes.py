"""webhook deliveries: partial indexes over the pending ones only

A sender's claim looks for due pending deliveries and, for each, an older pending one of the same
subject. The indexes it had led with ``status`` (due) or held it third (subject), so a plan made
for any value (PostgreSQL's generic plan of a prepared statement) read every delivery a
subscription ever had: the claim grew with history. Partial indexes ``WHERE status = 'pending'``
hold only the deliveries still to be sent, and the claim writes ``'pending'`` as a literal
(``db_accessor/webhooks.py``) so that any plan can use them. On PostgreSQL the due index's
predicate also holds ``next_attempt_at IS NOT NULL`` (always true), so that the lookup of a
subject's oldest pending delivery cannot take it for the subject index (``store/models.py``).

Revision ID: 0010_webhook_pending_indexes
Revises: 0009_item_search_name
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_webhook_pending_indexes"
down_revision: str | Sequence[str] | None = "0009_item_search_name"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_ONLY = {f"{d}_where": sa.text("status = 'pending'") for d in ("postgresql", "sqlite")}
# PostgreSQL: always true, but implied only by a statement that filters on next_attempt_at
# (store/models.py says why)
PENDING_DUE_ONLY = {
    "postgresql_where": sa.text("status = 'pending' AND next_attempt_at IS NOT NULL"),
    "sqlite_where": sa.text("status = 'pending'"),
}


def upgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_subject", table_name="webhook_deliveries")
    op.create_index(
        "ix_webhook_deliveries_pending_due",
        "webhook_deliveries",
        ["next_attempt_at", "id"],
        **PENDING_DUE_ONLY,
    )
    op.create_index(
        "ix_webhook_deliveries_pending_subject",
        "webhook_deliveries",
        ["subscription_id", "subject", "id"],
        **PENDING_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending_subject", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_pending_due", table_name="webhook_deliveries")
    op.create_index(
        "ix_webhook_deliveries_subject",
        "webhook_deliveries",
        ["subscription_id", "subject", "status", "id"],
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
