"""IPv6 delegated prefixes

- ``master_packages.ipv6_pool_name``, ``ipv6_prefix`` (the pool, e.g. 2001:db8:100::/40),
  ``ipv6_prefix_length`` (what each customer gets, e.g. 56) and ``framed_ipv6_prefix``;
- ``ipv6_prefixes``: the prefixes handed out, unique by prefix and by customer.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-02 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


# Plain ADD COLUMN on both dialects (see 0002).
def upgrade() -> None:
    op.add_column("master_packages", sa.Column("ipv6_pool_name", sa.String(64), nullable=True))
    op.add_column("master_packages", sa.Column("ipv6_prefix", sa.String(49), nullable=True))
    op.add_column("master_packages", sa.Column("ipv6_prefix_length", sa.Integer(), nullable=True))
    op.add_column(
        "master_packages",
        sa.Column("framed_ipv6_prefix", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "ipv6_prefixes",
        sa.Column("prefix", sa.String(length=49), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("pool_name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prefix"),
        sa.UniqueConstraint("customer_id"),
    )


def downgrade() -> None:
    op.drop_table("ipv6_prefixes")
    for name in ("framed_ipv6_prefix", "ipv6_prefix_length", "ipv6_prefix", "ipv6_pool_name"):
        op.drop_column("master_packages", name)
