"""Monthly invoices: open/paid/void, due dates, payments, the reason for a suspension

- ``invoices``: ``status`` (open | paid | void), ``due_at`` (the period's start),
  ``package_id``, ``paid_at``; ``activation_id`` may be NULL (an invoice the invoice job
  issued); one invoice per (customer, period start);
- ``payments``: money received against an invoice (balance | admin | reseller);
- ``customers.suspended_reason``: "unpaid" when an invoice past its grace suspended it.

Existing invoices were written by activations, which paid them: they become ``paid``,
due at their period's start, for the activation's package.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("suspended_reason", sa.String(16), nullable=True))
    # Nothing points at invoices, so SQLite may recreate the table (batch mode).
    with op.batch_alter_table("invoices") as b:
        b.alter_column("activation_id", existing_type=sa.Integer(), nullable=True)
        b.add_column(sa.Column("package_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("status", sa.String(8), nullable=False, server_default="paid"))
        b.add_column(sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE invoices SET due_at = period_start, paid_at = created_at, package_id = "
        "(SELECT package_id FROM activations WHERE activations.id = invoices.activation_id)"
    )
    with op.batch_alter_table("invoices") as b:
        b.alter_column("due_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        b.create_unique_constraint(
            "uq_invoices_customer_id_period_start", ["customer_id", "period_start"]
        )
        b.create_foreign_key("fk_invoices_package_id", "packages", ["package_id"], ["id"])
        b.create_index("ix_invoices_status", ["status"])
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_payments_invoice_id", "payments", ["invoice_id"])


def downgrade() -> None:
    op.drop_index("ix_payments_invoice_id", "payments")
    op.drop_table("payments")
    with op.batch_alter_table("invoices") as b:
        b.drop_index("ix_invoices_status")
        b.drop_constraint("fk_invoices_package_id", type_="foreignkey")
        b.drop_constraint("uq_invoices_customer_id_period_start", type_="unique")
        for name in ("paid_at", "status", "due_at", "package_id"):
            b.drop_column(name)
    op.drop_column("customers", "suspended_reason")
