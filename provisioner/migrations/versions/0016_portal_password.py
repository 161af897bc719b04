"""A portal password apart from the PPPoE one, web logins that can be disabled, and the
audit log's filters on an index.

- ``customers.portal_password_hash``: an argon2 hash of the password a customer set for
  the portal (None: it has not set one, and logs in with its PPPoE/hotspot password, as
  before, so no existing customer is locked out).
- ``web_users.disabled_at``: a login an admin turned off (None: it may log in).
- ``audit_log (entity, id)``, ``(actor, id)`` and ``(at)``: the audit page filters by
  what, who or days and pages by id, newest first.

Revision ID: 0016
Revises: 0017
Create Date: 2026-12-06 15:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "customers", sa.Column("portal_password_hash", sa.String(length=255), nullable=True)
    )
    op.add_column("web_users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_audit_log_entity_id", "audit_log", ["entity", "id"])
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_index("ix_audit_log_actor_id", "audit_log")
    op.drop_index("ix_audit_log_entity_id", "audit_log")
    op.drop_column("web_users", "disabled_at")
    op.drop_column("customers", "portal_password_hash")
