"""Customers are found by router with an index: every sync of a router reads its
customers, and without it PostgreSQL scans the whole table (a million rows) each time.

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-06 16:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_customers_router_id", "customers", ["router_id"])


def downgrade() -> None:
    op.drop_index("ix_customers_router_id", table_name="customers")
