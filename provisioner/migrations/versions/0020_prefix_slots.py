"""Delegated IPv6 prefixes know their place in the pool (``slot``: the prefix's index
among the pool's prefixes of the package's length), so the lowest free one is found by
an index in the database instead of reading every prefix of the table.

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-06 15:25:00
"""

from __future__ import annotations

import ipaddress

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ipv6_prefixes", sa.Column("slot", sa.Integer(), nullable=True))
    op.create_index("ix_ipv6_prefixes_pool_slot", "ipv6_prefixes", ["pool_name", "slot"])
    bind = op.get_bind()
    pools = {
        name: (ipaddress.IPv6Network(prefix), length)
        for name, prefix, length in bind.execute(
            sa.text(
                "SELECT ipv6_pool_name, ipv6_prefix, ipv6_prefix_length FROM master_packages"
                " WHERE ipv6_pool_name IS NOT NULL AND ipv6_prefix IS NOT NULL"
                " AND ipv6_prefix_length IS NOT NULL"
            )
        )
    }
    for prefix, pool_name in bind.execute(sa.text("SELECT prefix, pool_name FROM ipv6_prefixes")):
        if pool_name not in pools:
            continue
        pool, length = pools[pool_name]
        net = ipaddress.IPv6Network(prefix)
        if net.prefixlen == length and net.subnet_of(pool):
            slot = (int(net.network_address) - int(pool.network_address)) >> (128 - length)
            bind.execute(
                sa.text("UPDATE ipv6_prefixes SET slot = :slot WHERE prefix = :prefix"),
                {"slot": slot, "prefix": prefix},
            )


def downgrade() -> None:
    op.drop_index("ix_ipv6_prefixes_pool_slot", "ipv6_prefixes")
    op.drop_column("ipv6_prefixes", "slot")
