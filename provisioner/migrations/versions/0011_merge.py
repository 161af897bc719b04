"""One head again: invoices (0008), fair usage (0009) and IPv6 (0010) were built side by
side from 0007 and touch different tables; this revision only joins them.

Revision ID: 0011
Revises: 0008, 0009, 0010
Create Date: 2026-12-02 17:45:00
"""

from __future__ import annotations

revision = "0011"
down_revision = ("0008", "0009", "0010")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
