"""Indexes for paged lists and order pages at 100 000 orders; retention_marks.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXES = {
    "orders": {
        "ix_orders_partner_id": ["partner_token", "id"],
        "ix_orders_partner_status": ["partner_token", "status", "id"],
        "ix_orders_status_id": ["status", "id"],
    },
    "journal": {
        "ix_journal_partner_id": ["partner_token", "id"],
        "ix_journal_partner_path": ["partner_token", "path", "id"],
    },
    "callbacks": {
        "ix_callbacks_partner_id": ["partner_token", "id"],
        "ix_callbacks_partner_state": ["partner_token", "state", "id"],
        "ix_callbacks_order_id": ["order_id", "id"],
    },
}
REPLACED = {"orders": "ix_orders_status", "journal": "ix_journal_partner"}


def upgrade() -> None:
    op.create_table(
        "retention_marks",
        sa.Column("partner_token", sa.String(64), primary_key=True),
        sa.Column("journal_id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    for table, indexes in INDEXES.items():
        for name, columns in indexes.items():
            op.create_index(name, table, columns)
    for table, name in REPLACED.items():
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_journal_partner", "journal", ["partner_token", "path"])
    for table, indexes in INDEXES.items():
        for name in indexes:
            op.drop_index(name, table_name=table)
    op.drop_table("retention_marks")
