"""Web logins for the panels: admins and resellers with an argon2 password hash

One new table, ``web_users`` (username, password hash, role, the reseller a reseller login
acts for). Nothing existing changes: API tokens keep working, and customers log in to the
portal with the PPPoE/hotspot credentials they already have. A reseller's logins go with
the reseller (ON DELETE CASCADE), as its API tokens do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("reseller_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["reseller_id"], ["resellers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )


def downgrade() -> None:
    op.drop_table("web_users")
