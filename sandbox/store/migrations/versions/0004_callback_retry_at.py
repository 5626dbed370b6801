"""Callback retries on the partner's clock: callbacks.retry_at; schema_meta gives way to
Alembic's alembic_version.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("retry_at", sa.Float(), nullable=True))
    # Pending deliveries are due on the partner's clock from the moment they were made.
    op.execute("UPDATE callbacks SET retry_at = created_at WHERE state = 'pending'")
    op.drop_table("schema_meta")


def downgrade() -> None:
    op.create_table(
        "schema_meta",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.execute("INSERT INTO schema_meta (id, version) VALUES (1, 3)")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("retry_at")
