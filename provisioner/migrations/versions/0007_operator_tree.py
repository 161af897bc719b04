"""Operators form a tree; prepaid or postpaid; what a parent recommends customers pay

- ``resellers.parent_id`` (NULL: under the admin), ``may_have_subresellers``, ``billing``
  (prepaid | postpaid) and ``credit_limit`` (minor units, like every amount);
- ``reseller_packages.customer_price``: the customer's price a parent recommends;
- ``accounts.floor``: how low a balance may go (0 for prepaid, minus the limit when
  postpaid), checked by the same guarded UPDATE that debits it.

Existing resellers become prepaid resellers under the admin, as they were.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Plain ADD COLUMN on both dialects (see 0002): no batch recreate of tables others point at.
# The parent's foreign key is declared on PostgreSQL; SQLite cannot add one to a table.
def upgrade() -> None:
    bind = op.get_bind()
    parent = sa.Column("parent_id", sa.Integer(), nullable=True)
    if bind.dialect.name == "postgresql":
        parent = sa.Column("parent_id", sa.Integer(), sa.ForeignKey("resellers.id"), nullable=True)
    op.add_column("resellers", parent)
    op.create_index("ix_resellers_parent_id", "resellers", ["parent_id"])
    op.add_column(
        "resellers",
        sa.Column("may_have_subresellers", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "resellers",
        sa.Column("billing", sa.String(16), nullable=False, server_default="prepaid"),
    )
    op.add_column(
        "resellers", sa.Column("credit_limit", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("reseller_packages", sa.Column("customer_price", sa.BigInteger(), nullable=True))
    op.add_column(
        "accounts", sa.Column("floor", sa.BigInteger(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("accounts", "floor")
    op.drop_column("reseller_packages", "customer_price")
    for name in ("credit_limit", "billing", "may_have_subresellers"):
        op.drop_column("resellers", name)
    op.drop_index("ix_resellers_parent_id", "resellers")
    op.drop_column("resellers", "parent_id")
