"""One sale: a payment per invoice (unique), and ledger rows that name the invoice they
paid, as they name the activation.

An invoice is paid by the guarded ``UPDATE … WHERE status = 'open'`` (``sale``); the
unique index on ``payments.invoice_id`` holds it a second time, whoever writes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


# Plain ADD COLUMN on both dialects (see 0007): the foreign key on PostgreSQL only.
def upgrade() -> None:
    bind = op.get_bind()
    column = sa.Column("invoice_id", sa.Integer(), nullable=True)
    if bind.dialect.name == "postgresql":
        column = sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=True)
    op.add_column("ledger", column)
    op.drop_index("ix_payments_invoice_id", "payments")
    op.create_index("ix_payments_invoice_id", "payments", ["invoice_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_payments_invoice_id", "payments")
    op.create_index("ix_payments_invoice_id", "payments", ["invoice_id"])
    op.drop_column("ledger", "invoice_id")
