"""A pool's free IPv6 slots below its highest taken one (``ipv6_free_slots``), kept by
triggers on ``ipv6_prefixes``: a prefix removed (released, or its customer deleted) adds
its slot, a prefix taken removes it. The lowest free slot is then the least of the
smallest free one and the highest taken plus one, two index lookups, where the search
before read every prefix of the pool (1 ms at 1,000 prefixes, growing with them).

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-07 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

_PG = [
    """
    CREATE FUNCTION provisioner_slot_freed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.slot IS NOT NULL THEN
            INSERT INTO ipv6_free_slots (pool_name, slot) VALUES (OLD.pool_name, OLD.slot)
            ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION provisioner_slot_taken() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.slot IS NOT NULL THEN
            DELETE FROM ipv6_free_slots WHERE pool_name = NEW.pool_name AND slot = NEW.slot;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ipv6_prefix_freed AFTER DELETE OR UPDATE OF pool_name, slot
    ON ipv6_prefixes FOR EACH ROW EXECUTE FUNCTION provisioner_slot_freed()
    """,
    """
    CREATE TRIGGER ipv6_prefix_taken AFTER INSERT OR UPDATE OF pool_name, slot
    ON ipv6_prefixes FOR EACH ROW EXECUTE FUNCTION provisioner_slot_taken()
    """,
]
_SQLITE = [
    """
    CREATE TRIGGER ipv6_prefix_freed AFTER DELETE ON ipv6_prefixes WHEN OLD.slot IS NOT NULL
    BEGIN
        INSERT OR IGNORE INTO ipv6_free_slots (pool_name, slot) VALUES (OLD.pool_name, OLD.slot);
    END
    """,
    """
    CREATE TRIGGER ipv6_prefix_moved AFTER UPDATE OF pool_name, slot ON ipv6_prefixes
    BEGIN
        INSERT OR IGNORE INTO ipv6_free_slots (pool_name, slot)
        SELECT OLD.pool_name, OLD.slot WHERE OLD.slot IS NOT NULL;
        DELETE FROM ipv6_free_slots WHERE pool_name = NEW.pool_name AND slot = NEW.slot;
    END
    """,
    """
    CREATE TRIGGER ipv6_prefix_taken AFTER INSERT ON ipv6_prefixes WHEN NEW.slot IS NOT NULL
    BEGIN
        DELETE FROM ipv6_free_slots WHERE pool_name = NEW.pool_name AND slot = NEW.slot;
    END
    """,
]


def upgrade() -> None:
    op.create_table(
        "ipv6_free_slots",
        sa.Column("pool_name", sa.String(64), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
    )
    bind = op.get_bind()
    for ddl in _PG if bind.dialect.name == "postgresql" else _SQLITE:
        op.execute(ddl)
    # The gaps of today's pools: every slot below a pool's highest taken one, not taken.
    taken: dict[str, set[int]] = {}
    for pool, slot in bind.execute(
        sa.text("SELECT pool_name, slot FROM ipv6_prefixes WHERE slot IS NOT NULL")
    ):
        taken.setdefault(pool, set()).add(slot)
    rows = [
        {"pool_name": pool, "slot": s}
        for pool, slots in taken.items()
        for s in range(max(slots))
        if s not in slots
    ]
    if rows:
        bind.execute(
            sa.text("INSERT INTO ipv6_free_slots (pool_name, slot) VALUES (:pool_name, :slot)"),
            rows,
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ipv6_prefix_freed ON ipv6_prefixes")
        op.execute("DROP TRIGGER IF EXISTS ipv6_prefix_taken ON ipv6_prefixes")
        op.execute("DROP FUNCTION IF EXISTS provisioner_slot_freed()")
        op.execute("DROP FUNCTION IF EXISTS provisioner_slot_taken()")
    else:
        for name in ("ipv6_prefix_freed", "ipv6_prefix_moved", "ipv6_prefix_taken"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("ipv6_free_slots")
