"""Accounts keep their current balance; it is filled from the ledger

A debit used to sum every ledger row of the account under its row lock, so its cost grew
with the account's history. ``accounts.balance`` (integer minor units, like the ledger's
amounts) now moves in the same transaction as each ledger row. This revision adds the
column, makes an account row for every ledger account that has none, and sets each
balance to the sum of its ledger rows; ``provisioner ledger check`` proves them equal.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("balance", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.execute(
        "INSERT INTO accounts (account, balance) "
        "SELECT DISTINCT account, 0 FROM ledger "
        "WHERE account NOT IN (SELECT account FROM accounts)"
    )
    op.execute(
        "UPDATE accounts SET balance = COALESCE("
        "(SELECT SUM(amount) FROM ledger WHERE ledger.account = accounts.account), 0)"
    )


def downgrade() -> None:
    op.drop_column("accounts", "balance")
