"""Fair usage (throttle, not cut) and router profiles shared by several master packages

- ``master_packages.fup_threshold`` (bytes per billing cycle), ``fup_down`` / ``fup_up``
  (bits/s): past the threshold a customer's rate drops to the reduced one until the cycle
  ends;
- ``master_packages.router_profile``: the PPP/hotspot profile on the router when several
  master packages share one (NULL: ``profile_name``, as before); ``profile_name`` stays
  the master's own RADIUS group;
- ``customers.throttled_until``: the end of the cycle a throttled customer's reduced rate
  lasts to (NULL: full rate);
- the groups' Mikrotik-Rate-Limit rows become ``=``, so a customer's own rate wins.

Nothing changes for existing rows.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


# Plain ADD COLUMN on both dialects (see 0002): no batch recreate of tables others point at.
def upgrade() -> None:
    op.add_column("master_packages", sa.Column("fup_threshold", sa.BigInteger(), nullable=True))
    op.add_column("master_packages", sa.Column("fup_down", sa.BigInteger(), nullable=True))
    op.add_column("master_packages", sa.Column("fup_up", sa.BigInteger(), nullable=True))
    op.add_column("master_packages", sa.Column("router_profile", sa.String(64), nullable=True))
    op.add_column(
        "customers", sa.Column("throttled_until", sa.DateTime(timezone=True), nullable=True)
    )
    # A group's rate becomes "=" (added when the user has none), so a throttled customer's
    # own radreply rate wins over it; what ``radius sync`` would write anyway.
    op.execute(
        "UPDATE radgroupreply SET op = '=' WHERE attribute = 'Mikrotik-Rate-Limit' "
        "AND op = ':=' AND groupname IN (SELECT profile_name FROM master_packages)"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE radgroupreply SET op = ':=' WHERE attribute = 'Mikrotik-Rate-Limit' "
        "AND op = '=' AND groupname IN (SELECT profile_name FROM master_packages)"
    )
    op.drop_column("customers", "throttled_until")
    for name in ("router_profile", "fup_up", "fup_down", "fup_threshold"):
        op.drop_column("master_packages", name)
