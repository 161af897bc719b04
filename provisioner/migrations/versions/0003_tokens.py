"""API tokens expire, can be revoked and record when they were last used

Three nullable columns on ``api_tokens``. Tokens made before this revision get NULL in
all three: ``expires_at`` NULL means the token never expires, so existing tokens keep
working until an admin revokes them (``provisioner token list`` shows them as
never expiring). New tokens get the lifetime of their role (``token_days_*``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("expires_at", "revoked_at", "last_used_at")


# Adding a nullable column is a plain ALTER TABLE on both dialects, so no batch recreate
# (see 0002). Dropping one is too, on SQLite 3.35 and later.
def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("api_tokens", sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("api_tokens", name)
