"""Daemon instances with a heartbeat; outbox claims and sync runs name their instance

A daemon registers itself in ``daemon_instances`` and beats every few seconds. An outbox
row being worked on names the instance that claimed it (``outbox.claimed_by``), and a
sync run the instance running it (``sync_runs.holder``), so the work of an instance that
stopped beating is taken over at once instead of when a 10-minute lease ends. Rows
written before this revision get NULL there and fall back to the lease.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# Plain ADD COLUMN on both dialects (see 0002): no batch "recreate" of outbox on SQLite.
def upgrade() -> None:
    op.create_table(
        "daemon_instances",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.add_column("outbox", sa.Column("claimed_by", sa.String(length=128), nullable=True))
    op.add_column("sync_runs", sa.Column("holder", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.drop_column("holder")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("claimed_by")
    op.drop_table("daemon_instances")
