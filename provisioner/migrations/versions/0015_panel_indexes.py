"""Indexes the dashboard, the online sessions and the invoice lists read by: activations
by time (sales per day), customers by expiry (expiring soon) and by reseller (a
reseller's subtree), invoices by period (the newest first), and ``radacct`` by stop time (the sessions of the last 24 hours; the stock
schema has none on it).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 15:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_activations_created_at", "activations", ["created_at"]),
    ("ix_customers_expires_at", "customers", ["expires_at"]),
    ("ix_customers_reseller_id", "customers", ["reseller_id"]),
    ("ix_invoices_period_start", "invoices", ["period_start"]),
    ("ix_radacct_acctstoptime", "radacct", ["acctstoptime"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table)
