"""order events: the outbox table that is also the feed, per-subject sequences, purge mark

Revision ID: 0002_events
Revises: 0001
Create Date: 2026-11-30

On PostgreSQL each event row gets the inserting transaction's id (``txid``, a server default)
and a statement trigger NOTIFYs ``marketsvc_events`` at commit, so that feed readers on any
worker or instance wake up. See ``marketsvc/db_accessor/outbox.py``.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002_events"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NOTIFY_FUNCTION = """
CREATE FUNCTION marketsvc_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('marketsvc_events', '');
    RETURN NULL;
END $$
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER events_notify AFTER INSERT ON events
FOR EACH STATEMENT EXECUTE FUNCTION marketsvc_events_notify()
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    txid_default = sa.text("(pg_current_xact_id()::text::bigint)") if postgresql else sa.text("0")
    op.create_table(
        "events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default=txid_default, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_txid_id", ["txid", "id"], unique=False)
        batch_op.create_index(
            "ix_events_customer_id_txid_id", ["customer_id", "txid", "id"], unique=False
        )
        batch_op.create_index("ix_events_subject_txid_id", ["subject", "txid", "id"], unique=False)
    op.create_table(
        "event_sequences",
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_event_sequences")),
    )
    op.create_table(
        "event_purges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("event_row", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_purges")),
    )
    if postgresql:
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
        op.execute("DROP FUNCTION IF EXISTS marketsvc_events_notify()")
    op.drop_table("event_purges")
    op.drop_table("event_sequences")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_subject_txid_id")
        batch_op.drop_index("ix_events_customer_id_txid_id")
        batch_op.drop_index("ix_events_txid_id")
    op.drop_table("events")
