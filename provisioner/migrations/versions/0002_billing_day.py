"""Customers keep the day of the month their monthly subscription renews on

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both dialects: a batch "recreate" on SQLite would drop and copy
# `customers`, and with foreign keys on that cascades into the rows that point at it.
def upgrade() -> None:
    op.add_column("customers", sa.Column("billing_day", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "billing_day")
