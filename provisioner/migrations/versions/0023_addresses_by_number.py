"""Static addresses: where each pool's search starts (``address_hints``), and the
addresses in use indexed by their number.

The lowest free address was searched over every address in use inside the pool's ranges
(and the whole customers table read for them): 2.4 ms of PostgreSQL per allocation with
2,000 addresses in use, growing with them, while the pool's lock is held. Now each pool
keeps a hint, ``next``: every address of the pool below it is in use. The allocator
searches only from it (the addresses in use at or above it, through the indexes below:
the pinned ones ahead, usually none) and moves it past what it gave, in the same
transaction. An address freed below a hint (a customer's address changed or cleared, a
customer or a reserved address deleted) moves the hint back to it: triggers here, so
no path of the code can forget. A hint is kept with the ranges it was found for; when
the pool's ranges change it is not used (the search starts at the pool's first address
again, once). SQLite walks the addresses in Python and keeps no hints.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# The allocator's own expression (an address's number), so its search is an index range
# scan. Every address written is an IPv4 address (``validation``), as the search assumes.
_PG = [
    # Not partial: with "static_ip IS NOT NULL" in the query PostgreSQL read every
    # address through the unique index on static_ip instead (1,300 pages a search).
    "CREATE INDEX ix_customers_static_ip_number ON customers ((static_ip::inet - '0.0.0.0'::inet))",
    "CREATE INDEX ix_static_addresses_number ON static_addresses "
    "((address::inet - '0.0.0.0'::inet))",
    """
    CREATE FUNCTION provisioner_address_freed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        n bigint;
    BEGIN
        IF TG_TABLE_NAME = 'customers' THEN
            n := OLD.static_ip::inet - '0.0.0.0'::inet;
        ELSE
            n := OLD.address::inet - '0.0.0.0'::inet;
        END IF;
        UPDATE address_hints SET next = n WHERE next > n AND n BETWEEN first AND last;
        RETURN NULL;
    END
    $$
    """,
    # WHEN: an activation's write sets static_ip to the value it had; no call for it.
    """
    CREATE TRIGGER customer_address_changed AFTER UPDATE OF static_ip ON customers
    FOR EACH ROW WHEN (OLD.static_ip IS NOT NULL
                       AND OLD.static_ip IS DISTINCT FROM NEW.static_ip)
    EXECUTE FUNCTION provisioner_address_freed()
    """,
    """
    CREATE TRIGGER customer_address_deleted AFTER DELETE ON customers
    FOR EACH ROW WHEN (OLD.static_ip IS NOT NULL)
    EXECUTE FUNCTION provisioner_address_freed()
    """,
    """
    CREATE TRIGGER static_address_freed AFTER DELETE OR UPDATE OF address ON static_addresses
    FOR EACH ROW EXECUTE FUNCTION provisioner_address_freed()
    """,
]


def upgrade() -> None:
    op.create_table(
        "address_hints",
        sa.Column("pool_name", sa.String(64), primary_key=True),
        sa.Column("ranges", sa.Text(), nullable=False),
        sa.Column("first", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.Column("next", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for ddl in _PG:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS customer_address_changed ON customers")
        op.execute("DROP TRIGGER IF EXISTS customer_address_deleted ON customers")
        op.execute("DROP TRIGGER IF EXISTS static_address_freed ON static_addresses")
        op.execute("DROP FUNCTION IF EXISTS provisioner_address_freed()")
        op.execute("DROP INDEX IF EXISTS ix_static_addresses_number")
        op.execute("DROP INDEX IF EXISTS ix_customers_static_ip_number")
    op.drop_table("address_hints")
