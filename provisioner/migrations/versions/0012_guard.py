"""``provisioner_guard(ok, what)``: a statement that fails its transaction when ``ok`` is
not true (PostgreSQL only).

The express lane sends its writes and its COMMIT in one round trip; a guarded write that
changed no row (the customer changed since it was read, the payer cannot pay) must then
stop the COMMIT in the database itself, not in Python after it. SQLite runs the lane one
statement at a time and checks in Python, as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 00:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION provisioner_guard(ok boolean, what text) RETURNS boolean
        LANGUAGE plpgsql AS $$
        BEGIN
            IF ok IS NOT TRUE THEN
                RAISE EXCEPTION 'provisioner guard: %', what;
            END IF;
            RETURN true;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS provisioner_guard(boolean, text)")
