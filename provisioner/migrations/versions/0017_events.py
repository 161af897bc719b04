"""Events out (issue 27): events (their own outbox), webhook endpoints, deliveries and
their attempts, customers' contacts and the reminders sent them, operators'
low-balance thresholds.

New tables only; nothing existing changes.

Revision ID: 0017
Revises: 0020
Create Date: 2026-12-06 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0020"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(40), nullable=False, unique=True),
        sa.Column("type", sa.String(40), nullable=False, index=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("reseller_id", sa.Integer(), nullable=True, index=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(160), nullable=True, unique=True),
        sa.Column("fanned_out", sa.Boolean(), nullable=False, index=True),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(512), nullable=False),
        sa.Column(
            "reseller_id", sa.Integer(), sa.ForeignKey("resellers.id", ondelete="CASCADE"),
            nullable=True, index=True,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("failing_since", TZ, nullable=True),
        sa.Column("disabled_at", TZ, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id"), nullable=False),
        sa.Column(
            "endpoint_id", sa.Integer(),
            sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False, index=True,
        ),
        sa.Column("msg_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.UniqueConstraint("event_id", "endpoint_id"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "delivery_id", sa.Integer(),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True,
        ),
        sa.Column("at", TZ, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "customer_contacts",
        sa.Column(
            "customer_id", sa.Integer(), sa.ForeignKey("customers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("opt_out", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "reminder_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id"), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False, index=True),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
        sa.UniqueConstraint("event_id", "customer_id"),
    )
    op.create_table(
        "balance_alerts",
        sa.Column(
            "reseller_id", sa.Integer(), sa.ForeignKey("resellers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("alerted", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "balance_alerts", "reminder_messages", "customer_contacts", "delivery_attempts", "webhook_deliveries",
        "webhook_endpoints", "events",
    ):
        op.drop_table(name)
